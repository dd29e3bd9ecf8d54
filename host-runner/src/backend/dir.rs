//! A store rooted at a local directory, in Tahoe's disk layout: key
//! `shares/aa/<si>/0` is the file `<root>/shares/aa/<si>/0`, so an existing
//! Tahoe `storage/` directory is a valid root.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::held::{sync_dir, HeldWrites};
use super::listing_memo::{self, Leaves, ListingMemo, Stamp};
use super::read_ahead::ReadAhead;
use super::{
    page_of, validate_key, validate_prefix, BackendError, ListPage, ObjectEntry, ObjectStore,
};

/// Names of in-progress writes start with this. The plugin's share names are
/// `<digits>[.<digits>]`, so no key it uses can collide, and listings skip them.
const TEMP_MARKER: &str = ".tmp-";

/// Distinguishes concurrent writes of the same key within this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The child directories of a directory, sorted as keys, re-read after this long.
const SIBLINGS_MAX_AGE: Duration = Duration::from_secs(1);

/// Objects as files under a root directory.
pub struct DirStore {
    root: PathBuf,
    /// The next prefix directory's listing, walked while the caller works
    /// through the one it asked for (a crawl lists them in key order).
    ahead: ReadAhead,
    /// Sorted names of the directories in one top-level directory, to find
    /// the one after a listed prefix directory.
    siblings: Mutex<Option<Siblings>>,
    /// Writes made but not yet durable, while a group commit holds them
    /// (`ObjectStore::hold_writes`).
    held: Mutex<HeldWrites>,
    /// The share directories as last walked, for walking only those that
    /// changed since.
    memo: Arc<ListingMemo>,
}

/// The directories in one top-level directory, when they were read.
struct Siblings {
    parent: String,
    /// Their names with a `/` after each, sorted: their keys' order.
    names: Vec<String>,
    read: Instant,
}

