//! The uploads in flight, logged to the state directory as they change, so
//! that a fresh instance can take them over when this one dies in a call
//! (SPEC §12: a trap hurts only the call that caused it).
//!
//! A host cannot enter an instance that trapped, so the state a hot swap
//! hands over (`handover.rs`) would die with it. Instead every change to an
//! upload (allocated, written, ended) is appended here as it happens, and a
//! host that re-creates the instance passes the one-byte `resume` handover;
//! the new instance rebuilds the uploads from this log. The log is never
//! synced: it must outlive an instance, not the machine. A cold start (no
//! handover) ignores it, so uploads still end with the process (SPEC §6).
//!
//! Layout: a header, then frames of a little-endian `u32` length and a
//! postcard-encoded `Record`. A frame cut short (the instance died while
//! appending) ends the log. When the log has grown well past what it
//! describes, it is rewritten as one `Uploads` record and renamed into place.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;

use serde::{Deserialize, Serialize};

use crate::disk::{self, OpenMode};
use crate::ids::{ShareNum, StorageIndex};
use crate::upload::Upload;

/// First bytes of a log this build writes and reads.
const HEADER: &[u8; 16] = b"leasedb-staged\x00\x01";
/// How far the log may grow past what it describes before it is rewritten.
/// Reading it back then needs at most this plus the buffered bytes, well
/// inside an instance's memory cap.
const SLACK: u64 = 32 << 20;

/// One change to the uploads in flight.
#[derive(Serialize, Deserialize)]
enum Record<'a> {
    /// Every upload in flight (the first record of a rewritten log).
    Uploads(Vec<Upload>),
    /// A new upload.
    Allocated(Cow<'a, Upload>),
    /// A write that succeeded, and the chunks it stored.
    Wrote {
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        #[serde(borrow, with = "serde_bytes")]
        data: Cow<'a, [u8]>,
        stored: Cow<'a, [u64]>,
    },
    /// An upload closed or aborted.
    Ended { si: StorageIndex, shnum: ShareNum },
}

/// `Record::Uploads` as it is written: the same encoding, borrowing the
/// uploads, so a rewrite holds their buffered bytes once, not twice.
#[derive(Serialize)]
enum UploadsRef<'a> {
    Uploads(Vec<&'a Upload>),
}

/// The log of one database's uploads in flight.
pub struct StagingLog {
    path: String,
    file: Option<disk::File>,
    /// Where the next frame goes.
    end: u64,
    /// Set when an append failed: the log no longer describes the uploads,
    /// so it is emptied and nothing is resumed from it until it is rewritten.
    broken: bool,
}

impl StagingLog {
    /// The log beside the database at `db_path` (not opened yet).
    pub fn beside(db_path: &str) -> StagingLog {
        StagingLog {
            path: format!("{db_path}-uploads"),
            file: None,
            end: 0,
            broken: false,
        }
    }

    /// The uploads a dead instance logged, in the order they were allocated;
    /// nothing if the log is missing, foreign or was emptied.
    pub fn recover(&self) -> io::Result<Vec<Upload>> {
        let file = match disk::File::open(&self.path, read_only()) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut bytes = vec![0; file.len()? as usize];
        let read = file.read_at(&mut bytes, 0)?;
        bytes.truncate(read);
        Ok(replay(&bytes))
    }

