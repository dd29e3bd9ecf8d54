//! Choosing and opening a store from its URL (`--backend`): a directory
//! (`file:` or a plain path), an object-store bucket (`s3://`, `gs://`,
//! `az://`), or memory (`memory:`).
//!
//! Cloud settings come from the standard environment (`AWS_*`, `GOOGLE_*`,
//! `AZURE_*`, as the vendors' tools read them); explicit settings override it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, RetryConfig};

use super::object::{BucketStore, DEFAULT_CALL_TIMEOUT};
use super::{BackendError, DirStore, ObjectStore};

/// Retries of one request after throttling, a 5xx answer or a broken
/// connection, before the call fails as transient (the plugin retries those
/// a few more times with its own back-off).
pub const REQUEST_RETRIES: usize = 4;

/// One request's deadline; slow bodies of large objects are split into parts.
const REQUEST_TIMEOUT: &str = "30s";

/// Connecting to the store's endpoint.
const CONNECT_TIMEOUT: &str = "5s";

/// Where a store lives, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory (`file:DIR`, `file:///DIR` or a plain path).
    Dir(PathBuf),
    /// An empty store in this process's memory (`memory:`), kept by
    /// `object_store` behind the same adapter as the clouds.
    Memory,
    /// A bucket (or container) of a cloud object store, with an optional key prefix.
    Bucket {
        /// Which API.
        service: Service,
        /// Bucket or container name.
        bucket: String,
        /// Keys are stored under `PREFIX/` when not empty.
        prefix: String,
    },
}

/// Cloud object-store APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Amazon S3 and compatible stores (Garage, MinIO, Ceph RGW): `s3://`.
    S3,
    /// Google Cloud Storage: `gs://`.
    Gcs,
    /// Azure Blob Storage: `az://`.
    Azure,
}

impl Service {
    fn scheme(self) -> &'static str {
        match self {
            Service::S3 => "s3",
            Service::Gcs => "gs",
            Service::Azure => "az",
        }
    }
}

impl Location {
    /// Parses `--backend`'s value.
    pub fn parse(url: &str) -> Result<Location, BackendError> {
        let bad = |why: &str| BackendError::Permanent(format!("backend URL {url:?}: {why}"));
        if url == "memory:" || url == "memory://" {
            return Ok(Location::Memory);
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad(
                    "a file:// URL takes an absolute path (file:///srv/storage)",
                ));
            }
            return Ok(Location::Dir(path.into()));
        }
        if let Some(path) = url.strip_prefix("file:") {
            if path.is_empty() {
                return Err(bad("no directory after file:"));
            }
            return Ok(Location::Dir(path.into()));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            if url.is_empty() {
                return Err(bad("empty"));
            }
            return Ok(Location::Dir(url.into()));
        };
        let service = match scheme {
            "s3" => Service::S3,
            "gs" => Service::Gcs,
            "az" => Service::Azure,
            _ => {
                return Err(bad(
                    "unknown scheme; use a directory, file:, s3://, gs://, az:// or memory:",
                ))
            }
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket name"));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            super::validate_key(prefix).map_err(|e| bad(&format!("prefix: {e}")))?;
        }
        Ok(Location::Bucket {
            service,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(path) => write!(f, "{}", path.display()),
            Location::Memory => f.write_str("memory:"),
            Location::Bucket {
                service,
                bucket,
                prefix,
            } if prefix.is_empty() => write!(f, "{}://{bucket}", service.scheme()),
            Location::Bucket {
                service,
                bucket,
                prefix,
            } => write!(f, "{}://{bucket}/{prefix}", service.scheme()),
        }
    }
}

/// Everything needed to open a store.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Where it is.
    pub location: Location,
    /// For object stores: the most bytes to keep, reported as available space
    /// minus what is stored (none: unlimited). A directory reports its
    /// filesystem's free space instead.
    pub quota: Option<u64>,
    /// `object_store` settings that override the environment, by their names
    /// (`aws_endpoint`, `aws_region`, `aws_allow_http`, `azure_storage_account_name`…).
    pub settings: Vec<(String, String)>,
    /// The longest one backend call may take, retries included.
    pub call_timeout: Duration,
}

