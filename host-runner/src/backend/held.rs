//! Object writes held back to be made durable together. A group commit's
//! rows share one sync of the database; its objects (each a temporary file,
//! its sync, a rename and its directory's sync) would otherwise be synced one
//! after another on the plugin's thread. Held, each file is synced on a sync
//! thread from the moment it is written, while the plugin goes on with the
//! batch; when they are made durable they are renamed into place in the
//! order written and their directories are synced side by side.
//!
//! Until then a held object is only a temporary file: a crash leaves its key
//! as it was, which is what a crash before the write would have left, and the
//! database never durably names it (the host makes held writes durable
//! before any sync of the plugin's own files and any write of its database:
//! `plugin::imports::filesystem`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;

/// Most writes held at once: one more makes them durable first.
pub const MAX_HELD_WRITES: usize = 256;

/// Most bytes held at once: bounds the wait of the sync that makes them durable.
pub const MAX_HELD_BYTES: u64 = 32 << 20;

/// Syncs in flight at once.
const SYNC_THREADS: usize = 8;

/// One write held back: its data is in `temp`, being synced.
struct Held {
    key: String,
    path: PathBuf,
    temp: PathBuf,
    /// The sync of `temp`, started when the write was held.
    synced: Syncing,
}

/// The writes of one store held back, in the order they were made.
#[derive(Default)]
pub struct HeldWrites {
    holding: bool,
    writes: Vec<Held>,
    bytes: u64,
    /// Directories that gained a new directory, each being synced.
    grown: BTreeMap<PathBuf, Syncing>,
}

impl HeldWrites {
    /// Whether writes are being held now.
    pub fn holding(&self) -> bool {
        self.holding
    }

    /// Starts (or stops) holding writes back.
    pub fn set_holding(&mut self, holding: bool) {
        self.holding = holding;
    }

    /// Whether any write waits to be made durable.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.grown.is_empty()
    }

    /// Where the held write of `path` is until it is made durable, if there is one.
    pub fn temp_of(&self, path: &Path) -> Option<&Path> {
        self.writes
            .iter()
            .rev()
            .find(|w| w.path == path)
            .map(|w| w.temp.as_path())
    }

    /// Whether `path` has a held write.
    pub fn has(&self, path: &Path) -> bool {
        self.temp_of(path).is_some()
    }

    /// Records that `dir` gained an entry, and starts syncing it.
    pub fn grew(&mut self, dir: &Path) {
        if !self.grown.contains_key(dir) {
            let synced = Syncing::start(Durable::Dir(dir.to_owned()));
            self.grown.insert(dir.to_owned(), synced);
        }
    }

    /// Holds a write of `key` (at `path`) whose data is written to `temp`
    /// through `file`, and starts syncing it while the caller goes on.
    /// Returns whether the limits are reached and the held writes should be
    /// made durable now.
    pub fn hold(&mut self, key: &str, path: PathBuf, temp: PathBuf, file: File, len: u64) -> bool {
        self.writes.push(Held {
            key: key.to_owned(),
            path,
            temp,
            synced: Syncing::start(Durable::File(file)),
        });
        self.bytes += len;
        self.writes.len() >= MAX_HELD_WRITES || self.bytes >= MAX_HELD_BYTES
    }

    /// Makes every held write durable: once every file's sync (started when
    /// it was held) is done, they are renamed into place in the order
    /// written, then their directories are synced side by side. Returns the
    /// keys now in place. On a failed file sync nothing is renamed and every
    /// temporary file is removed; the writes are lost, as a write that
    /// failed would be.
    pub fn make_durable(&mut self) -> io::Result<Vec<String>> {
        let writes = std::mem::take(&mut self.writes);
        let grown = std::mem::take(&mut self.grown);
        self.bytes = 0;
        let files_synced = writes
            .iter()
            .map(|w| w.synced.wait())
            .fold(Ok(()), io::Result::and);
        if let Err(e) = files_synced {
            for w in &writes {
                let _ = fs::remove_file(&w.temp);
            }
            grown.into_values().for_each(|s| drop(s.wait()));
            return Err(e);
        }
        let mut placed = Vec::with_capacity(writes.len());
        let mut renamed = Ok(());
        let mut dirs = BTreeSet::new();
        for w in &writes {
            if renamed.is_ok() {
                renamed = fs::rename(&w.temp, &w.path);
            }
            match &renamed {
                Ok(()) => {
                    if let Some(dir) = w.path.parent() {
                        dirs.insert(dir.to_owned());
                    }
                    placed.push(w.key.clone());
                }
                // After a failed rename the rest stay out: the order is kept.
                Err(_) => {
                    let _ = fs::remove_file(&w.temp);
                }
            }
        }
        let dirs_synced: Vec<Syncing> = dirs
            .into_iter()
            .map(|dir| Syncing::start(Durable::Dir(dir)))
            .collect();
        grown
            .into_values()
            .chain(dirs_synced)
            .map(|s| s.wait())
            .fold(renamed, io::Result::and)
            .map(|()| placed)
    }
}

/// What a sync thread makes durable.
enum Durable {
    /// A written file (closed once synced).
    File(File),
    /// A directory's entries.
    Dir(PathBuf),
}

impl Durable {
    fn sync(self) -> io::Result<()> {
        match self {
            Durable::File(file) => file.sync_all(),
            Durable::Dir(dir) => sync_dir(&dir),
        }
    }
}

/// A sync started on the sync threads.
struct Syncing(mpsc::Receiver<io::Result<()>>);

type SyncTask = (Durable, mpsc::Sender<io::Result<()>>);

impl Syncing {
    /// Starts syncing `item` on a sync thread (on this one if none could be started).
    fn start(item: Durable) -> Syncing {
        let (done, result) = mpsc::channel();
        if let Err(mpsc::SendError((item, done))) = sync_threads().send((item, done)) {
            done.send(item.sync()).ok();
        }
        Syncing(result)
    }

    /// Waits for the sync to finish.
    fn wait(&self) -> io::Result<()> {
        self.0
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("a sync thread stopped")))
    }
}

/// The threads that sync held writes. Syncs wait on the disk, not the CPU,
/// so more of them run than there are cores; idle, they block on the queue.
fn sync_threads() -> &'static mpsc::Sender<SyncTask> {
    static QUEUE: OnceLock<mpsc::Sender<SyncTask>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (queue, tasks) = mpsc::channel::<SyncTask>();
        let tasks = Arc::new(Mutex::new(tasks));
        for i in 0..SYNC_THREADS {
            let tasks = tasks.clone();
            let spawned = thread::Builder::new()
                .name(format!("leasedb-sync-{i}"))
                .spawn(move || loop {
                    let task = tasks.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((item, done)) = task else { return };
                    done.send(item.sync()).ok();
                });
            if spawned.is_err() {
                break;
            }
        }
        queue
    })
}

/// Makes a directory's entries durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