    /// Starts the log afresh with `uploads`, replacing whatever it held; on
    /// failure nothing more is logged until a later rewrite works.
    pub fn rewrite<'a>(&mut self, uploads: impl Iterator<Item = &'a Upload>) -> io::Result<()> {
        self.file = None;
        self.broken = true;
        let record = UploadsRef::Uploads(uploads.collect());
        // `frame` sizes the record and grows the buffer to fit it.
        let mut bytes = HEADER.to_vec();
        frame(&mut bytes, &record)?;
        let fresh = format!("{}.new", self.path);
        let file = disk::File::open(&fresh, create())?;
        file.set_len(0)?;
        file.write_all_at(&bytes, 0)?;
        disk::rename(&fresh, &self.path)?;
        self.file = Some(disk::File::open(&self.path, create())?);
        self.end = bytes.len() as u64;
        self.broken = false;
        Ok(())
    }

    /// Goes on appending to the log a previous version of this plugin kept
    /// (a hot swap: it describes the uploads just handed over); rewrites it
    /// from `uploads` if it is not in this build's format.
    pub fn reopen<'a>(&mut self, uploads: impl Iterator<Item = &'a Upload>) -> io::Result<()> {
        if let Ok(file) = disk::File::open(&self.path, create()) {
            let mut header = [0; HEADER.len()];
            if file.read_at(&mut header, 0)? == HEADER.len() && &header == HEADER {
                self.end = file.len()?;
                self.file = Some(file);
                self.broken = false;
                return Ok(());
            }
        }
        self.rewrite(uploads)
    }

    /// Records a new upload.
    pub fn allocated(&mut self, upload: &Upload) {
        self.append(&Record::Allocated(Cow::Borrowed(upload)));
    }

    /// Records a write that succeeded.
    pub fn wrote(&mut self, upload: &Upload, offset: u64, data: &[u8], stored: &[u64]) {
        let record = |offset, data, stored| Record::Wrote {
            si: upload.si,
            shnum: upload.shnum,
            offset,
            data: Cow::Borrowed(data),
            stored: Cow::Borrowed(stored),
        };
        if stored.is_empty() {
            self.append(&record(offset, data, stored));
            return;
        }
        // Bytes of the chunks the write stored are in the backend: a resume
        // needs to know those chunks are stored, not the bytes again. Only
        // the runs still buffered are kept, then an empty write at the end
        // (for the upload's extent) naming the stored chunks.
        for (at, run) in upload.unstored_runs(offset, data.len() as u64) {
            self.append(&record(at, &data[run], &[]));
        }
        let end = offset + data.len() as u64;
        self.append(&record(end, &[], stored));
    }

    /// Records an upload closed or aborted.
    pub fn ended(&mut self, si: StorageIndex, shnum: ShareNum) {
        self.append(&Record::Ended { si, shnum });
    }

    /// Whether the log should be rewritten: it has grown well past the
    /// `live` bytes of uploads it describes (asked only once the log is past
    /// its slack, since it costs a pass over the uploads), or it broke and,
    /// with no uploads in flight, starting it again is cheap.
    pub fn wants_rewrite(&self, live: impl FnOnce() -> u64, uploads: usize) -> bool {
        if self.broken {
            return uploads == 0;
        }
        self.end > SLACK && self.end > live().saturating_add(SLACK)
    }

    fn append(&mut self, record: &Record<'_>) {
        // Not open yet: the start in progress writes the log afresh.
        if self.broken || self.file.is_none() {
            return;
        }
        let mut bytes = Vec::new();
        let result = frame(&mut bytes, record).and_then(|()| match &self.file {
            Some(file) => file.write_all_at(&bytes, self.end),
            None => Ok(()),
        });
        match result {
            Ok(()) => self.end += bytes.len() as u64,
            Err(e) => {
                crate::log(&format!(
                    "staging uploads in {}: {e}; until it is rewritten, uploads in flight do not survive the instance dying",
                    self.path
                ));
                self.broken = true;
                // An incomplete log must not be resumed from.
                if let Some(file) = &self.file {
                    let _ = file.set_len(0);
                }
            }
        }
    }
}

fn read_only() -> OpenMode {
    OpenMode { write: false, create: false, create_new: false }
}

fn create() -> OpenMode {
    OpenMode { write: true, create: true, create_new: false }
}

/// Appends `record` to `out` as one frame.
fn frame(out: &mut Vec<u8>, record: &impl Serialize) -> io::Result<()> {
    // Sized first, then encoded into place: postcard's `to_extend` pushes a
    // byte string one byte at a time, and a record carries up to a write's
    // worth of share data.
    let size = postcard::experimental::serialized_size(record).map_err(io::Error::other)?;
    let len = u32::try_from(size).map_err(io::Error::other)?;
    let at = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.resize(at + 4 + size, 0);
    postcard::to_slice(record, &mut out[at + 4..]).map_err(io::Error::other)?;
    Ok(())
}