impl BackendConfig {
    /// A store at `location`, configured from the environment.
    pub fn new(location: Location) -> BackendConfig {
        BackendConfig {
            location,
            quota: None,
            settings: Vec::new(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }

    /// Opens (creating a directory if missing) the store.
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>, BackendError> {
        let (service, bucket, prefix) = match &self.location {
            Location::Dir(root) => return Ok(Arc::new(DirStore::open(root)?)),
            // Through the same adapter as the clouds, so `memory:` exercises it.
            Location::Memory => {
                return Ok(Arc::new(BucketStore::new(
                    Arc::new(object_store::memory::InMemory::new()),
                    "memory:",
                    self.quota,
                )?))
            }
            Location::Bucket {
                service,
                bucket,
                prefix,
            } => (*service, bucket, prefix),
        };
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: REQUEST_RETRIES,
            retry_timeout: self.call_timeout,
        };
        let base = format!("{}://{bucket}", service.scheme());
        let settings = [
            ("timeout", REQUEST_TIMEOUT),
            ("connect_timeout", CONNECT_TIMEOUT),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain(self.settings.iter().cloned());
        let opening = |e: &dyn std::fmt::Display| {
            BackendError::Permanent(format!("opening {}: {e}", self.location))
        };
        macro_rules! build {
            ($builder:ty) => {{
                let mut builder = <$builder>::from_env().with_url(base).with_retry(retry);
                for (key, value) in settings {
                    let key = key.to_ascii_lowercase().parse().map_err(|e| opening(&e))?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(|e| opening(&e))?)
                    as Arc<dyn object_store::ObjectStore>
            }};
        }
        let store = match service {
            Service::S3 => build!(AmazonS3Builder),
            Service::Gcs => build!(GoogleCloudStorageBuilder),
            Service::Azure => build!(MicrosoftAzureBuilder),
        };
        let store = if prefix.is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix.as_str()))
        };
        Ok(Arc::new(
            BucketStore::new(store, self.location.to_string(), self.quota)?
                .with_call_timeout(self.call_timeout),
        ))
    }
}

/// Parses a size in bytes with an optional decimal or binary suffix, as
/// Tahoe's configuration does: `500`, `10k`, `20M`, `1G`, `2T`, `4GiB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 500G)"))?;
    let unit = unit.trim().trim_end_matches(['B', 'b']);
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        "t" => 1_000_000_000_000,
        "ki" => 1 << 10,
        "mi" => 1 << 20,
        "gi" => 1 << 30,
        "ti" => 1 << 40,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit (use k, M, G, T or Ki, Mi, Gi, Ti)"
            ))
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(service: Service, bucket: &str, prefix: &str) -> Location {
        Location::Bucket {
            service,
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn urls_name_their_store() {
        assert_eq!(
            Location::parse("./data/storage").unwrap(),
            Location::Dir("./data/storage".into())
        );
        assert_eq!(
            Location::parse("file:rel/dir").unwrap(),
            Location::Dir("rel/dir".into())
        );
        assert_eq!(
            Location::parse("file:///srv/s").unwrap(),
            Location::Dir("/srv/s".into())
        );
        assert_eq!(Location::parse("memory:").unwrap(), Location::Memory);
        assert_eq!(
            Location::parse("s3://b").unwrap(),
            bucket(Service::S3, "b", "")
        );
        assert_eq!(
            Location::parse("s3://b/p/q/").unwrap(),
            bucket(Service::S3, "b", "p/q")
        );
        assert_eq!(
            Location::parse("gs://b/p").unwrap(),
            bucket(Service::Gcs, "b", "p")
        );
        assert_eq!(
            Location::parse("az://c").unwrap(),
            bucket(Service::Azure, "c", "")
        );
        assert_eq!(
            Location::parse("s3://b/p/q").unwrap().to_string(),
            "s3://b/p/q"
        );
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, why) in [
            ("ftp://x", "unknown scheme"),
            ("s3://", "no bucket"),
            ("s3://b/../x", "prefix"),
            ("file://rel", "absolute"),
            ("", "empty"),
        ] {
            let Err(BackendError::Permanent(text)) = Location::parse(url) else {
                panic!("{url:?} was accepted")
            };
            assert!(text.contains(why), "{url:?}: {text}");
        }
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("500"), Ok(500));
        assert_eq!(parse_size("10k"), Ok(10_000));
        assert_eq!(parse_size("2G"), Ok(2_000_000_000));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert!(parse_size("G").is_err());
        assert!(parse_size("3X").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn memory_and_directories_open_without_a_network() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("storage");
        let store = BackendConfig::new(Location::parse(root.to_str().unwrap()).unwrap())
            .open()
            .unwrap();
        store.write("shares/aa/x/0", b"on disk").unwrap();
        assert!(root.join("shares/aa/x/0").is_file());
        let mut memory = BackendConfig::new(Location::Memory);
        memory.quota = Some(10);
        let store = memory.open().unwrap();
        assert_eq!(store.available_space().unwrap(), 10);
    }

    #[test]
    fn unknown_settings_are_refused_when_opening() {
        let mut config = BackendConfig::new(Location::parse("s3://b").unwrap());
        config
            .settings
            .push(("aws_no_such_setting".into(), "x".into()));
        let Err(BackendError::Permanent(text)) = config.open() else {
            panic!("an unknown setting was accepted")
        };
        assert!(text.contains("s3://b"), "{text}");
    }
}