impl DirStore {
    /// A store rooted at `root`, which is created if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, BackendError> {
        Self::open_with(root, ListingMemo::new(listing_memo::DEFAULT_BUDGET))
    }

    /// [`open`](Self::open), keeping directories' listings in `memo`.
    fn open_with(root: impl Into<PathBuf>, memo: ListingMemo) -> Result<Self, BackendError> {
        let root = root.into();
        fs::create_dir_all(&root)
            .map_err(|e| io_error("creating the store root", &root.display().to_string(), e))?;
        let memo = Arc::new(memo);
        let (walk_root, walk_memo) = (root.clone(), memo.clone());
        let lister = Arc::new(move |prefix: &str, want: usize| {
            list_after(&walk_root, prefix, None, want, &walk_memo)
        });
        Ok(DirStore {
            root,
            ahead: ReadAhead::new(lister),
            siblings: Mutex::new(None),
            held: Mutex::new(HeldWrites::default()),
            memo,
        })
    }

    /// Starts walking the prefix directory after `prefix` when `prefix` is
    /// one (`top/name/`): a crawl asks for it next.
    fn read_ahead_after(&self, prefix: &str, want: usize) {
        let Some((parent, name)) = prefix
            .strip_suffix('/')
            .and_then(|p| p.split_once('/'))
            .filter(|(parent, name)| !parent.is_empty() && !name.is_empty() && !name.contains('/'))
        else {
            return;
        };
        let mut siblings = self.siblings.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = siblings
            .as_ref()
            .is_some_and(|s| s.parent == parent && s.read.elapsed() <= SIBLINGS_MAX_AGE);
        if !fresh {
            let Ok(names) = child_directories(&self.root.join(parent)) else {
                return;
            };
            *siblings = Some(Siblings {
                parent: parent.to_owned(),
                names,
                read: Instant::now(),
            });
        }
        let names = &siblings.as_ref().expect("just set").names;
        let listed = format!("{name}/");
        let next = names.partition_point(|n| *n <= listed);
        if let Some(next) = names.get(next) {
            self.ahead.start(format!("{parent}/{next}"), want);
        }
    }

    /// The directory this store is rooted at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key` now: its held write's, if it has one.
    fn held_or_placed(&self, key: &str) -> Result<PathBuf, BackendError> {
        let path = self.path_of(key)?;
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        Ok(held.temp_of(&path).map(Path::to_owned).unwrap_or(path))
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, BackendError> {
        validate_key(key)?;
        let name = key.rsplit('/').next().unwrap_or(key);
        if name.starts_with(TEMP_MARKER) {
            return Err(BackendError::InvalidKey(format!(
                "key {key:?} ends in a name starting with `{TEMP_MARKER}`, which this store keeps for its temporary files"
            )));
        }
        Ok(self.root.join(key))
    }

    /// Creates `dir` and its missing ancestors below the root, syncing each parent
    /// that gained an entry so the new directories survive a crash (or, with
    /// `held`, leaving that sync to the held writes).
    fn create_dirs(&self, dir: &Path, mut held: Option<&mut HeldWrites>) -> io::Result<()> {
        if dir == self.root || dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            self.create_dirs(parent, held.as_deref_mut())?;
        }
        let parent = dir.parent().unwrap_or(&self.root);
        match fs::create_dir(dir) {
            Ok(()) => match held {
                Some(held) => {
                    held.grew(parent);
                    Ok(())
                }
                None => sync_dir(parent),
            },
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn write_durably(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let dir = path.parent().unwrap_or(&self.root);
        let (temp, mut file) = self.create_temp(path, None)?;
        let written = file
            .write_all(data)
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&temp, path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        // The rename is durable only once the directory entry is.
        sync_dir(dir)
    }

    /// Writes `data` to a temporary file beside `path` and holds it there, to
    /// be synced and renamed with the other held writes.
    fn write_held(
        &self,
        key: &str,
        path: PathBuf,
        data: &[u8],
        held: &mut HeldWrites,
    ) -> io::Result<()> {
        if held.has(&path) {
            // One held write per key: the older one goes first, in its place.
            self.make_held_durable(held)?;
        }
        let (temp, mut file) = self.create_temp(&path, Some(held))?;
        if let Err(e) = file.write_all(data) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        if held.hold(key, path, temp, file, data.len() as u64) {
            self.make_held_durable(held)?;
        }
        Ok(())
    }

    /// Makes the held writes durable; the crawl's read-ahead forgets their keys.
    fn make_held_durable(&self, held: &mut HeldWrites) -> io::Result<()> {
        if held.is_empty() {
            return Ok(());
        }
        let placed = held.make_durable()?;
        for key in &placed {
            self.ahead.changed(key);
        }
        Ok(())
    }

    /// The held writes, made durable first when there are any: what a
    /// listing or a delete must see, and must come after.
    fn settled(&self) -> Result<std::sync::MutexGuard<'_, HeldWrites>, BackendError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        self.settle(&mut held)?;
        Ok(held)
    }

    /// [`make_held_durable`](Self::make_held_durable), failing as a backend call does.
    fn settle(&self, held: &mut HeldWrites) -> Result<(), BackendError> {
        self.make_held_durable(held).map_err(|e| {
            io_error(
                "making held writes durable under",
                &self.root.display().to_string(),
                e,
            )
        })
    }

    /// Creates a new temporary file beside `path` (and its directory, if missing).
    fn create_temp(
        &self,
        path: &Path,
        mut held: Option<&mut HeldWrites>,
    ) -> io::Result<(PathBuf, File)> {
        let dir = path.parent().unwrap_or(&self.root);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(
            "{TEMP_MARKER}{name}-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut create = || -> io::Result<File> {
            self.create_dirs(dir, held.as_deref_mut())?;
            OpenOptions::new().write(true).create_new(true).open(&temp)
        };
        // A concurrent delete may prune the directory between creating it and
        // creating the temp file; one retry covers that race.
        let file = match create() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => create()?,
            other => other?,
        };
        Ok((temp, file))
    }
}

/// One listing's walk: every object whose key starts with `prefix` and
/// sorts after `start_after`, until `want` are found.
struct Walk<'a> {
    root: &'a Path,
    prefix: &'a str,
    start_after: Option<&'a str>,
    want: usize,
    memo: &'a ListingMemo,
}

/// An entry of a directory being walked, by key.
enum Child {
    Dir(String),
    File(String),
}

impl Child {
    fn key(&self) -> &str {
        match self {
            Child::Dir(k) | Child::File(k) => k,
        }
    }
}

