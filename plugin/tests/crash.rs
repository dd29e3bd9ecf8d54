//! Crash consistency on the native build (SPEC §12, issue 11): what a crash,
//! a backend failure or a lost database leaves behind. A crash is the engine
//! dropped without another call (an open group commit is lost with it); a
//! lost database is its file removed before the next start.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use leasedb_plugin::backend::memory::MemoryBackend;
use leasedb_plugin::backend::{keys, Backend, BackendError, ListPage};
use leasedb_plugin::crawler::{CrawlerConfig, CycleReport, SliceOutcome};
use leasedb_plugin::mutable_write::{ShareWrites, WriteVector};
use leasedb_plugin::share::ShareState;
use leasedb_plugin::{Account, Config, Error, LeaseDb, ShareNum, StorageIndex};

const SI: [u8; 16] = *b"crash-consistent";
const WE: [u8; 32] = [7; 32];
const CHUNK: u64 = 4096;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    List,
    Write,
    Delete,
}

/// A memory backend whose calls of one kind on keys under a prefix fail
/// (permanently, so the engine does not wait on retries) until cleared.
struct Faulty {
    inner: MemoryBackend,
    faults: RefCell<Vec<(Op, String)>>,
}

impl Faulty {
    fn failing(&self, op: Op, key: &str) -> Result<(), BackendError> {
        let hit = self
            .faults
            .borrow()
            .iter()
            // A listing fails when its prefix and the fault's overlap.
            .any(|(o, p)| {
                *o == op && (key.starts_with(p.as_str()) || (op == Op::List && p.starts_with(key)))
            });
        if hit {
            Err(BackendError::Permanent(format!("injected {op:?} fault")))
        } else {
            Ok(())
        }
    }
}

impl Backend for Faulty {
    fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BackendError> {
        self.failing(Op::List, prefix)?;
        self.inner.list(prefix, after, limit)
    }
    fn read(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>, BackendError> {
        self.inner.read(key, offset, length)
    }
    fn write(&self, key: &str, data: &[u8]) -> Result<(), BackendError> {
        self.failing(Op::Write, key)?;
        self.inner.write(key, data)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.failing(Op::Delete, key)?;
        self.inner.delete(key)
    }
    fn available_space(&self) -> Result<u64, BackendError> {
        self.inner.available_space()
    }
}

type Db = LeaseDb<Rc<Faulty>>;

struct Server {
    dir: tempfile::TempDir,
    backend: Rc<Faulty>,
}

impl Server {
    fn new() -> Server {
        Server {
            dir: tempfile::tempdir().unwrap(),
            backend: Rc::new(Faulty {
                inner: MemoryBackend::new(1 << 40),
                faults: RefCell::default(),
            }),
        }
    }

    fn db_path(&self) -> String {
        self.dir
            .path()
            .join("leasedb.sqlite3")
            .to_str()
            .unwrap()
            .to_string()
    }

    fn try_start(&self) -> Result<Db, String> {
        let config = Config {
            chunk_size: CHUNK,
            node_id: [0x42; 20],
            ..Config::default()
        };
        let (mut db, _) = LeaseDb::open(&self.db_path(), self.backend.clone(), config)
            .map_err(|e| e.to_string())?;
        db.configure_crawler(CrawlerConfig {
            min_cycle_seconds: 0,
            ..CrawlerConfig::default()
        });
        Ok(db)
    }

    fn start(&self) -> Db {
        self.try_start().unwrap()
    }

    /// The database is lost: its files are removed (only while stopped).
    fn lose_database(&self) {
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
    }

    fn fail(&self, op: Op, prefix: &str) {
        self.backend
            .faults
            .borrow_mut()
            .push((op, prefix.to_string()));
    }

    fn clear_faults(&self) {
        self.backend.faults.borrow_mut().clear();
    }

