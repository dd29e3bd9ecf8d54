//! Who this storage server is to Tahoe clients, persisted under `<state>/host/`:
//!
//! | file | what |
//! |---|---|
//! | `tubid` | 32 lowercase base32 characters (20 random bytes): the seed of clients' lease secrets and mutable write-enablers (GBS.md §4); never changes |
//! | `swissnum` | the anonymous account's swissnum, `[a-z2-7]{32}` |
//! | `tls/cert.pem`, `tls/key.pem` | the self-signed certificate and its key; the NURL pins its SPKI |
//! | `server-id`, `permutation-seed` | only when taken over from a Tahoe node ([`Identity::adopt`]): the id and seed its clients know; otherwise the tubid |
//! | `accounts.json` | named accounts: name, swissnum, created, revoked |
//! | `listen` | the address `serve` last listened on, reused when `--listen` is not given |
//! | `status` | the status page's address while `serve` runs |
//!
//! Everything is generated on first use and written atomically (temp file + rename).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::plugin::wit::Account;

/// Something under `<state>/host/` could not be read, parsed or written.
#[derive(Debug)]
pub struct IdentityError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for IdentityError {}

fn fail(path: &Path, reason: impl fmt::Display) -> IdentityError {
    IdentityError {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Lowercase RFC 4648 base32 without padding (the shared vocabulary's).
pub use leasedb_types::base32;

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    getrandom::fill(&mut out).expect("the operating system has no randomness to give");
    out
}

/// A fresh swissnum: 20 random bytes as 32 base32 characters, as Tahoe makes them.
pub fn fresh_swissnum() -> String {
    base32(&random_bytes(20))
}

/// The value a client sends in `Authorization` for `swissnum` (GBS.md §2).
pub fn authorization_value(swissnum: &str) -> String {
    format!(
        "Tahoe-LAFS {}",
        base64::engine::general_purpose::STANDARD.encode(swissnum.as_bytes())
    )
}

/// Replaces `path` with `contents` durably: a temporary file created
/// readable by its owner only (there is never a moment when a secret is
/// readable by others), synced, renamed over `path`, and the directory synced
/// so the new name survives a crash.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), IdentityError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(contents)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path))
        .and_then(|()| fs::File::open(dir)?.sync_all())
        .map_err(|e| fail(path, e))
}

fn read_optional(path: &Path) -> Result<Option<String>, IdentityError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fail(path, e)),
    }
}

