//! The server's TLS configuration over its self-signed identity.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};

use super::identity::Identity;

/// The TLS configuration: one self-signed certificate, no client auth, TLS 1.2 and 1.3.
pub fn tls_config(identity: &Identity) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            identity.key_der.clone(),
        )))?;
    // Not `with_single_cert`: it parses the certificate with webpki, which
    // refuses the X.509 v1 certificates Tahoe nodes have (Foolscap makes
    // them), and a node taken over must present its own. Clients pin the
    // SPKI, not the certificate's form.
    let certified = CertifiedKey::new(vec![CertificateDer::from(identity.cert_der.clone())], key);
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    Ok(Arc::new(config))
}
