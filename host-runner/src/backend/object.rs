//! A store in an object-store bucket (S3, Google Cloud Storage, Azure Blob,
//! or `object_store`'s in-memory store), through the `object_store` crate.
//!
//! Keys are object names below an optional prefix, exactly as the directory
//! store lays them out as paths, so a store copies between backends with
//! standard tools (`aws s3 sync storage/ s3://bucket/prefix/`).
//!
//! Our trait is synchronous and called from plain threads, possibly from
//! inside a tokio runtime (the server's): every call is spawned onto a
//! runtime this store owns and awaited through a channel, never with
//! `block_on`, so no caller can hit tokio's nested-runtime panic.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};

use super::{validate_key, validate_prefix, BackendError, ListPage, ObjectEntry, ObjectStore};

/// Objects larger than this are uploaded in parts of this size (S3's
/// smallest part is 5 MiB), so one failed request resends one part.
pub const MULTIPART_PART_SIZE: usize = 8 << 20;

/// How long one backend call may take, retries and back-off included.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A write's deadline grows by this per MiB, so large objects on a slow link
/// are not cut off by a deadline sized for small ones.
const TIMEOUT_PER_MIB: Duration = Duration::from_secs(1);

/// Parts of one object uploaded at once.
const PARTS_IN_FLIGHT: usize = 4;

/// An `object_store` store behind our [`ObjectStore`] trait.
pub struct BucketStore {
    store: Arc<dyn object_store::ObjectStore>,
    /// Where the store is, for messages (`s3://bucket/prefix`).
    name: String,
    /// Runs every call; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    call_timeout: Duration,
    quota: Option<Quota>,
}

/// Space accounting against a configured limit: the bytes under the store's
/// prefix, counted once at open and then kept up to date by every write and
/// delete made through this store.
struct Quota {
    limit: u64,
    used: AtomicU64,
}