/// The uploads a log describes; a foreign header gives none, a damaged or
/// cut frame ends the log.
fn replay(bytes: &[u8]) -> Vec<Upload> {
    let Some(mut rest) = bytes.strip_prefix(HEADER.as_slice()) else {
        return Vec::new();
    };
    let mut order = Vec::new();
    let mut uploads: HashMap<(StorageIndex, ShareNum), Upload> = HashMap::new();
    while rest.len() >= 4 {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        let Some(payload) = rest.get(4..4 + len) else { break };
        rest = &rest[4 + len..];
        let Ok(record) = postcard::from_bytes::<Record<'_>>(payload) else { break };
        match record {
            Record::Uploads(all) => {
                uploads.clear();
                order.clear();
                for u in all {
                    order.push((u.si, u.shnum));
                    uploads.insert((u.si, u.shnum), u);
                }
            }
            Record::Allocated(u) => {
                let u = u.into_owned();
                order.push((u.si, u.shnum));
                uploads.insert((u.si, u.shnum), u);
            }
            Record::Wrote { si, shnum, offset, data, stored } => {
                if let Some(u) = uploads.get_mut(&(si, shnum)) {
                    u.replay_write(offset, &data, &stored);
                }
            }
            Record::Ended { si, shnum } => {
                uploads.remove(&(si, shnum));
            }
        }
    }
    order.dedup();
    order.into_iter().filter_map(|key| uploads.remove(&key)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::container::immutable::DATA_OFFSET;

    fn upload(seed: u8) -> Upload {
        Upload::new(StorageIndex([seed; 16]), ShareNum::new(0).unwrap(), 1, 1, 10_000, 4096)
    }

    fn log_in(dir: &tempfile::TempDir) -> StagingLog {
        let mut log = StagingLog::beside(dir.path().join("db").to_str().unwrap());
        log.rewrite([].iter()).unwrap();
        log
    }

    #[test]
    fn a_fresh_instance_gets_back_the_uploads_with_their_buffered_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let backend = MemoryBackend::new(1 << 30);
        let mut log = log_in(&dir);
        let (mut a, b, c) = (upload(1), upload(2), upload(3));
        for u in [&a, &b, &c] {
            log.allocated(u);
        }
        // Up to the end of chunk 1: it is stored, chunk 0 (the head, stored last) stays buffered.
        let data: Vec<u8> = (0..8192 - DATA_OFFSET).map(|i| i as u8).collect();
        let stored = a.write(&backend, 0, &data).unwrap();
        assert_eq!(stored, [1], "the write completed chunk 1");
        log.wrote(&a, 0, &data, &stored);
        log.ended(b.si, b.shnum);

        let back = StagingLog::beside(dir.path().join("db").to_str().unwrap()).recover().unwrap();
        assert_eq!(back, vec![a, c]);
    }

    #[test]
    fn the_bytes_of_chunks_a_write_stored_are_not_staged_again() {
        let dir = tempfile::tempdir().unwrap();
        let backend = MemoryBackend::new(1 << 30);
        let mut log = log_in(&dir);
        let mut a = upload(1);
        log.allocated(&a);
        let before = std::fs::metadata(dir.path().join("db-uploads")).unwrap().len();
        // Chunk 1 is completed and stored; chunks 0 and 2 stay partly buffered.
        let data: Vec<u8> = (0..9000).map(|i| (i * 7) as u8).collect();
        let stored = a.write(&backend, 100, &data).unwrap();
        assert_eq!(stored, [1]);
        log.wrote(&a, 100, &data, &stored);
        let staged = std::fs::metadata(dir.path().join("db-uploads")).unwrap().len() - before;
        assert!(staged < 9000 - 4000, "{staged} bytes staged for a write that stored 4096 of its 9000");

        let back = StagingLog::beside(dir.path().join("db").to_str().unwrap()).recover().unwrap();
        assert_eq!(back, vec![a], "the same upload, extent, buffered bytes and stored chunks");
    }

    #[test]
    fn a_cut_frame_ends_the_log_and_a_foreign_file_gives_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_in(&dir);
        log.allocated(&upload(1));
        log.allocated(&upload(2));
        let path = dir.path().join("db-uploads");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(log.recover().unwrap(), vec![upload(1)]);
        std::fs::write(&path, b"something else entirely").unwrap();
        assert_eq!(log.recover().unwrap(), vec![]);
    }

    #[test]
    fn a_rewrite_keeps_only_the_uploads_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_in(&dir);
        log.allocated(&upload(1));
        log.allocated(&upload(2));
        log.rewrite([upload(2)].iter()).unwrap();
        log.allocated(&upload(3));
        assert_eq!(log.recover().unwrap(), vec![upload(2), upload(3)]);
    }

    #[test]
    fn the_next_version_after_a_swap_goes_on_appending() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = log_in(&dir);
        old.allocated(&upload(1));
        let mut new = StagingLog::beside(dir.path().join("db").to_str().unwrap());
        new.reopen([upload(9)].iter()).unwrap();
        new.allocated(&upload(2));
        assert_eq!(new.recover().unwrap(), vec![upload(1), upload(2)], "not rewritten from the given uploads");
    }

    #[test]
    fn the_log_is_rewritten_when_it_outgrows_its_uploads_or_broke_with_none_left() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_in(&dir);
        let nothing_buffered = || 0;
        assert!(!log.wants_rewrite(|| unreachable!("within its slack"), 0));
        log.end = SLACK + 1;
        assert!(log.wants_rewrite(nothing_buffered, 1), "grown past its slack");
        assert!(!log.wants_rewrite(|| SLACK, 1), "describes that many buffered bytes");
        log.broken = true;
        assert!(!log.wants_rewrite(nothing_buffered, 1), "broken: not rewritten while uploads are in flight");
        assert!(log.wants_rewrite(nothing_buffered, 0), "broken, and nothing in flight: start again");
    }
}
