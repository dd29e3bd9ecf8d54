//! The engine's entry points under arbitrary input (issue 10): seeded random
//! sequences of every operation, with arguments drawn from byte strings that
//! favour edge values. Bounded by a number of steps, so it runs in the normal
//! suite; `LEASEDB_FUZZ_STEPS` and `LEASEDB_FUZZ_SEED` run it longer or replay
//! one seed. Whatever the input, no call panics, an error is a typed refusal,
//! and a share read back after close holds what was written.

use std::collections::HashMap;
use std::rc::Rc;

use arbitrary::{Result as ArbResult, Unstructured};
use leasedb_plugin::backend::memory::MemoryBackend;
use leasedb_plugin::mutable_write::{ShareWrites, TestOperator, TestVector, WriteVector};
use leasedb_plugin::share::ShareType;
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

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn arbitrary_operation_sequences_never_panic_or_break_the_engine() {
    let steps = env("LEASEDB_FUZZ_STEPS", 3000);
    let seeds = match std::env::var("LEASEDB_FUZZ_SEED") {
        Ok(s) => vec![s.parse().expect("a number")],
        Err(_) => (1..=4).collect::<Vec<u64>>(),
    };
    for seed in seeds {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db").to_str().unwrap().to_string();
        let backend = Rc::new(MemoryBackend::new(64 << 20));
        let config = Config {
            chunk_size: 4096,
            ..Config::default()
        };
        let mut db = LeaseDb::open(&path, backend.clone(), config.clone())
            .unwrap()
            .0;
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut written = HashMap::new();
        let mut taken = 0;
        while taken < steps {
            let raw: Vec<u8> = (0..512).map(|_| rng.u8(..)).collect();
            let mut u = Unstructured::new(&raw);
            // Running out of bytes ends a step early; that is fine.
            let _ = step(&mut db, &mut u, &mut written);
            taken += 1;
        }
        drop(db);
        // Whatever happened, the state reopens (a cold start resolves uploads).
        LeaseDb::open(&path, backend, config)
            .unwrap_or_else(|e| panic!("seed {seed}: reopening failed: {e}"));
    }
}