/// A `[a-z2-7]{32}` token kept in one file, created on first use.
fn load_or_create_token(path: &Path) -> Result<String, IdentityError> {
    if let Some(text) = read_optional(path)? {
        let token = text.trim().to_owned();
        if token.len() != 32 || leasedb_types::base32_decode(&token).is_none() {
            return Err(fail(path, "not 32 lowercase base32 characters"));
        }
        return Ok(token);
    }
    let token = fresh_swissnum();
    write_atomic(path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// The server's persistent identity.
#[derive(Clone)]
pub struct Identity {
    /// `<state>/host`.
    pub dir: PathBuf,
    /// 32 lowercase base32 characters; the FURL tubid clients derive secrets from.
    pub tubid: String,
    /// The anonymous account's swissnum.
    pub swissnum: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// `base64url_nopad(SHA-256(SPKI))`: what the NURL pins.
    pub spki_hash: String,
    /// The key of this server in clients' `servers.yaml` (a Tahoe node's
    /// `v0-…` id when taken over, else the tubid).
    pub server_id: String,
    /// What clients permute servers by (`permutation-seed-base32`).
    pub permutation_seed: String,
}

/// A Tahoe node's identity, to be taken over by [`Identity::adopt`].
#[derive(Clone)]
pub struct Adopted {
    /// The tubid of its storage FURL.
    pub tubid: String,
    /// The swissnum of its storage FURL: the anonymous account's.
    pub swissnum: String,
    /// Its TLS certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// `v0-…` from `node.pubkey`, if it has one.
    pub server_id: Option<String>,
    /// Its `permutation-seed`.
    pub permutation_seed: String,
}

/// PEM text of one DER object.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out + &format!("-----END {label}-----\n")
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets stay out of logs.
        f.debug_struct("Identity")
            .field("dir", &self.dir)
            .field("tubid", &self.tubid)
            .field("spki_hash", &self.spki_hash)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads the identity under `<state>/host/`, creating what is missing.
    pub fn load_or_create(state_dir: &Path) -> Result<Identity, IdentityError> {
        let dir = state_dir.join("host");
        fs::create_dir_all(&dir).map_err(|e| fail(&dir, e))?;
        let tubid = load_or_create_token(&dir.join("tubid"))?;
        let swissnum = load_or_create_token(&dir.join("swissnum"))?;
        let (cert_der, key_der) = load_or_create_cert(&dir.join("tls"))?;
        let spki = spki_of_certificate(&cert_der)
            .ok_or_else(|| fail(&dir.join("tls/cert.pem"), "not an X.509 certificate"))?;
        let spki_hash = spki_hash(spki);
        let read_or_tubid = |name: &str| -> Result<String, IdentityError> {
            Ok(read_optional(&dir.join(name))?
                .map(|t| t.trim().to_owned())
                .unwrap_or_else(|| tubid.clone()))
        };
        let server_id = read_or_tubid("server-id")?;
        let permutation_seed = read_or_tubid("permutation-seed")?;
        Ok(Identity {
            dir,
            tubid,
            swissnum,
            cert_der,
            key_der,
            spki_hash,
            server_id,
            permutation_seed,
        })
    }

    /// Makes `node` this state directory's identity (a Tahoe node taken
    /// over). Taking the same node over again changes nothing; a state
    /// directory that is already another server is refused, since its
    /// clients would lose it.
    pub fn adopt(state_dir: &Path, node: &Adopted) -> Result<Identity, IdentityError> {
        let dir = state_dir.join("host");
        let tubid_path = dir.join("tubid");
        if let Some(existing) = read_optional(&tubid_path)? {
            let current = Identity::load_or_create(state_dir)?;
            if existing.trim() == node.tubid
                && current.swissnum == node.swissnum
                && current.cert_der == node.cert_der
            {
                return Ok(current);
            }
            return Err(fail(
                &tubid_path,
                format!(
                    "this state directory is already server {}; take the node over into a new \
                     --state directory",
                    existing.trim()
                ),
            ));
        }
        // The key first and the tubid last: an interrupted adoption leaves no
        // tubid, so it is simply done again.
        write_atomic(
            &dir.join("tls/key.pem"),
            pem("PRIVATE KEY", &node.key_der).as_bytes(),
        )?;
        write_atomic(
            &dir.join("tls/cert.pem"),
            pem("CERTIFICATE", &node.cert_der).as_bytes(),
        )?;
        write_atomic(
            &dir.join("swissnum"),
            format!("{}\n", node.swissnum).as_bytes(),
        )?;
        write_atomic(
            &dir.join("permutation-seed"),
            format!("{}\n", node.permutation_seed).as_bytes(),
        )?;
        if let Some(id) = &node.server_id {
            write_atomic(&dir.join("server-id"), format!("{id}\n").as_bytes())?;
        }
        write_atomic(&tubid_path, format!("{}\n", node.tubid).as_bytes())?;
        Identity::load_or_create(state_dir)
    }

    /// The NURL of the account whose swissnum is `swissnum`, at `host_port`.
    pub fn nurl(&self, host_port: &str, swissnum: &str) -> String {
        format!("pb://{}@{}/{}#v=1", self.spki_hash, host_port, swissnum)
    }

    /// The `storage:` document for a client's `private/servers.yaml` with this server
    /// reached through `nurl` (GBS.md §5). Server id and permutation seed are the
    /// same for every account, so all clients place shares alike; the FURL's
    /// tubid is what clients derive lease secrets and write enablers from.
    pub fn servers_yaml(&self, nurl: &str) -> String {
        format!(
            "storage:\n  {id}:\n    ann:\n      nickname: host-runner-{short}\n      anonymous-storage-FURL: pb://{tubid}@tcp:127.0.0.1:1/{tubid}\n      anonymous-storage-NURLs:\n        - {nurl}\n      permutation-seed-base32: {seed}\n",
            id = self.server_id,
            tubid = self.tubid,
            seed = self.permutation_seed,
            short = &self.tubid[..8],
        )
    }

    /// The listen address remembered from the last `serve`.
    pub fn last_listen(&self) -> Result<Option<String>, IdentityError> {
        Ok(read_optional(&self.dir.join("listen"))?.map(|t| t.trim().to_owned()))
    }

    /// Remembers the address `serve` listens on (the NURLs name it).
    pub fn remember_listen(&self, addr: &str) -> Result<(), IdentityError> {
        write_atomic(&self.dir.join("listen"), format!("{addr}\n").as_bytes())
    }

    /// The running server's status address, if it wrote one.
    pub fn status_addr(&self) -> Result<Option<String>, IdentityError> {
        Ok(read_optional(&self.dir.join("status"))?.map(|t| t.trim().to_owned()))
    }

    /// Records (or with `None` removes) the status address.
    pub fn set_status_addr(&self, addr: Option<&str>) -> Result<(), IdentityError> {
        let path = self.dir.join("status");
        match addr {
            Some(addr) => write_atomic(&path, format!("{addr}\n").as_bytes()),
            None => match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(fail(&path, e)),
            },
        }
    }

    /// What the NURLs name: the `--location` set, else the last listen
    /// address unless it was a wildcard (which names no reachable host).
    pub fn advertised(&self) -> Result<Option<String>, IdentityError> {
        if let Some(location) = self.location()? {
            return Ok(Some(location));
        }
        Ok(self.last_listen()?.filter(|l| {
            l.parse::<std::net::SocketAddr>()
                .map_or(true, |a| !a.ip().is_unspecified())
        }))
    }

    /// The admin endpoint's token (created on first use, owner-readable only).
    pub fn admin_token(&self) -> Result<String, IdentityError> {
        load_or_create_token(&self.dir.join("admin-token"))
    }

    /// The `HOST:PORT` clients are told to use (`serve --location`), if set.
    pub fn location(&self) -> Result<Option<String>, IdentityError> {
        Ok(read_optional(&self.dir.join("location"))?.map(|t| t.trim().to_owned()))
    }

    /// Remembers the `HOST:PORT` the NURLs and `servers.yaml` advertise.
    pub fn set_location(&self, location: &str) -> Result<(), IdentityError> {
        write_atomic(
            &self.dir.join("location"),
            format!("{location}\n").as_bytes(),
        )
    }

    /// The accounts file.
    pub fn accounts_path(&self) -> PathBuf {
        self.dir.join("accounts.json")
    }
}