impl Walk<'_> {
    /// Appends every object below the open directory `dir` (whose key is
    /// `dir_key`, ending in `/` unless empty) to `out` in ascending key
    /// order. Subdirectories are opened and files stat-ed relative to their
    /// parent's descriptor: a crawl walks every share directory, and a
    /// lookup of each whole path again cost as much as the listing. A leaf
    /// directory unchanged since the memo took it is not read again. True
    /// when `dir` holds a directory.
    fn dir(&self, dir: OwnedFd, dir_key: &str, out: &mut Vec<ObjectEntry>) -> io::Result<bool> {
        let now = listing_memo::now_ns();
        let (children, entries) = self.children(dir, dir_key)?;
        let fd = entries.fd()?;
        let holds_dirs = children.iter().any(|c| matches!(c, Child::Dir(_)));
        // The leaves as last walked, and as walked now: kept in their place
        // only if this walk saw every child.
        let walked = self.memo.of(dir_key);
        let mut leaves = Leaves::default();
        let mut whole = self.start_after.is_none() && dir_key.starts_with(self.prefix);
        for child in children {
            if out.len() >= self.want {
                whole = false;
                break;
            }
            match child {
                Child::Dir(key) => {
                    // Skip subtrees that cannot match the prefix or lie wholly before start_after.
                    let relevant = key.starts_with(self.prefix) || self.prefix.starts_with(&key);
                    let passed = self.start_after.is_some_and(|after| {
                        key.as_str() < after && !after.starts_with(key.as_str())
                    });
                    if !relevant || passed {
                        continue;
                    }
                    let name = &key[dir_key.len()..key.len() - 1];
                    let mut stamp = None;
                    if let Some(walked) = &walked {
                        match rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                            Ok(stat)
                                if FileType::from_raw_mode(stat.st_mode) == FileType::Directory =>
                            {
                                let now_stamp = Stamp::of(&stat);
                                if let Some(files) = walked.files_of(name, now_stamp) {
                                    self.memo.served();
                                    for (file, size) in files.clone() {
                                        self.file(format!("{key}{file}"), size, out);
                                    }
                                    whole = whole && leaves.push(name, now_stamp, files);
                                    continue;
                                }
                                stamp = Some(now_stamp);
                            }
                            Err(rustix::io::Errno::NOENT) => continue,
                            // Not a directory now: the open below says why.
                            _ => {}
                        }
                    }
                    let sub = match open_dir_at(fd, name) {
                        // Deleted while we walked: it has nothing to list.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        other => other?,
                    };
                    // Taken before its names are read: a change while they
                    // are moves it past this.
                    let stamp =
                        stamp.or_else(|| rustix::fs::fstat(&sub).ok().map(|s| Stamp::of(&s)));
                    let before = out.len();
                    let is_leaf = match self.dir(sub, &key, out) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        other => !other?,
                    };
                    // Perhaps cut short.
                    whole = whole && out.len() < self.want;
                    match stamp {
                        Some(stamp) if whole && is_leaf && self.memo.settled(stamp, now) => {
                            let files = out[before..].iter().map(|e| (&e.key[key.len()..], e.size));
                            whole = leaves.push(name, stamp, files);
                        }
                        // Walked again next time, as now.
                        _ => {}
                    }
                }
                Child::File(key) => {
                    if !self.wants(&key) {
                        continue;
                    }
                    let name = &key[dir_key.len()..];
                    let size = match rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(stat) => stat.st_size as u64,
                        Err(rustix::io::Errno::NOENT) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    out.push(ObjectEntry { key, size });
                }
            }
        }
        if whole && (holds_dirs || walked.is_some()) {
            self.memo.keep(dir_key, leaves);
        }
        Ok(holds_dirs)
    }

    /// The objects and directories in `dir`, in key order, and `dir` read.
    fn children(&self, dir: OwnedFd, dir_key: &str) -> io::Result<(Vec<Child>, rustix::fs::Dir)> {
        let mut entries = rustix::fs::Dir::new(dir)?;
        let mut children = Vec::new();
        while let Some(entry) = entries.read() {
            let entry = entry?;
            // Names that are not UTF-8 cannot be keys.
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let file_type = match entry.file_type() {
                // Some filesystems leave the type out of the listing.
                FileType::Unknown => {
                    match rustix::fs::statat(entries.fd()?, name, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                        Err(rustix::io::Errno::NOENT) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                t => t,
            };
            if file_type == FileType::RegularFile && is_dead_writers_temp(name) {
                // A write cut short by a crash of an earlier process: nobody
                // will finish it, and listings (the crawler's) collect it.
                let path = self.root.join(dir_key).join(name);
                match fs::remove_file(&path) {
                    Ok(()) => tracing::info!(
                        "storage: removed {}, left by a write that was cut short",
                        path.display()
                    ),
                    Err(e) => tracing::warn!("storage: removing {}: {e}", path.display()),
                }
                continue;
            }
            if name.starts_with(TEMP_MARKER) {
                continue;
            }
            // Anything else, symlinks among them (they could lead out of the
            // root), is not an object.
            match file_type {
                // Sorting "d/" rather than "d" makes a depth-first walk yield keys in
                // byte order: "a.x" < "a/b" because '.' < '/'.
                FileType::Directory => children.push(Child::Dir(format!("{dir_key}{name}/"))),
                FileType::RegularFile => children.push(Child::File(format!("{dir_key}{name}"))),
                _ => {}
            }
        }
        children.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        Ok((children, entries))
    }

    /// Whether the object `key` belongs in this listing.
    fn wants(&self, key: &str) -> bool {
        key.starts_with(self.prefix) && self.start_after.is_none_or(|after| key > after)
    }

    /// Appends object `key` of a leaf listed from the memo, if it belongs.
    fn file(&self, key: String, size: u64, out: &mut Vec<ObjectEntry>) {
        if out.len() < self.want && self.wants(&key) {
            out.push(ObjectEntry { key, size });
        }
    }
}

/// Every object whose key starts with `prefix` and sorts after
/// `start_after`, at most `want`, in key order.
fn list_after(
    root: &Path,
    prefix: &str,
    start_after: Option<&str>,
    want: usize,
    memo: &ListingMemo,
) -> io::Result<Vec<ObjectEntry>> {
    // Only the deepest directory the prefix names completely can hold matches.
    let dir_key = match prefix.rfind('/') {
        Some(slash) => &prefix[..=slash],
        None => "",
    };
    let mut found = Vec::new();
    let opened = rustix::fs::open(
        &root.join(dir_key),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    );
    let walk = Walk {
        root,
        prefix,
        start_after,
        want,
        memo,
    };
    match opened
        .map_err(io::Error::from)
        .and_then(|fd| walk.dir(fd, dir_key, &mut found))
    {
        Ok(_) => Ok(found),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// The names of the directories in `dir`, each with a `/` after it, sorted.
fn child_directories(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|name| format!("{name}/"))
        .collect();
    names.sort_unstable();
    Ok(names)
}

/// Opens the directory `name` in `parent` for listing; a symlink is refused.
fn open_dir_at(parent: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

impl ObjectStore for DirStore {
    fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        validate_prefix(prefix)?;
        // Held writes are not at their keys yet: placed first, they are listed.
        drop(self.settled()?);
        // One more than asked tells whether another page follows.
        let want = (limit as usize).saturating_add(1);
        let walked_ahead = if start_after.is_none() {
            self.ahead.take(prefix, want)
        } else {
            None
        };
        let found = match walked_ahead {
            Some(listed) => listed,
            None => list_after(&self.root, prefix, start_after, want, &self.memo),
        }
        .map_err(|e| io_error("listing", prefix, e))?;
        if start_after.is_none() {
            self.read_ahead_after(prefix, want);
        }
        Ok(page_of(found.into_iter(), start_after, limit))
    }

    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        let path = self.held_or_placed(key)?;
        let file = File::open(&path).map_err(|e| io_error("reading", key, e))?;
        let meta = file.metadata().map_err(|e| io_error("reading", key, e))?;
        // A directory is not an object.
        if !meta.is_file() {
            return Err(BackendError::NotFound);
        }
        let size = meta.len();
        let wanted = length.min(size.saturating_sub(offset));
        let mut data = vec![0; wanted as usize];
        // Positioned reads: no seek first. A file cut shorter since the stat
        // gives what it still has.
        let mut got = 0;
        while got < data.len() {
            match file.read_at(&mut data[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error("reading", key, e)),
            }
        }
        data.truncate(got);
        Ok(data)
    }

    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        let path = self.path_of(key)?;
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let written = if held.holding() {
            self.write_held(key, path, data, &mut held)
        } else {
            self.write_durably(&path, data)
        };
        drop(held);
        self.ahead.changed(key);
        written.map_err(|e| match io_error("writing", key, e) {
            // Missing parents were created; NotFound here means something else vanished.
            BackendError::NotFound => {
                BackendError::Transient(format!("writing {key}: a directory vanished"))
            }
            other => other,
        })
    }

    fn delete(&self, key: &str) -> Result<(), BackendError> {
        let path = self.path_of(key)?;
        // A delete follows every write before it, held ones too.
        let held = self.settled()?;
        let removed = fs::remove_file(&path);
        drop(held);
        self.ahead.changed(key);
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error("deleting", key, e)),
        }
        if let Some(dir) = path.parent() {
            let _ = sync_dir(dir);
            // Prune the now-empty share directory (`shares/aa/<si>`) as Tahoe does;
            // remove_dir refuses non-empty directories, which is the check we want.
            if dir != self.root && fs::remove_dir(dir).is_ok() {
                let _ = sync_dir(dir.parent().unwrap_or(&self.root));
            }
        }
        Ok(())
    }

    fn size(&self, key: &str) -> Result<u64, BackendError> {
        let path = self.held_or_placed(key)?;
        let meta = fs::metadata(&path).map_err(|e| io_error("sizing", key, e))?;
        if meta.is_file() {
            Ok(meta.len())
        } else {
            Err(BackendError::NotFound)
        }
    }

    fn available_space(&self) -> Result<u64, BackendError> {
        let root = self.root.display().to_string();
        let stats = rustix::fs::statvfs(&self.root)
            .map_err(|e| io_error("measuring free space of", &root, e.into()))?;
        // Space available to unprivileged users, which is what this process can use.
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
    fn cpu_ahead(&self) -> Duration {
        self.ahead.cpu_walked()
    }
    fn hold_writes(&self) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_holding(true);
    }
    fn settle_held(&self) -> Result<(), BackendError> {
        self.settled().map(drop)
    }
    fn end_holding(&self) -> Result<(), BackendError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.set_holding(false);
        self.settle(&mut held)
    }
}

