//! The disk API over `wasi:filesystem` descriptors, inside the component.
//!
//! Rust std's files would do, but std opens every file with the
//! `mutate-directory` descriptor flag, which some hosts (jco's Node shim)
//! refuse, and its writes go through WASI output streams, which wasmtime
//! completes on its blocking thread pool. A descriptor's own `read`, `write`,
//! `sync-data` are plain positional calls that every host runs directly.

use std::cell::RefCell;
use std::io;

use wasip2::filesystem::preopens::get_directories;
use wasip2::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorType, ErrorCode, OpenFlags, PathFlags,
};

use super::{Metadata, OpenMode};

/// An open file.
pub(crate) struct File(Descriptor);

impl File {
    /// Opens `path` as `mode` says.
    pub fn open(path: &str, mode: OpenMode) -> io::Result<File> {
        let mut open_flags = OpenFlags::empty();
        if mode.create || mode.create_new {
            open_flags |= OpenFlags::CREATE;
        }
        if mode.create_new {
            open_flags |= OpenFlags::EXCLUSIVE;
        }
        let mut flags = DescriptorFlags::READ;
        if mode.write {
            flags |= DescriptorFlags::WRITE;
        }
        in_preopen(path, |dir, relative| {
            dir.open_at(PathFlags::SYMLINK_FOLLOW, relative, open_flags, flags)
        })
        .map(File)
    }

    /// Reads until `buf` is full or the file ends; returns the bytes read.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let want = (buf.len() - done) as u64;
            let (bytes, end) = self.0.read(want, offset + done as u64).map_err(error)?;
            // A host may not return more than asked; never trust it to.
            let n = bytes.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&bytes[..n]);
            done += n;
            if end || n == 0 {
                break;
            }
        }
        Ok(done)
    }

    /// Writes all of `buf` at `offset`.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .0
                .write(&buf[done..], offset + done as u64)
                .map_err(error)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing"));
            }
            done += usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
        }
        Ok(())
    }

    /// Truncates or extends the file to `len` bytes.
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_size(len).map_err(error)
    }

    /// The file's size in bytes.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.0.stat().map_err(error)?.size)
    }

    /// fdatasync: the data and the metadata needed to read it back.
    pub fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data().map_err(error)
    }
}

/// Removes the file at `path`.
pub(crate) fn remove_file(path: &str) -> io::Result<()> {
    in_preopen(path, |dir, relative| dir.unlink_file_at(relative))
}

/// Renames `from` to `to` (both in one preopened directory), replacing `to`.
pub(crate) fn rename(from: &str, to: &str) -> io::Result<()> {
    let target = in_preopen(to, |_, relative| Ok(relative.to_owned()))?;
    in_preopen(from, |dir, relative| dir.rename_at(relative, dir, &target))
}

/// What is at `path`.
pub(crate) fn metadata(path: &str) -> io::Result<Metadata> {
    let stat = in_preopen(path, |dir, relative| {
        dir.stat_at(PathFlags::SYMLINK_FOLLOW, relative)
    })?;
    Ok(Metadata {
        is_file: stat.type_ == DescriptorType::RegularFile,
        len: stat.size,
    })
}

/// Makes the directory entries in `path`'s directory durable.
pub(crate) fn sync_dir(path: &str) -> io::Result<()> {
    let parent = match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    };
    in_preopen(parent, |dir, relative| {
        // Hosts refuse to sync a preopen itself (jco), so open it again
        // read-only, which every host allows for a directory.
        let d = dir.open_at(
            PathFlags::SYMLINK_FOLLOW,
            relative,
            OpenFlags::DIRECTORY,
            DescriptorFlags::READ,
        )?;
        d.sync()
    })
}

thread_local! {
    /// The host's preopened directories and their guest paths, fetched once:
    /// they do not change during an instance's life.
    static PREOPENS: RefCell<Option<Vec<(Descriptor, String)>>> = const { RefCell::new(None) };
}

/// Runs `f` on the preopened directory holding `path` and `path` relative to
/// it (`.` for the directory itself). An absolute path belongs to the
/// preopen with the longest matching guest path, a relative one to a
/// preopen named `.`, as in wasi-libc.
fn in_preopen<T>(
    path: &str,
    f: impl FnOnce(&Descriptor, &str) -> Result<T, ErrorCode>,
) -> io::Result<T> {
    PREOPENS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let preopens = cell.get_or_insert_with(get_directories);
        let mut best: Option<(&Descriptor, &str, usize)> = None;
        for (dir, guest) in preopens.iter() {
            let Some(relative) = relative_to(path, guest) else {
                continue;
            };
            if best.is_none_or(|(_, _, len)| guest.len() > len) {
                best = Some((dir, relative, guest.len()));
            }
        }
        let Some((dir, relative, _)) = best else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{path} is outside every preopened directory"),
            ));
        };
        f(dir, relative).map_err(error)
    })
}

/// `path` relative to the preopen `guest`, if it lies inside it.
fn relative_to<'a>(path: &'a str, guest: &str) -> Option<&'a str> {
    let guest = guest.trim_end_matches('/');
    if !path.starts_with('/') {
        return (guest == ".").then_some(if path.is_empty() { "." } else { path });
    }
    let rest = path.strip_prefix(guest)?;
    let rest = if guest.is_empty() {
        rest
    } else if rest.is_empty() {
        "/"
    } else if rest.starts_with('/') {
        rest
    } else {
        return None;
    };
    let rest = rest.trim_start_matches('/');
    Some(if rest.is_empty() { "." } else { rest })
}

/// The `io::Error` for a WASI error code, with the kinds SQLite's mapping
/// (disk full, not found) depends on.
fn error(code: ErrorCode) -> io::Error {
    let kind = match code {
        ErrorCode::NoEntry => io::ErrorKind::NotFound,
        ErrorCode::Exist => io::ErrorKind::AlreadyExists,
        ErrorCode::InsufficientSpace => io::ErrorKind::StorageFull,
        ErrorCode::Quota => io::ErrorKind::QuotaExceeded,
        ErrorCode::Access | ErrorCode::NotPermitted | ErrorCode::ReadOnly => {
            io::ErrorKind::PermissionDenied
        }
        ErrorCode::Interrupted => io::ErrorKind::Interrupted,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, code)
}