    fn keys(&self) -> Vec<String> {
        self.backend.inner.keys()
    }
}

fn si() -> StorageIndex {
    StorageIndex(SI)
}

fn si_dir() -> String {
    keys::storage_index_dir(&si())
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn store(db: &mut Db, shnum: u32, bytes: &[u8]) {
    let a = db
        .allocate(1, &Account::Anonymous, &SI, &[shnum], bytes.len() as u64)
        .unwrap();
    assert_eq!(a.allocated, [ShareNum(shnum as u8)]);
    db.write(&SI, shnum, 0, bytes).unwrap();
    db.close(&SI, shnum).unwrap();
}

fn crawl_cycle(db: &mut Db) -> CycleReport {
    loop {
        if let SliceOutcome::Progressed { finished: true, .. } =
            db.crawl_slice(Duration::from_secs(60), true).unwrap()
        {
            return db.crawler_status().unwrap().history.remove(0);
        }
    }
}

fn mutable_write(db: &mut Db, shnum: u32, offset: u64, bytes: &[u8]) -> Result<bool, Error> {
    let w = ShareWrites {
        shnum,
        tests: vec![],
        writes: vec![WriteVector {
            offset,
            data: bytes.to_vec(),
        }],
        new_length: None,
    };
    db.read_test_write(&Account::Anonymous, &SI, &WE, &[w], &[])
        .map(|r| r.success)
}

fn mutable_data(db: &mut Db, shnum: u32) -> Option<Vec<u8>> {
    let r = db.mutable_read(&SI, &[shnum], &[(0, 1 << 20)]).unwrap();
    r.get(&ShareNum(shnum as u8)).map(|v| v[0].clone())
}

fn state(db: &mut Db, shnum: u32) -> Option<ShareState> {
    db.list_all_shares(None, 1000)
        .unwrap()
        .into_iter()
        .find(|r| r.si == si() && r.shnum == ShareNum(shnum as u8))
        .map(|r| r.state)
}

/// An upload cut short, with its database lost, is no share: not listed, not
/// "already have", granted again; one crawler cycle removes its objects.
#[test]
fn an_unfinished_upload_never_becomes_a_share_even_without_its_database() {
    let server = Server::new();
    let mut db = server.start();
    let full = data(20_000, 1);
    db.allocate(1, &Account::Anonymous, &SI, &[0], full.len() as u64)
        .unwrap();
    db.write(&SI, 0, 0, &full[..10_000]).unwrap();
    assert!(!server.keys().is_empty(), "completed chunks are stored");
    drop(db);
    server.lose_database();

    let mut db = server.start();
    assert_eq!(db.list_shares(&SI).unwrap(), []);
    let again = db
        .allocate(2, &Account::Anonymous, &SI, &[0], full.len() as u64)
        .unwrap();
    assert_eq!(again.already_have, []);
    assert_eq!(again.allocated, [ShareNum(0)]);
    db.abort(&SI, 0).unwrap();

    crawl_cycle(&mut db);
    assert_eq!(server.keys(), Vec::<String>::new(), "leftovers collected");
    assert_eq!(db.list_all_shares(None, 100).unwrap(), []);
}

/// The crawler collects headless leftovers no row claims, and reports them.
#[test]
fn the_crawler_collects_and_reports_leftovers_of_unfinished_uploads() {
    let server = Server::new();
    let mut db = server.start();
    db.allocate(1, &Account::Anonymous, &SI, &[3], 20_000)
        .unwrap();
    db.write(&SI, 3, 0, &data(12_000, 2)).unwrap();
    let stored = server.keys().len();
    assert!(stored >= 1, "{:?}", server.keys());
    drop(db);
    server.lose_database();

    let mut db = server.start();
    let report = crawl_cycle(&mut db);
    assert_eq!((report.leftovers, report.added), (1, 0));
    assert_eq!(report.leftover_bytes, (stored as u64) * CHUNK);
    assert_eq!(server.keys(), Vec::<String>::new());
}

/// Group commit: a deletion inside a batch makes GOING durable before its
/// first backend delete, so a crash mid-delete leaves a GOING row (finished
/// by the crawler), never a STABLE row whose head is gone.
#[test]
fn a_deletion_inside_a_batch_is_durable_before_its_objects_go() {
    let server = Server::new();
    let mut db = server.start();
    assert!(mutable_write(&mut db, 0, 0, &data(10_000, 3)).unwrap());
    assert_eq!(server.keys().len(), 3);
    db.begin_batch().unwrap();
    // The crash comes after chunk 0 is deleted, before chunk 1 is.
    server.fail(Op::Delete, &keys::chunk_key(&si(), ShareNum(0), 1));
    let delete = ShareWrites {
        shnum: 0,
        tests: vec![],
        writes: vec![],
        new_length: Some(0),
    };
    assert!(db
        .read_test_write(&Account::Anonymous, &SI, &WE, &[delete], &[])
        .is_err());
    drop(db); // the batch never commits
    server.clear_faults();

    let mut db = server.start();
    assert_eq!(state(&mut db, 0), Some(ShareState::Going));
    assert_eq!(mutable_data(&mut db, 0), None, "a GOING share is not read");
    assert!(mutable_write(&mut db, 1, 0, b"other shares still work").unwrap());
    crawl_cycle(&mut db);
    assert_eq!(state(&mut db, 0), None);
    let share0 = format!("{}0", si_dir());
    assert!(
        server.keys().iter().all(|k| !k.starts_with(&share0)),
        "{:?}",
        server.keys()
    );
}

/// A failed abort at session close releases the upload and its space at once;
/// the crawler removes what the backend kept.
#[test]
fn a_failed_abort_releases_its_reservation_and_is_retried() {
    let server = Server::new();
    let mut db = server.start();
    let free = db.capabilities().unwrap().available_space;
    db.session_opened(5);
    db.allocate(5, &Account::Anonymous, &SI, &[0], 1 << 20)
        .unwrap();
    db.write(&SI, 0, 0, &data(9000, 4)).unwrap();
    server.fail(Op::Delete, &si_dir());
    db.session_closed(5);
    assert_eq!(db.in_flight(), (0, 0));
    let stored = server.keys().len() as u64 * CHUNK;
    assert_eq!(db.capabilities().unwrap().available_space, free - stored);
    assert_eq!(db.write(&SI, 0, 0, b"x"), Err(Error::NoUpload));

    server.clear_faults();
    let report = crawl_cycle(&mut db);
    assert_eq!(report.leftovers, 1);
    assert_eq!(server.keys(), Vec::<String>::new());
    assert_eq!(db.list_all_shares(None, 100).unwrap(), []);
}

/// A new mutable share whose first write fails stays writable.
#[test]
fn a_failed_first_mutable_write_leaves_the_share_writable() {
    let server = Server::new();
    let mut db = server.start();
    server.fail(Op::Write, &si_dir());
    assert!(matches!(
        mutable_write(&mut db, 0, 0, b"first"),
        Err(Error::Backend(_))
    ));
    server.clear_faults();
    assert!(mutable_write(&mut db, 0, 0, b"second").unwrap());
    assert_eq!(mutable_data(&mut db, 0).unwrap(), b"second");
}

/// A backend failing at cold start does not stop the start; the unfinished
/// upload is resolved once the backend answers again.
#[test]
fn a_backend_error_at_cold_start_degrades_instead_of_refusing_to_start() {
    let server = Server::new();
    let mut db = server.start();
    db.allocate(1, &Account::Anonymous, &SI, &[0], 20_000)
        .unwrap();
    db.write(&SI, 0, 0, &data(9000, 5)).unwrap();
    drop(db);
    server.fail(Op::List, &si_dir());
    let mut db = server.try_start().expect("starts despite the backend");
    assert_eq!(state(&mut db, 0), Some(ShareState::Coming));
    server.clear_faults();
    crawl_cycle(&mut db);
    assert_eq!(state(&mut db, 0), None);
    assert_eq!(server.keys(), Vec::<String>::new());
}

/// A share number the database does not know, of a storage index it knows in
/// part, is adopted before an allocate could grant it (and an abort delete it).
#[test]
fn allocate_adopts_an_untracked_share_instead_of_granting_it() {
    let server = Server::new();
    let mut db = server.start();
    store(&mut db, 0, &data(100, 6));
    // Share 1 copied in from elsewhere, as one Tahoe-layout file.
    let mut copied = [2u32, 50, 0].map(u32::to_be_bytes).concat();
    copied.extend(data(50, 7));
    server
        .backend
        .inner
        .put_for_test(&keys::chunk_key(&si(), ShareNum(1), 0), &copied);

    let a = db.allocate(2, &Account::Anonymous, &SI, &[1], 50).unwrap();
    assert_eq!(a.allocated, []);
    assert_eq!(a.already_have, [ShareNum(0), ShareNum(1)]);
    assert_eq!(db.read(&SI, 1, 0, 100).unwrap(), data(50, 7));
}

/// A mutable write "creating" a share number the backend already holds
/// meets that share's write enabler, and leaves it intact when refused.
#[test]
fn a_mutable_write_does_not_clobber_an_untracked_share() {
    let server = Server::new();
    let mut db = server.start();
    assert!(mutable_write(&mut db, 0, 0, b"known").unwrap());
    // Share 1 of the same index, written by another server with another enabler.
    let other = Server::new();
    let mut theirs = other.start();
    let w = ShareWrites {
        shnum: 1,
        tests: vec![],
        writes: vec![WriteVector {
            offset: 0,
            data: b"theirs".to_vec(),
        }],
        new_length: None,
    };
    assert!(
        theirs
            .read_test_write(&Account::Anonymous, &SI, &[9; 32], &[w], &[])
            .unwrap()
            .success
    );
    let key = keys::chunk_key(&si(), ShareNum(1), 0);
    let copied = other.backend.inner.get(&key).unwrap();
    server.backend.inner.put_for_test(&key, &copied);

    let refused = mutable_write(&mut db, 1, 0, b"mine");
    assert!(
        matches!(refused, Err(Error::BadWriteEnabler { .. })),
        "{refused:?}"
    );
    assert_eq!(server.backend.inner.get(&key).unwrap(), copied);
    assert_eq!(mutable_data(&mut db, 1).unwrap(), b"theirs");
}

/// A rewrite of a three-chunk mutable share cut short after its first chunk
/// is read back whole (old or new, never a mix), with or without its database.
#[test]
fn a_mutable_rewrite_cut_short_is_never_seen_torn() {
    for lose_database in [false, true] {
        let server = Server::new();
        let mut db = server.start();
        let old = data(10_000, 8);
        let new = data(10_000, 9);
        assert!(mutable_write(&mut db, 0, 0, &old).unwrap());
        server.fail(Op::Write, &keys::chunk_key(&si(), ShareNum(0), 2));
        assert!(mutable_write(&mut db, 0, 0, &new).is_err());
        drop(db); // and the server dies there
        server.clear_faults();
        if lose_database {
            server.lose_database();
        }

        let mut db = server.start();
        let seen = mutable_data(&mut db, 0).unwrap();
        assert!(
            seen == old || seen == new,
            "torn (database lost: {lose_database})"
        );
        assert_eq!(state(&mut db, 0), Some(ShareState::Stable));
        assert!(
            server.keys().iter().all(|k| !k.ends_with(".journal")),
            "{:?}",
            server.keys()
        );
    }
}