/// `base64url_nopad(SHA-256(spki_der))`.
pub fn spki_hash(spki_der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(spki_der))
}

fn load_or_create_cert(dir: &Path) -> Result<(Vec<u8>, Vec<u8>), IdentityError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() || key_path.exists() {
        let cert = CertificateDer::from_pem_file(&cert_path).map_err(|e| fail(&cert_path, e))?;
        let key = PrivatePkcs8KeyDer::from_pem_file(&key_path).map_err(|e| fail(&key_path, e))?;
        return Ok((cert.to_vec(), key.secret_pkcs8_der().to_vec()));
    }
    let key = rcgen::KeyPair::generate().map_err(|e| fail(&key_path, e))?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .map_err(|e| fail(&cert_path, e))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "host-runner storage server");
    // Far future: the client ignores dates, and the NURL must never change.
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(4000, 1, 1);
    let cert = params.self_signed(&key).map_err(|e| fail(&cert_path, e))?;
    // Key first: a certificate without its key would be useless.
    write_atomic(&key_path, key.serialize_pem().as_bytes())?;
    write_atomic(&cert_path, cert.pem().as_bytes())?;
    Ok((cert.der().to_vec(), key.serialize_der()))
}

/// The DER SubjectPublicKeyInfo (whole TLV) of an X.509 certificate.
pub fn spki_of_certificate(cert_der: &[u8]) -> Option<&[u8]> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    Some(cert.tbs_certificate.subject_pki.raw)
}