impl BucketStore {
    /// Wraps `store` (already scoped to its prefix); `name` names it in errors.
    /// With a `quota`, the bytes already stored are counted now (one listing).
    pub fn new(
        store: Arc<dyn object_store::ObjectStore>,
        name: impl Into<String>,
        quota: Option<u64>,
    ) -> Result<Self, BackendError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("object-store")
            .enable_all()
            .build()
            .map_err(|e| {
                BackendError::Permanent(format!("starting the object-store runtime: {e}"))
            })?;
        let mut bucket = BucketStore {
            store,
            name: name.into(),
            runtime: Some(runtime),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            quota: None,
        };
        if let Some(limit) = quota {
            let used = bucket.count_used()?;
            bucket.quota = Some(Quota {
                limit,
                used: AtomicU64::new(used),
            });
        }
        Ok(bucket)
    }

    /// Sets how long one call may take in all (default [`DEFAULT_CALL_TIMEOUT`]).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Where this store is (`s3://bucket/prefix`, `memory:`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `call` on this store's runtime and waits for it, at most `timeout`.
    fn run<T: Send + 'static>(
        &self,
        doing: String,
        timeout: Duration,
        call: impl std::future::Future<Output = Result<T, BackendError>> + Send + 'static,
    ) -> Result<T, BackendError> {
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let outcome = match tokio::time::timeout(timeout, call).await {
                Ok(outcome) => outcome,
                Err(_) => Err(BackendError::Transient(format!(
                    "{doing}: no answer within {timeout:?}"
                ))),
            };
            let _ = tx.send(outcome);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(BackendError::Transient(
                "the object-store runtime stopped during the call".into(),
            ))
        })
    }

    fn path_of(&self, key: &str) -> Result<Path, BackendError> {
        validate_key(key)?;
        Path::parse(key).map_err(|e| BackendError::InvalidKey(format!("key {key:?}: {e}")))
    }

    /// Sums the sizes of every object in the store (for the quota).
    fn count_used(&self) -> Result<u64, BackendError> {
        let store = self.store.clone();
        let name = self.name.clone();
        // A listing of millions of objects takes a while; it happens once, at open.
        self.run(
            format!("counting the bytes in {name}"),
            self.call_timeout * 10,
            async move {
                let mut listing = store.list(None);
                let mut used = 0u64;
                while let Some(meta) = listing.next().await {
                    let meta = meta.map_err(|e| classify(&format!("listing {name}"), e))?;
                    used = used.saturating_add(meta.size);
                }
                Ok(used)
            },
        )
    }

    /// The size of `path`, or `None` if absent; for quota accounting.
    fn size_if_present(&self, key: &str, path: &Path) -> Result<Option<u64>, BackendError> {
        match self.size_of(key, path.clone()) {
            Ok(size) => Ok(Some(size)),
            Err(BackendError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn size_of(&self, key: &str, path: Path) -> Result<u64, BackendError> {
        let store = self.store.clone();
        let doing = format!("sizing {key}");
        self.run(doing.clone(), self.call_timeout, async move {
            store
                .head(&path)
                .await
                .map(|meta| meta.size)
                .map_err(|e| classify(&doing, e))
        })
    }
}

impl Drop for BucketStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio forbids inside another
        // runtime (a server shutting down); nothing is left running on it.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl ObjectStore for BucketStore {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        validate_prefix(prefix)?;
        // object_store lists by whole segments: ask for the deepest directory
        // the prefix names completely and filter the partial last segment here.
        let dir = match prefix.rfind('/') {
            Some(slash) => &prefix[..slash],
            None => "",
        };
        let dir = (!dir.is_empty())
            .then(|| Path::parse(dir))
            .transpose()
            .map_err(|e| BackendError::InvalidKey(format!("prefix {prefix:?}: {e}")))?;
        // The store's offset only saves fetching what is filtered out below,
        // which alone decides what a page holds.
        let offset = start_after
            .filter(|after| *after > prefix)
            .and_then(|after| Path::parse(after).ok());
        let store = self.store.clone();
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        let doing = format!("listing {}/{prefix}", self.name);
        self.run(doing.clone(), self.call_timeout, async move {
            let mut listing = match &offset {
                Some(offset) => store.list_with_offset(dir.as_ref(), offset),
                None => store.list(dir.as_ref()),
            };
            let mut entries = Vec::new();
            let mut more = false;
            // Pages arrive in key order; stop fetching once the page is full
            // or the keys have passed the prefix.
            while let Some(meta) = listing.next().await {
                // A failed page fails the listing: an empty answer would read as "no shares".
                let meta = meta.map_err(|e| classify(&doing, e))?;
                let key = meta.location.as_ref();
                if start_after.as_deref().is_some_and(|after| key <= after) {
                    continue;
                }
                if !key.starts_with(prefix.as_str()) {
                    if key > prefix.as_str() {
                        break;
                    }
                    continue;
                }
                if entries.len() == limit as usize {
                    more = true;
                    break;
                }
                entries.push(ObjectEntry {
                    key: key.to_owned(),
                    size: meta.size,
                });
            }
            let next = more.then(|| {
                entries
                    .last()
                    .map(|e: &ObjectEntry| e.key.clone())
                    .unwrap_or_else(|| start_after.clone().unwrap_or_default())
            });
            Ok(ListPage { entries, next })
        })
    }

    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        let path = self.path_of(key)?;
        if length == 0 {
            return self.size_of(key, path).map(|_| Vec::new());
        }
        let range: Range<u64> = offset..offset.saturating_add(length);
        let store = self.store.clone();
        let doing = format!("reading {key}");
        let ranged = {
            let path = path.clone();
            self.run(doing.clone(), self.call_timeout, async move {
                store
                    .get_range(&path, range)
                    .await
                    .map(|bytes| bytes.to_vec())
                    .map_err(|e| classify(&doing, e))
            })
        };
        match ranged {
            Err(e @ (BackendError::Transient(_) | BackendError::Permanent(_))) => {
                // A range starting at or past the end is refused by the store
                // (416); ours reads short. Anything else keeps its error.
                match self.size_of(key, path) {
                    Ok(size) if offset >= size => Ok(Vec::new()),
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        let path = self.path_of(key)?;
        let replaced = match &self.quota {
            Some(quota) => {
                let old = self.size_if_present(key, &path)?.unwrap_or(0);
                let used = quota.used.load(Ordering::Relaxed);
                let after = used.saturating_sub(old).saturating_add(data.len() as u64);
                if after > quota.limit {
                    return Err(BackendError::Permanent(format!(
                        "writing {key}: no space ({after} bytes would exceed the quota of {} on {})",
                        quota.limit, self.name
                    )));
                }
                old
            }
            None => 0,
        };
        let store = self.store.clone();
        let doing = format!("writing {key}");
        let timeout = self.call_timeout + TIMEOUT_PER_MIB * (data.len() >> 20) as u32;
        // One copy into shared bytes: the payload must outlive this call's borrow.
        let payload = bytes::Bytes::copy_from_slice(data);
        let size = payload.len() as u64;
        self.run(doing.clone(), timeout, async move {
            if payload.len() <= MULTIPART_PART_SIZE {
                store
                    .put(&path, PutPayload::from(payload))
                    .await
                    .map_err(|e| classify(&doing, e))?;
                return Ok(());
            }
            let upload = store
                .put_multipart(&path)
                .await
                .map_err(|e| classify(&doing, e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART_SIZE);
            for part in payload.chunks(MULTIPART_PART_SIZE) {
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| classify(&doing, e))?;
                writer.put(payload.slice_ref(part));
            }
            // On failure `finish` aborts the upload, so no parts are left behind.
            writer.finish().await.map_err(|e| classify(&doing, e))?;
            Ok(())
        })?;
        if let Some(quota) = &self.quota {
            adjust(&quota.used, replaced, size);
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), BackendError> {
        let path = self.path_of(key)?;
        // The HEAD only sizes the quota's refund: the DELETE is sent whatever
        // it said, so a HEAD that missed a fresh object cannot leave it behind.
        let removed = match &self.quota {
            Some(_) => self.size_if_present(key, &path)?.unwrap_or(0),
            None => 0,
        };
        let store = self.store.clone();
        let doing = format!("deleting {key}");
        self.run(doing.clone(), self.call_timeout, async move {
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(classify(&doing, e)),
            }
        })?;
        if let Some(quota) = &self.quota {
            adjust(&quota.used, removed, 0);
        }
        Ok(())
    }

    fn size(&self, key: &str) -> Result<u64, BackendError> {
        let path = self.path_of(key)?;
        self.size_of(key, path)
    }

    fn available_space(&self) -> Result<u64, BackendError> {
        // An object store has no free space to ask for: without a quota the
        // store takes whatever it is given.
        Ok(match &self.quota {
            Some(quota) => quota
                .limit
                .saturating_sub(quota.used.load(Ordering::Relaxed)),
            None => u64::MAX,
        })
    }
}

/// Replaces `old` bytes by `new` in the running total.
fn adjust(used: &AtomicU64, old: u64, new: u64) {
    let _ = used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
        Some(u.saturating_sub(old).saturating_add(new))
    });
}

