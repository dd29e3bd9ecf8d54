//! One open file: SQLite's `sqlite3_io_methods` over a disk file (with
//! contiguous writes held back and written as one) or, for files SQLite opens
//! without a name, over memory.

use std::ffi::{c_int, c_void};
use std::io;
use std::ptr;

use super::ffi;
use super::lock::FileLock;
use super::wal_index::{WalIndex, FCNTL_COPY_WAL_INDEX, FCNTL_SEED_WAL_INDEX};
use super::{io_error, path_arg, SECTOR_SIZE};
use crate::disk::{self, OpenMode};

/// SQLite's per-file allocation (`szOsFile` bytes), filled in by `xOpen`.
#[repr(C)]
pub(super) struct FsFile {
    /// SQLite's part; must stay first so `*mut sqlite3_file` casts to this.
    base: ffi::sqlite3_file,
    /// Owned from a successful `xOpen` until `xClose`.
    open: *mut OpenFile,
}

/// Our state for one open file.
struct OpenFile {
    data: Data,
    /// Set for named DELETEONCLOSE files: removed by `xClose`.
    delete_on_close: Option<String>,
    /// A newly created file whose directory entry is not yet durable: the
    /// next `xSync` also syncs the directory, as os_unix.c does.
    dir_sync_pending: Option<String>,
    lock: FileLock,
    /// Contiguous writes not yet handed to the filesystem: SQLite writes a WAL
    /// commit as many small writes (a 24-byte header, then a page, per frame),
    /// and inside the component each write is a host call. They go out as one
    /// write before anything that could observe the file (read, size,
    /// truncate, sync, close) or a write elsewhere.
    unwritten: Option<(u64, Vec<u8>)>,
    /// Where the last read ended, and bytes read ahead from there: opening a
    /// database with a WAL replays it one frame (a page) per read, and each
    /// read inside the component is a host call. A read that starts where
    /// the last one ended is taken as sequential and reads ahead. Any write
    /// or truncation drops the bytes read ahead.
    last_read_end: u64,
    ahead: Option<(u64, Vec<u8>)>,
    /// SQLite's WAL index, when this is a database in WAL mode.
    wal_index: WalIndex,
}

/// Most bytes held back before they are written anyway.
const MAX_UNWRITTEN: usize = 1 << 20;

/// How far a sequential read reads ahead.
const READ_AHEAD: usize = 256 << 10;