/// One named account as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NamedAccount {
    /// The account's name (the plugin's `account::named`).
    pub name: String,
    /// Its swissnum.
    pub swissnum: String,
    /// Seconds since the Unix epoch.
    pub created: i64,
    /// Revoked accounts' requests are refused (401); their leases stay until they expire.
    pub revoked: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AccountsFile {
    accounts: Vec<NamedAccount>,
}

/// Why an account command failed.
#[derive(Debug)]
pub enum AccountError {
    /// The name is not 1–64 characters of `A-Za-z0-9._-`.
    BadName(String),
    /// An active account has that name already.
    Exists(String),
    /// No account has that name.
    Unknown(String),
    /// The name belonged to an account that was revoked; it is not reused.
    Revoked(String),
    /// The file could not be read or written.
    Io(IdentityError),
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountError::BadName(n) => write!(
                f,
                "account name {n:?} must be 1 to 64 characters of A-Z a-z 0-9 . _ -"
            ),
            AccountError::Exists(n) => write!(f, "account {n:?} exists already"),
            AccountError::Unknown(n) => write!(f, "no account is named {n:?}"),
            AccountError::Revoked(n) => write!(
                f,
                "account {n:?} was revoked and its name is not given out again \
                 (its leases stay with it); choose another name"
            ),
            AccountError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AccountError {}

impl From<IdentityError> for AccountError {
    fn from(e: IdentityError) -> Self {
        AccountError::Io(e)
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The named accounts in `accounts.json`.
pub fn list_accounts(path: &Path) -> Result<Vec<NamedAccount>, IdentityError> {
    match read_optional(path)? {
        None => Ok(Vec::new()),
        Some(text) => {
            let file: AccountsFile = serde_json::from_str(&text).map_err(|e| fail(path, e))?;
            Ok(file.accounts)
        }
    }
}

fn save_accounts(path: &Path, accounts: Vec<NamedAccount>) -> Result<(), IdentityError> {
    let text = serde_json::to_string_pretty(&AccountsFile { accounts }).expect("serialisable");
    write_atomic(path, text.as_bytes())
}

/// Mints a swissnum for a new account `name`. A revoked name is never given
/// out again: leases are kept by account name, so its holder would inherit them.
pub fn add_account(path: &Path, name: &str) -> Result<NamedAccount, AccountError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if !valid {
        return Err(AccountError::BadName(name.to_owned()));
    }
    let mut accounts = list_accounts(path)?;
    match accounts.iter().find(|a| a.name == name) {
        Some(a) if a.revoked => return Err(AccountError::Revoked(name.to_owned())),
        Some(_) => return Err(AccountError::Exists(name.to_owned())),
        None => {}
    }
    let account = NamedAccount {
        name: name.to_owned(),
        swissnum: fresh_swissnum(),
        created: now_secs(),
        revoked: false,
    };
    accounts.push(account.clone());
    save_accounts(path, accounts)?;
    Ok(account)
}

/// Revokes account `name`: its swissnum stops working.
pub fn revoke_account(path: &Path, name: &str) -> Result<(), AccountError> {
    let mut accounts = list_accounts(path)?;
    let account = accounts
        .iter_mut()
        .find(|a| a.name == name)
        .ok_or_else(|| AccountError::Unknown(name.to_owned()))?;
    account.revoked = true;
    save_accounts(path, accounts).map_err(AccountError::Io)
}

/// Who may call: the `Authorization` value of every active swissnum and its account.
#[derive(Clone, Default)]
pub struct Credentials {
    entries: Vec<(Vec<u8>, Account)>,
}

impl Credentials {
    /// The anonymous swissnum plus every active named account.
    pub fn new(anonymous_swissnum: &str, named: &[NamedAccount]) -> Credentials {
        let mut entries = vec![(
            authorization_value(anonymous_swissnum).into_bytes(),
            Account::Anonymous,
        )];
        for a in named.iter().filter(|a| !a.revoked) {
            entries.push((
                authorization_value(&a.swissnum).into_bytes(),
                Account::Named(a.name.clone()),
            ));
        }
        Credentials { entries }
    }