/// The single place `object_store` errors become backend errors.
///
/// The client has already retried throttling, 5xx answers and broken
/// connections with bounded, backed-off retries (see `url.rs`); what remains
/// of those is still worth retrying later, so it is transient. Refusals the
/// store means (bad credentials, a malformed request) are permanent.
fn classify(doing: &str, e: object_store::Error) -> BackendError {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => BackendError::NotFound,
        E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. } => BackendError::Permanent(format!("{doing}: {e}")),
        e => match http_status(&e) {
            // Client errors other than timeouts and throttling will not go away.
            Some(status) if (400..500).contains(&status) && status != 408 && status != 429 => {
                BackendError::Permanent(format!("{doing}: {e}"))
            }
            _ => BackendError::Transient(format!("{doing}: {e}")),
        },
    }
}

/// The HTTP status behind an error, if the store answered with one.
///
/// `object_store` keeps its request error type private, so the status is read
/// from the message it always formats the same way.
fn http_status(e: &object_store::Error) -> Option<u16> {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        let text = err.to_string();
        if let Some(at) = text.find("non-2xx status code: ") {
            let digits = &text[at + "non-2xx status code: ".len()..];
            if let Some(code) = digits.get(..3).and_then(|d| d.parse().ok()) {
                return Some(code);
            }
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn store() -> BucketStore {
        BucketStore::new(Arc::new(InMemory::new()), "memory:", None).unwrap()
    }

    use super::super::listing_checks::keys;

    #[test]
    fn list_filters_partial_segments_and_pages_in_byte_order() {
        let store = store();
        for key in [
            "s/p/si/1",
            "s/p/si/10",
            "s/p/si/1.1",
            "s/p/si/2",
            "s/p/si/0",
            "s/p/sj/0",
            "s/q/x/0",
            "s/p/si.x",
        ] {
            store.write(key, key.as_bytes()).unwrap();
        }
        let all = store.list("s/p/", None, 100).unwrap();
        assert_eq!(
            keys(&all),
            [
                "s/p/si.x",
                "s/p/si/0",
                "s/p/si/1",
                "s/p/si/1.1",
                "s/p/si/10",
                "s/p/si/2",
                "s/p/sj/0"
            ]
        );
        assert_eq!(all.next, None);
        assert_eq!(all.entries[2].size, "s/p/si/1".len() as u64);

        assert_eq!(
            super::super::listing_checks::in_pages(&store, "s/p/si/", 2),
            [
                "s/p/si/0",
                "s/p/si/1",
                "s/p/si/1.1",
                "s/p/si/10",
                "s/p/si/2"
            ]
        );

        // A partial last segment: share 1 is not share 10's directory sibling only.
        let ones = store.list("s/p/si/1", None, 100).unwrap();
        assert_eq!(keys(&ones), ["s/p/si/1", "s/p/si/1.1", "s/p/si/10"]);
        let partial_dir = store.list("s/p/s", None, 100).unwrap();
        assert_eq!(partial_dir.entries.len(), 7);
        let page = store.list("s/", Some("s/p/sj/0"), 100).unwrap();
        assert_eq!(keys(&page), ["s/q/x/0"]);
        let page = store.list("", None, 1).unwrap();
        assert_eq!(keys(&page), ["s/p/si.x"]);
        assert_eq!(page.next.as_deref(), Some("s/p/si.x"));
        assert_eq!(
            store.list("nothing/", None, 10).unwrap(),
            ListPage::default()
        );
    }

    #[test]
    fn reads_are_ranged_and_short_at_the_end() {
        let store = store();
        store.write("k/v", b"hello world").unwrap();
        assert_eq!(store.read("k/v", 6, 3).unwrap(), b"wor");
        assert_eq!(store.read("k/v", 6, u64::MAX).unwrap(), b"world");
        assert_eq!(store.read("k/v", 11, 5).unwrap(), b"");
        assert_eq!(store.read("k/v", 50, 5).unwrap(), b"");
        assert_eq!(store.read("k/v", 0, 0).unwrap(), b"");
        store.write("k/empty", b"").unwrap();
        assert_eq!(store.read("k/empty", 0, 10).unwrap(), b"");
        assert_eq!(store.size("k/v").unwrap(), 11);
    }

    #[test]
    fn missing_objects_are_not_found_and_deletes_are_idempotent() {
        let store = store();
        assert_eq!(store.read("a/b", 0, 1), Err(BackendError::NotFound));
        assert_eq!(store.read("a/b", 0, 0), Err(BackendError::NotFound));
        assert_eq!(store.size("a/b"), Err(BackendError::NotFound));
        assert_eq!(store.delete("a/b"), Ok(()));
        store.write("a/b", b"x").unwrap();
        store.delete("a/b").unwrap();
        assert_eq!(store.size("a/b"), Err(BackendError::NotFound));
    }

    #[test]
    fn large_objects_are_uploaded_in_parts_and_read_back_whole() {
        let store = store();
        let data: Vec<u8> = (0..(MULTIPART_PART_SIZE * 2 + 12_345) as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        store.write("big/0", &data).unwrap();
        assert_eq!(store.size("big/0").unwrap(), data.len() as u64);
        let at = MULTIPART_PART_SIZE as u64 - 10;
        assert_eq!(
            store.read("big/0", at, 20).unwrap(),
            &data[at as usize..at as usize + 20]
        );
        assert_eq!(store.read("big/0", 0, u64::MAX).unwrap(), data);
    }

    #[test]
    fn escapes_are_refused() {
        let store = store();
        for key in ["../x", "/abs", "a\0b", "a/./b", "a//b", "a/"] {
            assert!(
                matches!(store.write(key, b"x"), Err(BackendError::InvalidKey(_))),
                "{key:?}"
            );
            assert!(
                matches!(store.read(key, 0, 1), Err(BackendError::InvalidKey(_))),
                "{key:?}"
            );
        }
        assert!(matches!(
            store.list("../", None, 1),
            Err(BackendError::InvalidKey(_))
        ));
    }

    #[test]
    fn a_quota_counts_what_is_stored_and_refuses_what_exceeds_it() {
        let memory: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
        let before = BucketStore::new(memory.clone(), "memory:", None).unwrap();
        before.write("old/0", &[0; 30]).unwrap();
        assert_eq!(before.available_space().unwrap(), u64::MAX);

        // Objects already there count against the quota from the start.
        let store = BucketStore::new(memory, "memory:", Some(100)).unwrap();
        assert_eq!(store.available_space().unwrap(), 70);
        store.write("a/0", &[0; 50]).unwrap();
        assert_eq!(store.available_space().unwrap(), 20);
        assert!(matches!(
            store.write("a/1", &[0; 21]),
            Err(BackendError::Permanent(_))
        ));
        // Replacing an object counts the difference.
        store.write("a/0", &[0; 70]).unwrap();
        assert_eq!(store.available_space().unwrap(), 0);
        store.delete("a/0").unwrap();
        store.delete("a/0").unwrap();
        assert_eq!(store.available_space().unwrap(), 70);
    }

    #[test]
    fn calls_from_inside_a_tokio_runtime_do_not_panic() {
        let store = Arc::new(store());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let inside = store.clone();
        runtime.block_on(async move {
            inside.write("t/0", b"from async").unwrap();
            assert_eq!(inside.read("t/0", 5, 100).unwrap(), b"async");
        });
        // The last handle dropped inside a runtime must not panic either.
        runtime.block_on(async move { drop(store) });
    }

    #[test]
    fn errors_keep_their_kind() {
        let e = object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        };
        assert_eq!(classify("reading x", e), BackendError::NotFound);
        let e = object_store::Error::Unauthenticated {
            path: "x".into(),
            source: "bad key".into(),
        };
        assert!(matches!(
            classify("reading x", e),
            BackendError::Permanent(_)
        ));
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 503 Service Unavailable: SlowDown".into(),
        };
        assert!(matches!(
            classify("reading x", e),
            BackendError::Transient(_)
        ));
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 400 Bad Request: ".into(),
        };
        assert!(matches!(
            classify("reading x", e),
            BackendError::Permanent(_)
        ));
    }
}
