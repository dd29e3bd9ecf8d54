//! Arbitrary operation sequences against the native engine: the driver both
//! the seeded test (`main.rs`) and the coverage-guided target
//! (`fuzz/fuzz_targets/engine_ops.rs`) run. Arguments are drawn from byte
//! strings that favour edge values. Whatever the input, no call panics, an
//! error is a typed refusal, a share read back after close holds what was
//! written, and an instance that dies mid-sequence is replaced by one that
//! takes over the uploads in flight (the staging log).

use std::collections::HashMap;
use std::rc::Rc;

use arbitrary::{Result as ArbResult, Unstructured};
use leasedb_plugin::backend::memory::MemoryBackend;
use leasedb_plugin::mutable_write::{ShareWrites, TestOperator, TestVector, WriteVector};
use leasedb_plugin::share::ShareType;
use leasedb_plugin::engine::system_clock;
use leasedb_plugin::handover::RESUME;
use leasedb_plugin::{Account, Config, Error, LeaseDb};

/// A small set of storage indexes, so operations meet each other's shares.
fn si(u: &mut Unstructured) -> ArbResult<Vec<u8>> {
    Ok(match u.int_in_range(0..=9)? {
        0 => u.arbitrary::<Vec<u8>>()?, // any length: must be refused unless 16
        n => vec![n; 16],
    })
}

fn shnum(u: &mut Unstructured) -> ArbResult<u32> {
    Ok(match u.int_in_range(0..=9)? {
        0 => u.arbitrary()?,
        n => n as u32 % 4,
    })
}

/// Offsets and lengths near the interesting boundaries.
fn number(u: &mut Unstructured) -> ArbResult<u64> {
    Ok(match u.int_in_range(0..=7)? {
        0 => u.arbitrary()?,
        1 => u64::MAX - u.int_in_range(0..=16)?,
        2 => (4096 * u.int_in_range(0..=8u64)? + u.int_in_range(0..=24u64)?).saturating_sub(12),
        3 => 1 << u.int_in_range(0..=40)?,
        _ => u.int_in_range(0..=20_000)?,
    })
}

fn bytes(u: &mut Unstructured) -> ArbResult<Vec<u8>> {
    let len = u.int_in_range(0..=9000)?;
    let fill: u8 = u.arbitrary()?;
    Ok(vec![fill; len])
}

fn account(u: &mut Unstructured) -> ArbResult<Account> {
    Ok(match u.int_in_range(0..=3)? {
        0 => Account::Anonymous,
        1 => Account::named("alice").unwrap(),
        _ => match Account::named(u.arbitrary::<&str>()?) {
            Ok(a) => a,
            Err(_) => Account::Anonymous,
        },
    })
}

fn share_writes(u: &mut Unstructured) -> ArbResult<ShareWrites> {
    let ops = [
        TestOperator::Eq,
        TestOperator::Ne,
        TestOperator::Lt,
        TestOperator::Ge,
    ];
    let tests = (0..u.int_in_range(0..=2)?)
        .map(|_| {
            Ok(TestVector {
                offset: number(u)?,
                length: number(u)?,
                operator: *u.choose(&ops)?,
                specimen: u.arbitrary()?,
            })
        })
        .collect::<ArbResult<_>>()?;
    let writes = (0..u.int_in_range(0..=3)?)
        .map(|_| {
            Ok(WriteVector {
                offset: number(u)?,
                data: bytes(u)?,
            })
        })
        .collect::<ArbResult<_>>()?;
    Ok(ShareWrites {
        shnum: shnum(u)?,
        tests,
        writes,
        new_length: if u.arbitrary()? {
            Some(number(u)?)
        } else {
            None
        },
    })
}

/// What an error may be for arbitrary input: anything but a database or
/// backend failure, which would mean the engine broke itself.
fn acceptable(what: &str, e: &Error) {
    assert!(
        !matches!(e, Error::Database(_) | Error::Backend(_) | Error::NotReady),
        "{what}: {e}"
    );
}

/// One engine over a fresh database and backend, and what the client wrote.
pub struct Run {
    _dir: tempfile::TempDir,
    path: String,
    backend: Rc<MemoryBackend>,
    config: Config,
    db: Option<LeaseDb<Rc<MemoryBackend>>>,
    /// Bytes written in order from 0 to each upload in flight.
    written: HashMap<(Vec<u8>, u32), Vec<u8>>,
}

impl Run {
    /// A fresh database (small chunks, so shares span several).
    pub fn new() -> Run {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db").to_str().unwrap().to_string();
        let backend = Rc::new(MemoryBackend::new(64 << 20));
        let config = Config {
            chunk_size: 4096,
            ..Config::default()
        };
        let db = LeaseDb::open(&path, backend.clone(), config.clone()).unwrap().0;
        Run { _dir: dir, path, backend, config, db: Some(db), written: HashMap::new() }
    }