    /// The account whose `Authorization` value `header` is; every entry is compared
    /// in constant time so timing tells nothing about which was close.
    pub fn authorize(&self, header: &[u8]) -> Option<Account> {
        let mut found = None;
        for (value, account) in &self.entries {
            if bool::from(value.ct_eq(header)) && found.is_none() {
                found = Some(account.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "my");
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32(&[0u8; 20]).len(), 32);
    }

    #[test]
    fn authorization_matches_gbs_example() {
        assert_eq!(
            authorization_value("rj733sgevzqkbthnce4gzjqojkfrzt4z"),
            "Tahoe-LAFS cmo3MzNzZ2V2enFrYnRobmNlNGd6anFvamtmcnp0NHo="
        );
    }

    #[test]
    fn identity_is_kept_and_spki_matches_rcgen() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_or_create(dir.path()).unwrap();
        let again = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(first.tubid, again.tubid);
        assert_eq!(first.swissnum, again.swissnum);
        assert_eq!(first.spki_hash, again.spki_hash);
        assert_eq!(first.spki_hash.len(), 43);
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls::pki_types::PrivatePkcs8KeyDer::from(first.key_der.clone()),
            &rcgen::PKCS_ECDSA_P256_SHA256,
        )
        .unwrap();
        use rcgen::PublicKeyData;
        assert_eq!(spki_hash(&key.subject_public_key_info()), first.spki_hash);
    }

    #[test]
    fn an_adopted_node_keeps_its_keys_ids_and_nurl() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let node = Adopted {
            tubid: base32(&[1; 20]),
            swissnum: base32(&[2; 20]),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            server_id: Some("v0-abc".into()),
            permutation_seed: "seed".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::adopt(dir.path(), &node).unwrap();
        let again = Identity::load_or_create(dir.path()).unwrap();
        for i in [&id, &again] {
            assert_eq!(
                (i.tubid.as_str(), i.swissnum.as_str()),
                (&*node.tubid, &*node.swissnum)
            );
            assert_eq!(
                (i.cert_der.as_slice(), i.key_der.as_slice()),
                (&*node.cert_der, &*node.key_der)
            );
            assert_eq!(
                i.spki_hash,
                spki_hash(spki_of_certificate(&node.cert_der).unwrap())
            );
        }
        let yaml = again.servers_yaml("pb://n");
        assert!(
            yaml.contains("  v0-abc:\n") && yaml.contains("permutation-seed-base32: seed\n"),
            "{yaml}"
        );
        assert!(yaml.contains(&format!("pb://{}@", node.tubid)), "{yaml}");
        // The same node again is fine; a state that is another server is not.
        Identity::adopt(dir.path(), &node).unwrap();
        let other = tempfile::tempdir().unwrap();
        Identity::load_or_create(other.path()).unwrap();
        assert!(Identity::adopt(other.path(), &node).is_err());
    }

    #[test]
    fn accounts_add_revoke_authorize() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        let alice = add_account(&path, "alice").unwrap();
        assert!(matches!(
            add_account(&path, "alice"),
            Err(AccountError::Exists(_))
        ));
        assert!(matches!(
            add_account(&path, "a b"),
            Err(AccountError::BadName(_))
        ));
        let creds = Credentials::new("anon", &list_accounts(&path).unwrap());
        assert_eq!(
            creds.authorize(authorization_value(&alice.swissnum).as_bytes()),
            Some(Account::Named("alice".into()))
        );
        assert_eq!(
            creds.authorize(authorization_value("anon").as_bytes()),
            Some(Account::Anonymous)
        );
        assert_eq!(creds.authorize(b"Tahoe-LAFS x"), None);
        revoke_account(&path, "alice").unwrap();
        let creds = Credentials::new("anon", &list_accounts(&path).unwrap());
        assert_eq!(
            creds.authorize(authorization_value(&alice.swissnum).as_bytes()),
            None
        );
        // A new holder of the name would inherit alice's leases: refused.
        assert!(matches!(
            add_account(&path, "alice"),
            Err(AccountError::Revoked(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn secrets_are_created_owner_readable_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::load_or_create(dir.path()).unwrap();
        identity.admin_token().unwrap();
        add_account(&identity.accounts_path(), "carol").unwrap();
        for file in ["swissnum", "tls/key.pem", "accounts.json", "admin-token"] {
            let mode = fs::metadata(identity.dir.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{file} has mode {mode:o}");
        }
    }
}