#[cfg(test)]
thread_local! {
    /// Bytes this thread read from files on disk, for tests of what an open reads.
    pub(super) static DISK_BYTES_READ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `f.read_at`, counted in tests.
fn read_disk(f: &disk::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let n = f.read_at(buf, offset)?;
    #[cfg(test)]
    DISK_BYTES_READ.with(|c| c.set(c.get() + n as u64));
    Ok(n)
}

impl OpenFile {
    /// Writes the held-back bytes, if any.
    fn write_out(&mut self) -> io::Result<()> {
        if let (Data::Disk(f), Some((offset, bytes))) = (&mut self.data, self.unwritten.take()) {
            f.write_all_at(&bytes, offset)?;
        }
        Ok(())
    }
}

/// Where a file's bytes live.
enum Data {
    Disk(disk::File),
    /// An anonymous temporary file.
    Memory(Vec<u8>),
}

/// The state behind a file pointer SQLite hands back to us.
///
/// # Safety
/// `file` was filled in by a successful `x_open` and not yet closed.
unsafe fn state<'a>(file: *mut ffi::sqlite3_file) -> &'a mut OpenFile {
    &mut *(*file.cast::<FsFile>()).open
}

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // 2: shared memory (the WAL index, `wal_index.rs`), no memory mapping.
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

pub(super) unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // A failed open must leave pMethods null, or SQLite would call xClose.
    (*file).pMethods = ptr::null();
    let open = if name.is_null() {
        OpenFile {
            data: Data::Memory(Vec::new()),
            unwritten: None,
            last_read_end: 0,
            ahead: None,
            delete_on_close: None,
            dir_sync_pending: None,
            lock: FileLock::new(None),
            wal_index: WalIndex::new(None),
        }
    } else {
        let Some(path) = path_arg(name) else {
            return ffi::SQLITE_CANTOPEN;
        };
        let write = flags & ffi::SQLITE_OPEN_READWRITE != 0;
        let create = write && flags & ffi::SQLITE_OPEN_CREATE != 0;
        let mode = OpenMode {
            write,
            create,
            create_new: create && flags & ffi::SQLITE_OPEN_EXCLUSIVE != 0,
        };
        let f = match disk::File::open(path, mode) {
            Ok(f) => f,
            Err(e) => return io_error(ffi::SQLITE_CANTOPEN, &e),
        };
        // Journals and the WAL come and go; their directory entry must be on
        // disk before a commit relies on them. The database file is included
        // so that a fresh database's own entry is made durable with it.
        let durable_kinds = ffi::SQLITE_OPEN_MAIN_DB
            | ffi::SQLITE_OPEN_MAIN_JOURNAL
            | ffi::SQLITE_OPEN_SUPER_JOURNAL
            | ffi::SQLITE_OPEN_WAL;
        let creates_durable = flags & ffi::SQLITE_OPEN_CREATE != 0 && flags & durable_kinds != 0;
        OpenFile {
            data: Data::Disk(f),
            unwritten: None,
            last_read_end: 0,
            ahead: None,
            delete_on_close: (flags & ffi::SQLITE_OPEN_DELETEONCLOSE != 0).then(|| path.to_owned()),
            dir_sync_pending: creates_durable.then(|| path.to_owned()),
            lock: FileLock::new(Some(path.to_owned())),
            wal_index: WalIndex::new((flags & ffi::SQLITE_OPEN_MAIN_DB != 0).then_some(path)),
        }
    };
    file.cast::<FsFile>().write(FsFile {
        base: ffi::sqlite3_file {
            pMethods: &IO_METHODS,
        },
        open: Box::into_raw(Box::new(open)),
    });
    if !out_flags.is_null() {
        *out_flags = flags;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let fs_file = file.cast::<FsFile>();
    let mut open = Box::from_raw((*fs_file).open);
    (*fs_file).open = ptr::null_mut();
    let written = open.write_out();
    open.lock.release(ffi::SQLITE_LOCK_NONE);
    let OpenFile {
        data,
        delete_on_close,
        ..
    } = *open;
    drop(data);
    if let Err(e) = written {
        return io_error(ffi::SQLITE_IOERR_CLOSE, &e);
    }
    if let Some(path) = delete_on_close {
        match disk::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return io_error(ffi::SQLITE_IOERR_CLOSE, &e)
            }
            _ => {}
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let (Ok(len), Ok(offset)) = (usize::try_from(amount), u64::try_from(offset)) else {
        return ffi::SQLITE_IOERR_READ;
    };
    let buf = std::slice::from_raw_parts_mut(buf.cast::<u8>(), len);
    let open = state(file);
    if let Err(e) = open.write_out() {
        return io_error(ffi::SQLITE_IOERR_READ, &e);
    }
    let sequential = offset == open.last_read_end;
    open.last_read_end = offset.saturating_add(len as u64);
    let read = match &mut open.data {
        Data::Disk(f) => match read_through(f, &mut open.ahead, sequential, buf, offset) {
            Ok(n) => n,
            Err(e) => return io_error(ffi::SQLITE_IOERR_READ, &e),
        },
        Data::Memory(v) => {
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(v.len());
            let n = (v.len() - start).min(len);
            buf[..n].copy_from_slice(&v[start..start + n]);
            n
        }
    };
    if read < len {
        // SQLite requires the unread tail zeroed: it treats it as empty pages.
        buf[read..].fill(0);
        return ffi::SQLITE_IOERR_SHORT_READ;
    }
    ffi::SQLITE_OK
}

/// Reads `buf.len()` bytes at `offset` (fewer at the end of the file),
/// from the bytes read ahead when they hold them; a sequential read that
/// misses them reads ahead again.
fn read_through(
    f: &disk::File,
    ahead: &mut Option<(u64, Vec<u8>)>,
    sequential: bool,
    buf: &mut [u8],
    offset: u64,
) -> io::Result<usize> {
    if let Some((start, bytes)) = ahead {
        let end = *start + bytes.len() as u64;
        if offset >= *start && offset + buf.len() as u64 <= end {
            let from = (offset - *start) as usize;
            buf.copy_from_slice(&bytes[from..from + buf.len()]);
            return Ok(buf.len());
        }
    }
    if !sequential || buf.len() >= READ_AHEAD {
        return read_disk(f, buf, offset);
    }
    let mut window = ahead.take().map(|(_, v)| v).unwrap_or_default();
    window.resize(READ_AHEAD, 0);
    let got = read_disk(f, &mut window, offset)?;
    window.truncate(got);
    let n = got.min(buf.len());
    buf[..n].copy_from_slice(&window[..n]);
    // A window that ends with the file cannot answer reads past its end.
    *ahead = Some((offset, window));
    Ok(n)
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let (Ok(len), Ok(offset)) = (usize::try_from(amount), u64::try_from(offset)) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let buf = std::slice::from_raw_parts(buf.cast::<u8>(), len);
    let open = state(file);
    open.ahead = None;
    match &mut open.data {
        Data::Disk(_) => {
            if let Some((start, held)) = &mut open.unwritten {
                if *start + held.len() as u64 == offset && held.len() + len <= MAX_UNWRITTEN {
                    held.extend_from_slice(buf);
                    return ffi::SQLITE_OK;
                }
            }
            if let Err(e) = open.write_out() {
                return io_error(ffi::SQLITE_IOERR_WRITE, &e);
            }
            open.unwritten = Some((offset, buf.to_vec()));
        }
        Data::Memory(v) => {
            let Some(end) = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(len))
            else {
                return ffi::SQLITE_FULL;
            };
            if v.len() < end {
                v.resize(end, 0);
            }
            v[end - len..end].copy_from_slice(buf);
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    let Ok(size) = u64::try_from(size) else {
        return ffi::SQLITE_IOERR_TRUNCATE;
    };
    let open = state(file);
    open.ahead = None;
    if let Err(e) = open.write_out() {
        return io_error(ffi::SQLITE_IOERR_TRUNCATE, &e);
    }
    match &mut open.data {
        Data::Disk(f) => {
            if let Err(e) = f.set_len(size) {
                return io_error(ffi::SQLITE_IOERR_TRUNCATE, &e);
            }
        }
        Data::Memory(v) => match usize::try_from(size) {
            Ok(size) => v.resize(size, 0),
            Err(_) => return ffi::SQLITE_FULL,
        },
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    let open = state(file);
    if let Err(e) = open.write_out() {
        return io_error(ffi::SQLITE_IOERR_WRITE, &e);
    }
    if let Data::Disk(f) = &open.data {
        // fdatasync, as SQLite's own unix VFS does on Linux: it also flushes
        // the metadata needed to read the data back (the file size), which is
        // all the WAL and journals depend on; file times are not.
        if let Err(e) = f.sync_data() {
            return io_error(ffi::SQLITE_IOERR_FSYNC, &e);
        }
    }
    if let Some(path) = open.dir_sync_pending.take() {
        // Best effort, like os_unix.c: some hosts cannot open or sync a
        // directory at all, and failing every commit there would be worse
        // than the tiny window it leaves.
        let _ = disk::sync_dir(&path);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    let open = state(file);
    if let Err(e) = open.write_out() {
        return io_error(ffi::SQLITE_IOERR_FSTAT, &e);
    }
    let len = match &open.data {
        Data::Disk(f) => match f.len() {
            Ok(len) => len,
            Err(e) => return io_error(ffi::SQLITE_IOERR_FSTAT, &e),
        },
        Data::Memory(v) => v.len() as u64,
    };
    *size = i64::try_from(len).unwrap_or(i64::MAX);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    state(file).lock.acquire(level)
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    state(file).lock.release(level);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    *out = c_int::from(state(file).lock.reserved_by_anyone());
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // Both opcodes come from `Connection`: a `Vec<u8>` to fill, a `&[u8]` to take.
    match op {
        FCNTL_COPY_WAL_INDEX => {
            *arg.cast::<Vec<u8>>() = state(file).wal_index.copy();
            ffi::SQLITE_OK
        }
        FCNTL_SEED_WAL_INDEX if state(file).wal_index.seed(*arg.cast::<&[u8]>()) => ffi::SQLITE_OK,
        _ => ffi::SQLITE_NOTFOUND,
    }
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let (Ok(region), Ok(size)) = (usize::try_from(region), usize::try_from(size)) else {
        return ffi::SQLITE_IOERR_SHMMAP;
    };
    match state(file).wal_index.map(region, size, extend != 0) {
        Ok(p) => {
            *out = p.cast();
            ffi::SQLITE_OK
        }
        Err(rc) => rc,
    }
}

unsafe extern "C" fn x_shm_lock(
    _file: *mut ffi::sqlite3_file,
    _offset: c_int,
    _n: c_int,
    _flags: c_int,
) -> c_int {
    // The index is private to this handle (`wal_index.rs`): nobody to exclude.
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shm_barrier(_file: *mut ffi::sqlite3_file) {}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, _delete: c_int) -> c_int {
    state(file).wal_index.unmap();
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_sector_size(_file: *mut ffi::sqlite3_file) -> c_int {
    SECTOR_SIZE
}

unsafe extern "C" fn x_device_characteristics(_file: *mut ffi::sqlite3_file) -> c_int {
    // Powersafe overwrite, the assumption SQLite's own unix VFS makes by
    // default: writing a byte range never damages bytes outside it on power
    // loss. Without it SQLite pads every WAL commit out to a sector with
    // extra frame writes, which costs each commit several more host calls.
    ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE
}
