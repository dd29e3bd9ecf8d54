//! The disk API over `std::fs`, for native builds (the VFS's unit tests).

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Metadata, OpenMode};

/// An open file.
pub(crate) struct File(fs::File);

impl File {
    /// Opens `path` as `mode` says.
    pub fn open(path: &str, mode: OpenMode) -> io::Result<File> {
        let mut options = OpenOptions::new();
        options
            .read(true)
            .write(mode.write)
            .create(mode.create)
            .create_new(mode.create_new);
        options.open(path).map(File)
    }

    /// Reads until `buf` is full or the file ends; returns the bytes read.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.0.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Writes all of `buf` at `offset`.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    /// Truncates or extends the file to `len` bytes.
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    /// The file's size in bytes.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    /// fdatasync: the data and the metadata needed to read it back.
    pub fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// Removes the file at `path`.
pub(crate) fn remove_file(path: &str) -> io::Result<()> {
    fs::remove_file(path)
}

/// Renames `from` to `to`, replacing `to`.
pub(crate) fn rename(from: &str, to: &str) -> io::Result<()> {
    fs::rename(from, to)
}

/// What is at `path`.
pub(crate) fn metadata(path: &str) -> io::Result<Metadata> {
    let m = fs::metadata(path)?;
    Ok(Metadata {
        is_file: m.is_file(),
        len: m.len(),
    })
}

/// Makes the directory entries in `path`'s directory durable.
pub(crate) fn sync_dir(path: &str) -> io::Result<()> {
    let dir = match Path::new(path).parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::File::open(dir)?.sync_all()
}