    /// Drops the engine without a shutdown and starts another, as a host does
    /// after an instance died: with `RESUME` it takes over the uploads in flight.
    fn die_and_restart(&mut self, resume: bool) {
        self.db = None;
        let handover = resume.then_some(RESUME);
        let started = LeaseDb::start(&self.path, self.backend.clone(), self.config.clone(), Box::new(system_clock), handover);
        self.db = Some(started.unwrap_or_else(|e| panic!("restarting (resume: {resume}) failed: {e}")).0);
        if !resume {
            self.written.clear();
        }
    }

    /// Ends the run: whatever happened, the state reopens (a cold start resolves uploads).
    pub fn finish(mut self) {
        self.db = None;
        LeaseDb::open(&self.path, self.backend.clone(), self.config.clone())
            .unwrap_or_else(|e| panic!("reopening failed: {e}"));
    }

    /// Runs one operation drawn from `u`.
    pub fn step(&mut self, u: &mut Unstructured) -> ArbResult<()> {
        if u.int_in_range(0..=40)? == 0 {
            self.die_and_restart(u.int_in_range(0..=3)? != 0);
            return Ok(());
        }
        step(self.db.as_mut().unwrap(), u, &mut self.written)
    }
}

fn step(
    db: &mut LeaseDb<Rc<MemoryBackend>>,
    u: &mut Unstructured,
    written: &mut HashMap<(Vec<u8>, u32), Vec<u8>>,
) -> ArbResult<()> {
    let session = u.int_in_range(1..=3)?;
    match u.int_in_range(0..=11)? {
        0 => {
            let (si, shnums, size) = (si(u)?, u.arbitrary::<Vec<u32>>()?, number(u)?);
            if let Err(e) = db.allocate(session, &account(u)?, &si, &shnums, size) {
                acceptable("allocate", &e);
            }
        }
        1 | 2 => {
            // In-order writes from 0, so the model knows the share's bytes.
            let (si, n, data) = (si(u)?, shnum(u)?, bytes(u)?);
            let so_far = written.entry((si.clone(), n)).or_default();
            match db.write(&si, n, so_far.len() as u64, &data) {
                Ok(()) => so_far.extend_from_slice(&data),
                Err(e) => acceptable("write", &e),
            }
        }
        3 => {
            let (si, n, offset, data) = (si(u)?, shnum(u)?, number(u)?, bytes(u)?);
            if let Err(e) = db.write(&si, n, offset, &data) {
                acceptable("scattered write", &e);
            }
            written.remove(&(si, n));
        }
        4 => {
            let (si, n) = (si(u)?, shnum(u)?);
            match db.close(&si, n) {
                Ok(()) => {
                    if let Some(data) = written.remove(&(si.clone(), n)) {
                        let back = db.read(&si, n, 0, data.len() as u64).unwrap();
                        assert!(back == data, "share {n} reads back what was written");
                    }
                }
                Err(e) => acceptable("close", &e),
            }
        }
        5 => {
            let (si, n) = (si(u)?, shnum(u)?);
            if let Err(e) = db.abort(&si, n) {
                acceptable("abort", &e);
            }
            written.remove(&(si, n));
        }
        6 => {
            if let Err(e) = db.read(&si(u)?, shnum(u)?, number(u)?, number(u)?) {
                acceptable("read", &e);
            }
        }
        7 => {
            let (si, we) = (
                si(u)?,
                if u.arbitrary()? {
                    vec![7; 32]
                } else {
                    u.arbitrary()?
                },
            );
            let writes = (0..u.int_in_range(0..=2)?)
                .map(|_| share_writes(u))
                .collect::<ArbResult<Vec<_>>>()?;
            let reads = (0..u.int_in_range(0..=3)?)
                .map(|_| Ok((number(u)?, number(u)?)))
                .collect::<ArbResult<Vec<_>>>()?;
            if let Err(e) = db.read_test_write(&account(u)?, &si, &we, &writes, &reads) {
                acceptable("read-test-write", &e);
            }
        }
        8 => {
            let reads = vec![(number(u)?, number(u)?)];
            if let Err(e) = db.mutable_read(&si(u)?, &u.arbitrary::<Vec<u32>>()?, &reads) {
                acceptable("mutable read", &e);
            }
        }
        9 => {
            let t = if u.arbitrary()? {
                ShareType::Mutable
            } else {
                ShareType::Immutable
            };
            let reason = String::from_utf8_lossy(&u.arbitrary::<Vec<u8>>()?).into_owned();
            if let Err(e) = db.advise_corrupt(&account(u)?, t, &si(u)?, shnum(u)?, &reason) {
                acceptable("advise", &e);
            }
        }
        10 => {
            if let Err(e) = db.add_lease(&account(u)?, &si(u)?) {
                acceptable("add lease", &e);
            }
            let _ = db.list_leases(&si(u)?);
            let _ = db.list_shares(&si(u)?);
        }
        _ => {
            db.session_closed(session);
            written.retain(|_, _| false);
        }
    }
    Ok(())
}