/// Makes a directory's entries durable.
/// Whether `name` is a temporary file of `write_durably`
/// (`.tmp-<name>-<pid>-<n>`) written by another process: one writer owns a
/// store, so that process died before renaming it into place.
fn is_dead_writers_temp(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_MARKER) else {
        return false;
    };
    let mut parts = rest.rsplitn(3, '-');
    let (_counter, pid) = (parts.next(), parts.next());
    parts.next().is_some()
        && pid
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|pid| pid != std::process::id())
}

/// The single place I/O errors become backend errors: absent, worth retrying, or not.
fn io_error(doing: &str, key: &str, e: io::Error) -> BackendError {
    match e.kind() {
        io::ErrorKind::NotFound => BackendError::NotFound,
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            BackendError::Transient(format!("{doing} {key}: {e}"))
        }
        _ => BackendError::Permanent(format!("{doing} {key}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, DirStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::open(dir.path().join("storage")).unwrap();
        (dir, store)
    }

    use super::super::listing_checks::{in_pages, keys};
    use super::super::{MAX_HELD_BYTES, MAX_HELD_WRITES};

    #[test]
    fn keys_map_onto_tahoe_layout() {
        let (_tmp, store) = store();
        let key = "shares/aa/aaaaaaaaaaaaaaaaaaaaaaaaaa/0";
        store.write(key, b"share data").unwrap();
        let on_disk = store.root().join("shares/aa/aaaaaaaaaaaaaaaaaaaaaaaaaa/0");
        assert_eq!(fs::read(on_disk).unwrap(), b"share data");
        assert_eq!(store.size(key).unwrap(), 10);
        assert_eq!(store.read(key, 6, 100).unwrap(), b"data");
        assert_eq!(store.read(key, 100, 100).unwrap(), b"");
    }

    #[test]
    fn write_replaces_and_leaves_no_temp_files() {
        let (_tmp, store) = store();
        store.write("d/k", b"first").unwrap();
        store.write("d/k", b"second").unwrap();
        assert_eq!(store.read("d/k", 0, u64::MAX).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(store.root().join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["k"]);
    }

    #[test]
    fn escapes_are_refused_and_touch_nothing() {
        let (tmp, store) = store();
        for key in [
            "../outside",
            "/tmp/abs",
            "a\0b",
            "a/../../outside",
            "a//b",
            "./a",
        ] {
            assert!(
                matches!(store.write(key, b"x"), Err(BackendError::InvalidKey(_))),
                "{key:?}"
            );
            assert!(
                matches!(store.read(key, 0, 1), Err(BackendError::InvalidKey(_))),
                "{key:?}"
            );
            assert!(
                matches!(store.size(key), Err(BackendError::InvalidKey(_))),
                "{key:?}"
            );
            assert!(
                matches!(store.delete(key), Err(BackendError::InvalidKey(_))),
                "{key:?}"
            );
        }
        assert!(matches!(
            store.list("../", None, 10),
            Err(BackendError::InvalidKey(_))
        ));
        assert!(!tmp.path().join("outside").exists());
        assert!(matches!(
            store.write("a/.tmp-x", b"x"),
            Err(BackendError::InvalidKey(_))
        ));
    }

    #[test]
    fn missing_objects_are_not_found() {
        let (_tmp, store) = store();
        assert_eq!(store.read("a/b", 0, 1), Err(BackendError::NotFound));
        assert_eq!(store.size("a/b"), Err(BackendError::NotFound));
        assert_eq!(store.delete("a/b"), Ok(()));
        assert_eq!(
            store.list("nothing/here/", None, 10).unwrap(),
            ListPage::default()
        );
        store.write("a/b", b"x").unwrap();
        // A directory is not an object.
        assert_eq!(store.size("a"), Err(BackendError::NotFound));
    }

    #[test]
    fn delete_prunes_the_emptied_share_directory_only() {
        let (_tmp, store) = store();
        store.write("shares/aa/si/0", b"x").unwrap();
        store.write("shares/aa/si/1", b"y").unwrap();
        store.delete("shares/aa/si/0").unwrap();
        assert!(store.root().join("shares/aa/si").is_dir());
        store.delete("shares/aa/si/1").unwrap();
        assert!(!store.root().join("shares/aa/si").exists());
        assert!(store.root().join("shares/aa").is_dir());
    }

    #[test]
    fn list_is_in_byte_order_and_pages() {
        let (_tmp, store) = store();
        let written = [
            "s/p/si/1",
            "s/p/si/10",
            "s/p/si/1.1",
            "s/p/si/2",
            "s/p/si/0",
            "s/p/sj/0",
            "s/q/x/0",
            "s/p/si.x",
        ];
        for key in written {
            store.write(key, key.as_bytes()).unwrap();
        }
        // A stray temp file from a crashed write is never listed.
        fs::write(store.root().join("s/p/si/.tmp-3-1-1"), b"partial").unwrap();
        let ours = format!(".tmp-4-{}-1", std::process::id());
        fs::write(store.root().join("s/p/si").join(&ours), b"in flight").unwrap();

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
        // Listing collects a dead process's temp file, never a live one's.
        assert!(!store.root().join("s/p/si/.tmp-3-1-1").exists());
        assert!(store.root().join("s/p/si").join(&ours).exists());

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

        // A partial last segment filters within its directory: share 1 is not share 10.
        let ones = store.list("s/p/si/1", None, 100).unwrap();
        assert_eq!(keys(&ones), ["s/p/si/1", "s/p/si/1.1", "s/p/si/10"]);
        let exact = store.list("s/p/si/1.", None, 100).unwrap();
        assert_eq!(keys(&exact), ["s/p/si/1.1"]);

        let page = store.list("s/", Some("s/p/sj/0"), 100).unwrap();
        assert_eq!(keys(&page), ["s/q/x/0"]);
        let page = store.list("", None, 1).unwrap();
        assert_eq!(keys(&page), ["s/p/si.x"]);
        assert_eq!(page.next.as_deref(), Some("s/p/si.x"));
    }

    #[test]
    fn an_existing_tahoe_storage_directory_is_served_as_is() {
        let (_tmp, store) = store();
        let dir = store.root().join("shares/ab/abcdefghijklmnopqrstuvwxyz");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("3"), b"old share").unwrap();
        let page = store.list("shares/ab/", None, 10).unwrap();
        assert_eq!(keys(&page), ["shares/ab/abcdefghijklmnopqrstuvwxyz/3"]);
        assert_eq!(
            store
                .read("shares/ab/abcdefghijklmnopqrstuvwxyz/3", 0, 100)
                .unwrap(),
            b"old share"
        );
    }

    #[test]
    fn a_listing_walked_ahead_shows_every_change_made_since() {
        let (_tmp, store) = store();
        for key in [
            "s/a/x/0", "s/b/x/0", "s/b/y/0", "s/c/x/0", "s/c/y/0", "s/c/z/0",
        ] {
            store.write(key, b"1").unwrap();
        }
        // Listing s/a/ walks s/b/ ahead; changes after that walk are seen.
        assert_eq!(keys(&store.list("s/a/", None, 100).unwrap()), ["s/a/x/0"]);
        store.ahead.wait_walked();
        store.write("s/b/z/0", b"new").unwrap();
        store.delete("s/b/x/0").unwrap();
        assert_eq!(
            keys(&store.list("s/b/", None, 1).unwrap()),
            ["s/b/y/0"],
            "a page of one"
        );
        assert_eq!(
            keys(&store.list("s/b/", None, 100).unwrap()),
            ["s/b/y/0", "s/b/z/0"]
        );
        // s/c/ was walked ahead for pages of one: a longer page walks again.
        store.list("s/b/", None, 1).unwrap();
        store.ahead.wait_walked();
        let all = store.list("s/c/", None, 100).unwrap();
        assert_eq!(keys(&all), ["s/c/x/0", "s/c/y/0", "s/c/z/0"]);
        assert_eq!(all.next, None);
    }

    #[test]
    fn the_store_reports_its_cpu_time_walking_ahead_through_its_wrappers() {
        let (_tmp, store) = store();
        for key in ["s/a/x/0", "s/b/x/0"] {
            store.write(key, b"1").unwrap();
        }
        let store = Arc::new(store);
        // What `serve` lends the plugin: the store inside its reserve.
        let lent = crate::backend::Reserved::new(store.clone(), 0, false);
        assert_eq!(lent.cpu_ahead(), Duration::ZERO);
        lent.list("s/a/", None, 100).unwrap();
        store.ahead.wait_walked();
        assert!(lent.cpu_ahead() > Duration::ZERO);
        assert_eq!(lent.cpu_ahead(), store.ahead.cpu_walked());
    }

    #[test]
    fn writes_are_held_through_the_stores_wrappers() {
        let (_tmp, store) = store();
        let store = Arc::new(store);
        // What `serve` lends the plugin, and what fault tests wrap around it.
        let reserved = Arc::new(crate::backend::Reserved::new(store.clone(), 0, false));
        let lent = crate::backend::FaultyStore::new(reserved);
        lent.hold_writes();
        lent.write("k/0", b"held").unwrap();
        assert_eq!(placed(&store, "k/0"), None);
        lent.settle_held().unwrap();
        assert!(placed(&store, "k/0").is_some());
        lent.write("k/1", b"held").unwrap();
        lent.end_holding().unwrap();
        assert!(placed(&store, "k/1").is_some());
        lent.write("k/2", b"now").unwrap();
        assert!(placed(&store, "k/2").is_some());
    }

    /// A store whose memo keeps any leaf walked: its stamp is older than
    /// the walk once a tick of the filesystem's clock has passed.
    fn store_remembering_at_once() -> (tempfile::TempDir, DirStore) {
        let dir = tempfile::tempdir().unwrap();
        let memo = ListingMemo::settling_in(listing_memo::DEFAULT_BUDGET, 0);
        let store = DirStore::open_with(dir.path().join("storage"), memo).unwrap();
        (dir, store)
    }

    /// Longer than a tick of a filesystem's clock.
    fn tick() {
        std::thread::sleep(Duration::from_millis(30));
    }

    #[test]
    fn a_share_directory_unchanged_since_it_was_walked_is_not_read_again() {
        let (_tmp, store) = store_remembering_at_once();
        for key in ["s/p/a/0", "s/p/a/1", "s/p/b/0", "s/p/c/0"] {
            store.write(key, b"12345").unwrap();
        }
        tick();
        let first = store.list("s/p/", None, 100).unwrap();
        assert_eq!(keys(&first), ["s/p/a/0", "s/p/a/1", "s/p/b/0", "s/p/c/0"]);
        assert_eq!(store.memo.times_served(), 0);
        let again = store.list("s/p/", None, 100).unwrap();
        assert_eq!(again, first, "keys and sizes as walked");
        assert_eq!(store.memo.times_served(), 3, "no directory was read again");
        // Pages and narrower prefixes are served from it as well.
        assert_eq!(in_pages(&store, "s/p/", 1), keys(&first));
        assert_eq!(
            keys(&store.list("s/p/a/", None, 100).unwrap()),
            ["s/p/a/0", "s/p/a/1"]
        );
    }

    #[test]
    fn a_share_directory_changed_since_it_was_walked_is_read_again() {
        let (_tmp, store) = store_remembering_at_once();
        for key in ["s/p/a/0", "s/p/b/0", "s/p/c/0", "s/p/d/0"] {
            store.write(key, b"12345").unwrap();
        }
        tick();
        store.list("s/p/", None, 100).unwrap();
        // Through the store, and behind its back.
        store.write("s/p/a/1", b"new").unwrap();
        store.delete("s/p/b/0").unwrap();
        fs::write(store.root().join("s/p/c/7"), b"copied in").unwrap();
        fs::remove_file(store.root().join("s/p/d/0")).unwrap();
        fs::create_dir(store.root().join("s/p/e")).unwrap();
        fs::write(store.root().join("s/p/e/0"), b"new share").unwrap();
        tick();
        let served = store.memo.times_served();
        let listed = store.list("s/p/", None, 100).unwrap();
        assert_eq!(
            keys(&listed),
            ["s/p/a/0", "s/p/a/1", "s/p/c/0", "s/p/c/7", "s/p/e/0"]
        );
        assert_eq!(listed.entries[3].size, 9);
        assert_eq!(store.memo.times_served(), served, "every directory changed");
        // A directory put in the place of one walked is another directory.
        tick();
        fs::remove_file(store.root().join("s/p/e/0")).unwrap();
        fs::remove_dir(store.root().join("s/p/e")).unwrap();
        fs::create_dir(store.root().join("s/p/e")).unwrap();
        fs::write(store.root().join("s/p/e/1"), b"x").unwrap();
        assert_eq!(
            keys(&store.list("s/p/", None, 100).unwrap()),
            ["s/p/a/0", "s/p/a/1", "s/p/c/0", "s/p/c/7", "s/p/e/1"]
        );
    }

    #[test]
    fn a_share_directory_changed_in_the_last_seconds_is_not_remembered() {
        // The shipped memo: a change later in the same tick of the
        // filesystem's clock could leave such a directory's times as they are.
        let (_tmp, store) = store();
        store.write("s/p/a/0", b"1").unwrap();
        store.list("s/p/", None, 100).unwrap();
        assert_eq!(store.memo.bytes(), 0, "nothing remembered");
        fs::write(store.root().join("s/p/a/1"), b"2").unwrap();
        assert_eq!(
            keys(&store.list("s/p/", None, 100).unwrap()),
            ["s/p/a/0", "s/p/a/1"]
        );
    }

    #[test]
    fn available_space_is_reported() {
        let (_tmp, store) = store();
        assert!(store.available_space().unwrap() > 0);
    }
    /// Symlinks could lead out of the root: neither a linked file nor a
    /// linked directory is listed or walked into.
    #[test]
    fn symlinks_are_not_listed_or_followed() {
        let (tmp, store) = store();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("zzzzzzzzzzzzzzzzzzzzzzzzzz")).unwrap();
        fs::write(outside.join("zzzzzzzzzzzzzzzzzzzzzzzzzz/0"), b"not ours").unwrap();
        let prefix = store.root().join("shares/ab");
        fs::create_dir_all(prefix.join("abcdefghijklmnopqrstuvwxyz")).unwrap();
        fs::write(prefix.join("abcdefghijklmnopqrstuvwxyz/1"), b"ours").unwrap();
        std::os::unix::fs::symlink(
            outside.join("zzzzzzzzzzzzzzzzzzzzzzzzzz/0"),
            prefix.join("abcdefghijklmnopqrstuvwxyz/2"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            outside.join("zzzzzzzzzzzzzzzzzzzzzzzzzz"),
            prefix.join("abzzzzzzzzzzzzzzzzzzzzzzzz"),
        )
        .unwrap();
        let page = store.list("shares/", None, 10).unwrap();
        assert_eq!(keys(&page), ["shares/ab/abcdefghijklmnopqrstuvwxyz/1"]);
    }

    /// Whether `key`'s file is in place (not only held), and what it holds.
    fn placed(store: &DirStore, key: &str) -> Option<Vec<u8>> {
        fs::read(store.root().join(key)).ok()
    }

    #[test]
    fn a_held_write_is_readable_at_once_and_in_place_once_settled() {
        let (_d, store) = store();
        store.hold_writes();
        store.write("shares/ab/abc/0", b"held").unwrap();
        assert_eq!(store.read("shares/ab/abc/0", 0, 100).unwrap(), b"held");
        assert_eq!(store.size("shares/ab/abc/0").unwrap(), 4);
        assert_eq!(placed(&store, "shares/ab/abc/0"), None);
        store.settle_held().unwrap();
        assert_eq!(placed(&store, "shares/ab/abc/0"), Some(b"held".to_vec()));
        // Holding goes on until it ends.
        store.write("shares/ab/abc/1", b"next").unwrap();
        assert_eq!(placed(&store, "shares/ab/abc/1"), None);
        store.end_holding().unwrap();
        assert_eq!(placed(&store, "shares/ab/abc/1"), Some(b"next".to_vec()));
        store.write("shares/ab/abc/2", b"now").unwrap();
        assert_eq!(placed(&store, "shares/ab/abc/2"), Some(b"now".to_vec()));
    }

    #[test]
    fn a_crash_before_held_writes_are_settled_leaves_their_keys_as_they_were() {
        let (dir, store) = store();
        store.write("shares/ab/abc/0", b"old").unwrap();
        store.hold_writes();
        store.write("shares/ab/abc/0", b"new").unwrap();
        store.write("shares/cd/cde/0", b"fresh").unwrap();
        drop(store);
        let store = DirStore::open(dir.path().join("storage")).unwrap();
        assert_eq!(store.read("shares/ab/abc/0", 0, 100).unwrap(), b"old");
        assert_eq!(
            store.read("shares/cd/cde/0", 0, 100),
            Err(BackendError::NotFound)
        );
        assert_eq!(in_pages(&store, "", 10), ["shares/ab/abc/0"]);
    }

    #[test]
    fn a_delete_or_a_listing_comes_after_the_held_writes() {
        let (_d, store) = store();
        store.write("shares/ab/abc/journal", b"j").unwrap();
        store.hold_writes();
        store.write("shares/ab/abc/0", b"data").unwrap();
        store.delete("shares/ab/abc/journal").unwrap();
        assert_eq!(placed(&store, "shares/ab/abc/0"), Some(b"data".to_vec()));
        store.write("shares/cd/cde/0", b"more").unwrap();
        assert_eq!(
            in_pages(&store, "shares/", 10),
            ["shares/ab/abc/0", "shares/cd/cde/0"]
        );
        assert_eq!(placed(&store, "shares/cd/cde/0"), Some(b"more".to_vec()));
    }

    #[test]
    fn a_key_written_twice_while_held_places_the_older_write_first() {
        let (_d, store) = store();
        store.hold_writes();
        store.write("k/0", b"first").unwrap();
        store.write("k/0", b"second").unwrap();
        assert_eq!(placed(&store, "k/0"), Some(b"first".to_vec()));
        assert_eq!(store.read("k/0", 0, 100).unwrap(), b"second");
        store.end_holding().unwrap();
        assert_eq!(placed(&store, "k/0"), Some(b"second".to_vec()));
    }

    #[test]
    fn held_writes_are_bounded_in_number_and_bytes() {
        let (_d, store) = store();
        store.hold_writes();
        for i in 0..MAX_HELD_WRITES {
            store.write(&format!("n/{i}"), b"x").unwrap();
        }
        assert!(
            placed(&store, "n/0").is_some(),
            "the write reaching the limit settles them"
        );
        let big = vec![1u8; (MAX_HELD_BYTES / 2) as usize];
        store.write("b/0", &big).unwrap();
        assert!(placed(&store, "b/0").is_none());
        store.write("b/1", &big).unwrap();
        assert!(placed(&store, "b/0").is_some());
        assert!(placed(&store, "b/1").is_some());
    }
}
