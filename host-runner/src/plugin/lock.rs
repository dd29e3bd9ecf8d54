//! One process per state directory (SPEC §12, "one writer"): whoever opens the
//! plugin holds an exclusive lock on `<state>/lock` for as long as it runs,
//! so a second command fails at once instead of writing the same SQLite file.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "lock";

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Why the state directory could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; `holder` is what that process wrote there.
    Held {
        /// The state directory.
        dir: PathBuf,
        /// The holder's pid and command line.
        holder: String,
    },
    /// The lock file could not be created or locked.
    Io(PathBuf, io::Error),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { dir, holder } => {
                write!(f, "the state directory {} is in use by ", dir.display())?;
                if holder.is_empty() {
                    f.write_str("another process")?;
                } else {
                    write!(f, "{holder}")?;
                }
                f.write_str(
                    "; stop it first, or ask the running server (its status page serves \
                     /status.json with the same figures)",
                )
            }
            LockError::Io(path, e) => write!(f, "locking {}: {e}", path.display()),
        }
    }
}

impl std::error::Error for LockError {}

impl StateLock {
    /// Takes the lock of `state_dir` (created if missing) without waiting,
    /// and records this process (pid and command line) as its holder.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        let path = state_dir.join(LOCK_FILE);
        let fail = |e| LockError::Io(path.clone(), e);
        std::fs::create_dir_all(state_dir).map_err(fail)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(fail)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(LockError::Held {
                    dir: state_dir.to_path_buf(),
                    holder: holder.trim().to_owned(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(fail(e)),
        }
        let args: Vec<String> = std::env::args().collect();
        let holder = format!("process {} ({})", std::process::id(), args.join(" "));
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(holder.as_bytes()))
            .map_err(fail)?;
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_it_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        match StateLock::acquire(dir.path()) {
            Err(LockError::Held { holder, .. }) => {
                assert!(
                    holder.contains(&format!("process {}", std::process::id())),
                    "{holder}"
                )
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        StateLock::acquire(dir.path()).unwrap();
    }
}
