//! A durable SQLite VFS over `std::fs`.
//!
//! Inside the component `std::fs` is the WASI filesystem on the directory the
//! host preopens, so this is what makes the lease database survive a restart:
//! sqlite-wasm-rs only ships an in-memory VFS. `xSync` is `File::sync_data`,
//! which the host turns into a real fdatasync.
//!
//! Written against the raw `sqlite3_vfs` / `sqlite3_io_methods` structs,
//! which both the wasm and the native SQLite crates expose, so the same code
//! is unit-tested natively against real files (where it is registered under
//! its name but not as the default, leaving native connections on the
//! platform VFS).
//!
//! There is no shared memory: WAL needs `PRAGMA locking_mode=EXCLUSIVE`,
//! which `Connection::open` sets. Locks are kept in a process-wide table,
//! which is exactly as far as a component's files are shared.
//! Files SQLite opens without a name (temporary tables, sorter spill) live in
//! memory: they never need to survive, and WASI has no temp directory.

#[cfg(not(target_arch = "wasm32"))]
use libsqlite3_sys as ffi;
#[cfg(target_arch = "wasm32")]
use sqlite_wasm_rs as ffi;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::sqlite::{DbError, DbResult};

/// The name this VFS is registered under.
pub const NAME: &CStr = c"leasedb-fs";

/// Inside the component ours is the only persistent VFS, so it becomes the
/// default; natively the platform VFS (with real OS locks) stays the default.
const MAKE_DEFAULT: bool = cfg!(target_arch = "wasm32");

/// Longest path SQLite may hand us, including the "-journal"/"-wal" suffix.
const MAX_PATHNAME: c_int = 1024;

/// What SQLite assumes when a VFS does not know better (os_unix.c agrees).
const SECTOR_SIZE: c_int = 4096;

/// Milliseconds from the Julian day epoch to the Unix epoch.
const JULIAN_UNIX_EPOCH_MS: i64 = 210_866_760_000_000;

/// Registers the VFS with SQLite (as the default on wasm32). Idempotent.
pub fn register() -> DbResult<()> {
    static REGISTERED: OnceLock<DbResult<()>> = OnceLock::new();
    REGISTERED.get_or_init(register_once).clone()
}

fn register_once() -> DbResult<()> {
    // SQLite keeps the pointer (and links it into its list) for the life of
    // the process, so the struct is leaked on purpose.
    let vfs: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
        // 2: with xCurrentTimeInt64, without the system-call overrides.
        iVersion: 2,
        szOsFile: std::mem::size_of::<FsFile>() as c_int,
        mxPathname: MAX_PATHNAME,
        pNext: ptr::null_mut(),
        zName: NAME.as_ptr(),
        pAppData: ptr::null_mut(),
        xOpen: Some(x_open),
        xDelete: Some(x_delete),
        xAccess: Some(x_access),
        xFullPathname: Some(x_full_pathname),
        xDlOpen: Some(x_dl_open),
        xDlError: Some(x_dl_error),
        xDlSym: Some(x_dl_sym),
        xDlClose: Some(x_dl_close),
        xRandomness: Some(x_randomness),
        xSleep: Some(x_sleep),
        xCurrentTime: Some(x_current_time),
        xGetLastError: Some(x_get_last_error),
        xCurrentTimeInt64: Some(x_current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    }));
    // SAFETY: the struct and its callbacks live forever; registration is
    // serialized by the OnceLock.
    let rc = unsafe { ffi::sqlite3_vfs_register(vfs, c_int::from(MAKE_DEFAULT)) };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(DbError::new(rc, "registering the leasedb-fs VFS failed"))
    }
}

/// SQLite's per-file allocation (`szOsFile` bytes), filled in by `xOpen`.
#[repr(C)]
struct FsFile {
    /// SQLite's part; must stay first so `*mut sqlite3_file` casts to this.
    base: ffi::sqlite3_file,
    /// Owned from a successful `xOpen` until `xClose`.
    open: *mut OpenFile,
}

/// Our state for one open file.
struct OpenFile {
    data: Data,
    /// Set for named DELETEONCLOSE files: removed by `xClose`.
    delete_on_close: Option<PathBuf>,
    /// A newly created file whose directory entry is not yet durable: the
    /// next `xSync` also syncs the directory, as os_unix.c does.
    dir_sync_pending: Option<PathBuf>,
    lock: FileLock,
    /// Contiguous writes not yet handed to the filesystem: SQLite writes a WAL
    /// commit as many small writes (a 24-byte header, then a page, per frame),
    /// and inside the component each write is a host call. They go out as one
    /// write before anything that could observe the file (read, size,
    /// truncate, sync, close) or a write elsewhere.
    unwritten: Option<(u64, Vec<u8>)>,
}

/// Most bytes held back before they are written anyway.
const MAX_UNWRITTEN: usize = 1 << 20;

impl OpenFile {
    /// Writes the held-back bytes, if any.
    fn write_out(&mut self) -> io::Result<()> {
        if let (Data::Disk(f), Some((offset, bytes))) = (&mut self.data, self.unwritten.take()) {
            f.seek(SeekFrom::Start(offset))?;
            f.write_all(&bytes)?;
        }
        Ok(())
    }
}

/// Where a file's bytes live.
enum Data {
    Disk(File),
    /// An anonymous temporary file.
    Memory(Vec<u8>),
}

/// The last OS error number, for `xGetLastError` / `sqlite3_system_errno`.
static LAST_ERRNO: AtomicI32 = AtomicI32::new(0);

/// Returns `code` after noting the OS error behind it.
fn io_error(code: c_int, e: &io::Error) -> c_int {
    LAST_ERRNO.store(e.raw_os_error().unwrap_or(0), Ordering::Relaxed);
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ffi::SQLITE_FULL,
        _ => code,
    }
}

/// The state behind a file pointer SQLite hands back to us.
///
/// # Safety
/// `file` was filled in by a successful `x_open` and not yet closed.
unsafe fn state<'a>(file: *mut ffi::sqlite3_file) -> &'a mut OpenFile {
    &mut *(*file.cast::<FsFile>()).open
}

/// A path argument as UTF-8 (WASI paths are strings).
///
/// # Safety
/// `name` is null or NUL-terminated.
unsafe fn path_arg<'a>(name: *const c_char) -> Option<&'a str> {
    if name.is_null() {
        None
    } else {
        CStr::from_ptr(name).to_str().ok()
    }
}

/// Makes the directory entries in `path`'s directory durable. Best effort,
/// like os_unix.c: some hosts cannot open or fsync a directory at all, and
/// failing every commit there would be worse than the tiny window it leaves.
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // 1: no shared memory (WAL runs in exclusive mode), no memory mapping.
    iVersion: 1,
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
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn x_open(
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
            delete_on_close: None,
            dir_sync_pending: None,
            lock: FileLock::new(None),
        }
    } else {
        let Some(path) = path_arg(name) else {
            return ffi::SQLITE_CANTOPEN;
        };
        let mut options = OpenOptions::new();
        options.read(true);
        if flags & ffi::SQLITE_OPEN_READWRITE != 0 {
            options.write(true);
            if flags & ffi::SQLITE_OPEN_CREATE != 0 {
                if flags & ffi::SQLITE_OPEN_EXCLUSIVE != 0 {
                    options.create_new(true);
                } else {
                    options.create(true);
                }
            }
        }
        let f = match options.open(path) {
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
        let path_buf = PathBuf::from(path);
        OpenFile {
            data: Data::Disk(f),
            unwritten: None,
            delete_on_close: (flags & ffi::SQLITE_OPEN_DELETEONCLOSE != 0)
                .then(|| path_buf.clone()),
            dir_sync_pending: creates_durable.then(|| path_buf.clone()),
            lock: FileLock::new(Some(path.to_owned())),
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
        match fs::remove_file(&path) {
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
    let read = match &mut open.data {
        Data::Disk(f) => match read_at(f, buf, offset) {
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

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_at(f: &mut File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    // Positional reads (FileExt) are not stable on WASI; a seek is a cheap
    // guest-side offset update there.
    f.seek(SeekFrom::Start(offset))?;
    let mut done = 0;
    while done < buf.len() {
        match f.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
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
        sync_dir(&path);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    let open = state(file);
    if let Err(e) = open.write_out() {
        return io_error(ffi::SQLITE_IOERR_FSTAT, &e);
    }
    let len = match &open.data {
        Data::Disk(f) => match f.metadata() {
            Ok(m) => m.len(),
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
    _file: *mut ffi::sqlite3_file,
    _op: c_int,
    _arg: *mut c_void,
) -> c_int {
    ffi::SQLITE_NOTFOUND
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

unsafe extern "C" fn x_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_directory: c_int,
) -> c_int {
    let Some(path) = path_arg(name) else {
        return ffi::SQLITE_IOERR_DELETE;
    };
    match fs::remove_file(path) {
        Ok(()) => {}
        // SQLite expects this code for "already gone" and treats it as success.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return ffi::SQLITE_IOERR_DELETE_NOENT,
        Err(e) => return io_error(ffi::SQLITE_IOERR_DELETE, &e),
    }
    if sync_directory != 0 {
        sync_dir(Path::new(path));
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_access(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    *out = 0;
    let Some(path) = path_arg(name) else {
        return ffi::SQLITE_OK;
    };
    let Ok(meta) = fs::metadata(path) else {
        return ffi::SQLITE_OK;
    };
    let yes = match flags {
        // An empty journal is no journal: a crash between creating and
        // writing one must not look like a hot journal (as in os_unix.c).
        ffi::SQLITE_ACCESS_EXISTS => !meta.is_file() || meta.len() > 0,
        // WASI has no permission bits (std reports every file read-only);
        // the preopen's rights decide, so existence is the honest answer.
        ffi::SQLITE_ACCESS_READWRITE => {
            cfg!(target_arch = "wasm32") || !meta.permissions().readonly()
        }
        _ => true,
    };
    *out = c_int::from(yes);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_full_pathname(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    out_len: c_int,
    out: *mut c_char,
) -> c_int {
    // Unchanged: relative paths resolve against the WASI preopen, and the
    // plugin is given absolute ones anyway.
    let bytes = CStr::from_ptr(name).to_bytes_with_nul();
    if usize::try_from(out_len).map_or(true, |cap| bytes.len() > cap) {
        return ffi::SQLITE_CANTOPEN;
    }
    ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), out, bytes.len());
    ffi::SQLITE_OK
}

// Extensions are never loaded; these only keep SQLite away from null pointers.
unsafe extern "C" fn x_dl_open(_vfs: *mut ffi::sqlite3_vfs, _name: *const c_char) -> *mut c_void {
    ptr::null_mut()
}

unsafe extern "C" fn x_dl_error(_vfs: *mut ffi::sqlite3_vfs, len: c_int, out: *mut c_char) {
    let msg = b"loadable extensions are not supported\0";
    let Ok(cap) = usize::try_from(len) else {
        return;
    };
    if cap == 0 || out.is_null() {
        return;
    }
    let n = msg.len().min(cap);
    ptr::copy_nonoverlapping(msg.as_ptr().cast::<c_char>(), out, n);
    *out.add(n - 1) = 0;
}

unsafe extern "C" fn x_dl_sym(
    _vfs: *mut ffi::sqlite3_vfs,
    _handle: *mut c_void,
    _symbol: *const c_char,
) -> Option<unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char)> {
    None
}

unsafe extern "C" fn x_dl_close(_vfs: *mut ffi::sqlite3_vfs, _handle: *mut c_void) {}

unsafe extern "C" fn x_randomness(
    _vfs: *mut ffi::sqlite3_vfs,
    len: c_int,
    out: *mut c_char,
) -> c_int {
    let Ok(n) = usize::try_from(len) else {
        return 0;
    };
    fill_random(std::slice::from_raw_parts_mut(out.cast::<u8>(), n));
    len
}

unsafe extern "C" fn x_sleep(_vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    std::thread::sleep(Duration::from_micros(u64::try_from(micros).unwrap_or(0)));
    micros
}

unsafe extern "C" fn x_current_time(_vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    *out = (JULIAN_UNIX_EPOCH_MS + unix_time_ms()) as f64 / 86_400_000.0;
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_current_time_int64(_vfs: *mut ffi::sqlite3_vfs, out: *mut i64) -> c_int {
    *out = JULIAN_UNIX_EPOCH_MS + unix_time_ms();
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_get_last_error(
    _vfs: *mut ffi::sqlite3_vfs,
    len: c_int,
    out: *mut c_char,
) -> c_int {
    if len > 0 && !out.is_null() {
        *out = 0;
    }
    LAST_ERRNO.load(Ordering::Relaxed)
}

/// Milliseconds since the Unix epoch (negative before it).
pub(crate) fn unix_time_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Fills `buf` with unpredictable but NOT cryptographic bytes.
///
/// SQLite uses these for temporary names, `random()` and `randomblob()`,
/// nothing secret. std has no public random API, so the seed comes from
/// `RandomState` (keyed from the OS, i.e. `wasi:random` in the component)
/// and the clock, stretched with SplitMix64.
pub(crate) fn fill_random(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let bytes = next_random().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// The next SplitMix64 output of a process-wide, randomly seeded stream.
fn next_random() -> u64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let seed = *SEED.get_or_init(|| {
        let mut h = RandomState::new().build_hasher();
        h.write_i64(unix_time_ms());
        h.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut z = seed.wrapping_add(n.wrapping_mul(GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Who holds what on one file, across all handles in the process.
#[derive(Default)]
struct SharedLock {
    /// Handles at SHARED or above.
    readers: u32,
    /// A handle holds RESERVED (the one writer-to-be).
    reserved: bool,
    /// A handle holds PENDING or EXCLUSIVE: no new readers.
    pending: bool,
}

/// Lock state of every named file that has a handle above NONE.
static LOCKS: Mutex<Option<HashMap<String, SharedLock>>> = Mutex::new(None);

/// One handle's lock on its file, following SQLite's protocol
/// (NONE < SHARED < RESERVED < PENDING < EXCLUSIVE) within the process. A
/// conflicting request gets SQLITE_BUSY, never waits.
struct FileLock {
    /// None for anonymous files, which nobody else can see.
    key: Option<String>,
    level: c_int,
    holds_reserved: bool,
    holds_pending: bool,
}

impl FileLock {
    fn new(key: Option<String>) -> Self {
        FileLock {
            key,
            level: ffi::SQLITE_LOCK_NONE,
            holds_reserved: false,
            holds_pending: false,
        }
    }

    /// Runs `f` on this file's shared entry, dropping the entry once unused.
    fn with_shared<R>(&self, f: impl FnOnce(&mut SharedLock) -> R) -> R {
        let Some(key) = &self.key else {
            return f(&mut SharedLock::default());
        };
        // A panic elsewhere cannot leave the table half-updated: every update
        // is a few field assignments.
        let mut guard = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        let table = guard.get_or_insert_with(HashMap::new);
        let entry = table.entry(key.clone()).or_default();
        let r = f(entry);
        if entry.readers == 0 && !entry.reserved && !entry.pending {
            table.remove(key);
        }
        r
    }

    fn acquire(&mut self, level: c_int) -> c_int {
        if self.level >= level {
            return ffi::SQLITE_OK;
        }
        let me_reserved = self.holds_reserved;
        let me_pending = self.holds_pending;
        let from = self.level;
        let (rc, got_reserved, got_pending, new_level) = self.with_shared(|s| {
            if from == ffi::SQLITE_LOCK_NONE {
                if s.pending {
                    return (ffi::SQLITE_BUSY, false, false, from);
                }
                s.readers += 1;
                if level == ffi::SQLITE_LOCK_SHARED {
                    return (ffi::SQLITE_OK, false, false, ffi::SQLITE_LOCK_SHARED);
                }
            }
            let mut reserved = me_reserved;
            if level == ffi::SQLITE_LOCK_RESERVED {
                if s.reserved && !me_reserved {
                    return (ffi::SQLITE_BUSY, false, false, ffi::SQLITE_LOCK_SHARED);
                }
                s.reserved = true;
                reserved = true;
                return (ffi::SQLITE_OK, reserved, false, ffi::SQLITE_LOCK_RESERVED);
            }
            // PENDING or EXCLUSIVE: first stop new readers, then wait (by
            // failing with BUSY) until we are the only reader left.
            if !me_pending {
                if s.pending {
                    return (
                        ffi::SQLITE_BUSY,
                        reserved,
                        false,
                        from.max(ffi::SQLITE_LOCK_SHARED),
                    );
                }
                s.pending = true;
            }
            if level == ffi::SQLITE_LOCK_EXCLUSIVE && s.readers > 1 {
                return (ffi::SQLITE_BUSY, reserved, true, ffi::SQLITE_LOCK_PENDING);
            }
            (ffi::SQLITE_OK, reserved, true, level)
        });
        self.holds_reserved = got_reserved;
        self.holds_pending = got_pending;
        self.level = new_level;
        rc
    }

    /// Drops to `level` (SHARED or NONE); a no-op if already at or below it.
    fn release(&mut self, level: c_int) {
        if self.level <= level {
            return;
        }
        let (reserved, pending, from) = (self.holds_reserved, self.holds_pending, self.level);
        self.with_shared(|s| {
            if reserved {
                s.reserved = false;
            }
            if pending {
                s.pending = false;
            }
            if level == ffi::SQLITE_LOCK_NONE && from >= ffi::SQLITE_LOCK_SHARED {
                s.readers -= 1;
            }
        });
        self.holds_reserved = false;
        self.holds_pending = false;
        self.level = level;
    }

    /// Whether any handle on this file holds RESERVED or more.
    fn reserved_by_anyone(&self) -> bool {
        self.holds_reserved || self.holds_pending || self.with_shared(|s| s.reserved || s.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sqlite::Connection;

    /// A fresh directory. std's temp_dir panics on WASI, so inside wasm the
    /// tests use /tmp, which the wasm test runner preopens.
    fn tempdir() -> tempfile::TempDir {
        #[cfg(target_arch = "wasm32")]
        let _ = tempfile::env::override_temp_dir(std::path::Path::new("/tmp"));
        tempfile::tempdir().unwrap()
    }

    fn open(path: &Path) -> DbResult<Connection> {
        register().unwrap();
        Connection::open_with_vfs(path.to_str().unwrap(), NAME)
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", &[], |r| r.get(0))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn register_is_idempotent_and_default_only_on_wasm() {
        register().unwrap();
        register().unwrap();
        unsafe {
            let ours = ffi::sqlite3_vfs_find(NAME.as_ptr());
            assert!(!ours.is_null());
            let default = ffi::sqlite3_vfs_find(ptr::null());
            assert_eq!(
                default == ours,
                MAKE_DEFAULT,
                "default only inside the component"
            );
        }
    }

    /// WAL without shared memory must work, because the component has none.
    #[test]
    fn wal_in_exclusive_mode_persists_across_reopen() {
        let dir = tempdir();
        let db = dir.path().join("l.sqlite3");
        {
            let conn = open(&db).unwrap();
            assert_eq!(conn.journal_mode().unwrap(), "wal");
            conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY, b BLOB)")
                .unwrap();
            for i in 0..200i64 {
                let tx = conn.transaction().unwrap();
                tx.execute("INSERT INTO t VALUES (?1, ?2)", &[&i, &vec![i as u8; 3000]])
                    .unwrap();
                tx.commit().unwrap();
            }
            assert!(dir.path().join("l.sqlite3-wal").exists());
            assert!(
                !dir.path().join("l.sqlite3-shm").exists(),
                "no shared memory file"
            );
        }
        // A clean close checkpoints and removes the WAL.
        assert!(!dir.path().join("l.sqlite3-wal").exists());
        let conn = open(&db).unwrap();
        assert_eq!(count(&conn), 200);
        let ok: Option<String> = conn
            .query_row("PRAGMA integrity_check", &[], |r| r.get(0))
            .unwrap();
        assert_eq!(ok.as_deref(), Some("ok"));
    }

    /// What a crash leaves behind (database plus un-checkpointed WAL) holds
    /// every committed transaction.
    #[test]
    fn committed_data_is_on_disk_before_close() {
        let dir = tempdir();
        let db = dir.path().join("l.sqlite3");
        let conn = open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute("INSERT INTO t VALUES (?1)", &[&7i64]).unwrap();
        tx.commit().unwrap();
        let copy = tempdir();
        fs::copy(&db, copy.path().join("l.sqlite3")).unwrap();
        fs::copy(
            dir.path().join("l.sqlite3-wal"),
            copy.path().join("l.sqlite3-wal"),
        )
        .unwrap();
        let recovered = open(&copy.path().join("l.sqlite3")).unwrap();
        assert_eq!(count(&recovered), 1);
        drop(conn);
    }

    /// The TRUNCATE and DELETE journals exercise xDelete, xTruncate and
    /// xAccess, the fallback path if WAL were ever refused.
    #[test]
    fn rollback_journals_work() {
        for mode in ["TRUNCATE", "DELETE"] {
            let dir = tempdir();
            let db = dir.path().join("j.sqlite3");
            {
                let conn = open(&db).unwrap();
                conn.execute_batch(&format!(
                    "PRAGMA journal_mode={mode}; CREATE TABLE t (x INTEGER)"
                ))
                .unwrap();
                assert_eq!(conn.journal_mode().unwrap(), mode.to_ascii_lowercase());
                for i in 0..50i64 {
                    conn.execute("INSERT INTO t VALUES (?1)", &[&i]).unwrap();
                }
                let tx = conn.transaction().unwrap();
                tx.execute("DELETE FROM t", &[]).unwrap();
                drop(tx);
                assert_eq!(count(&conn), 50);
            }
            // Reopening switches back to WAL, over the rollback-journal file.
            let conn = open(&db).unwrap();
            assert_eq!(count(&conn), 50);
        }
    }

    /// Two connections in one process share the lock table: the second is
    /// refused with BUSY instead of both writing one file.
    #[test]
    fn second_connection_to_a_locked_file_is_busy() {
        let dir = tempdir();
        let db = dir.path().join("l.sqlite3");
        let first = open(&db).unwrap();
        first.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let e = open(&db).err().expect("second open must fail");
        assert_eq!(e.primary_code(), ffi::SQLITE_BUSY, "{e}");
        drop(first);
        let again = open(&db).unwrap();
        assert_eq!(count(&again), 0);
    }

    /// Opens `path` through the registered VFS's own entry points.
    unsafe fn raw_open(path: &CStr, flags: c_int) -> (Vec<u64>, c_int) {
        register().unwrap();
        let vfs = ffi::sqlite3_vfs_find(NAME.as_ptr());
        let words = ((*vfs).szOsFile as usize).div_ceil(8);
        let mut mem = vec![0u64; words];
        let mut out = 0;
        let rc =
            (*vfs).xOpen.unwrap()(vfs, path.as_ptr(), mem.as_mut_ptr().cast(), flags, &mut out);
        (mem, rc)
    }

    fn methods(mem: &mut [u64]) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
        let f: *mut ffi::sqlite3_file = mem.as_mut_ptr().cast();
        (f, unsafe { &*(*f).pMethods })
    }

    /// Contiguous writes are held back and written as one, yet every read,
    /// size and the file on disk after sync and close see each byte.
    #[test]
    fn held_back_writes_are_seen_by_reads_and_reach_the_file() {
        let dir = tempdir();
        let path = std::ffi::CString::new(dir.path().join("w").to_str().unwrap()).unwrap();
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE | ffi::SQLITE_OPEN_WAL;
        unsafe {
            let (mut mem, rc) = raw_open(&path, flags);
            assert_eq!(rc, ffi::SQLITE_OK);
            let (f, m) = methods(&mut mem);
            let mut expected = Vec::new();
            for i in 0..10u8 {
                let piece = vec![i; 24 + i as usize * 100];
                let at = expected.len() as i64;
                assert_eq!(
                    m.xWrite.unwrap()(f, piece.as_ptr().cast(), piece.len() as c_int, at),
                    ffi::SQLITE_OK
                );
                expected.extend_from_slice(&piece);
            }
            // Before any sync, nothing may have reached the file, but a read must see it all.
            let mut back = vec![0u8; expected.len()];
            assert_eq!(
                m.xRead.unwrap()(f, back.as_mut_ptr().cast(), back.len() as c_int, 0),
                ffi::SQLITE_OK
            );
            assert_eq!(back, expected);
            // A write elsewhere (backwards) is written out in order with the held ones.
            assert_eq!(
                m.xWrite.unwrap()(f, b"XY".as_ptr().cast(), 2, 1),
                ffi::SQLITE_OK
            );
            expected[1..3].copy_from_slice(b"XY");
            assert_eq!(
                m.xWrite.unwrap()(f, b"Z".as_ptr().cast(), 1, expected.len() as i64),
                ffi::SQLITE_OK
            );
            expected.push(b'Z');
            let mut size = 0i64;
            assert_eq!(m.xFileSize.unwrap()(f, &mut size), ffi::SQLITE_OK);
            assert_eq!(size as usize, expected.len());
            assert_eq!(m.xSync.unwrap()(f, ffi::SQLITE_SYNC_NORMAL), ffi::SQLITE_OK);
            assert_eq!(fs::read(dir.path().join("w")).unwrap(), expected);
            assert_eq!(
                m.xWrite.unwrap()(f, b"!".as_ptr().cast(), 1, expected.len() as i64),
                ffi::SQLITE_OK
            );
            expected.push(b'!');
            assert_eq!(m.xClose.unwrap()(f), ffi::SQLITE_OK);
            assert_eq!(
                fs::read(dir.path().join("w")).unwrap(),
                expected,
                "close writes out what is held"
            );
        }
    }

    #[test]
    fn file_io_reads_writes_truncates_and_zero_fills_short_reads() {
        let dir = tempdir();
        let path = std::ffi::CString::new(dir.path().join("f").to_str().unwrap()).unwrap();
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE | ffi::SQLITE_OPEN_MAIN_DB;
        unsafe {
            let (mut mem, rc) = raw_open(&path, flags);
            assert_eq!(rc, ffi::SQLITE_OK);
            let (f, m) = methods(&mut mem);
            let data = [7u8; 100];
            assert_eq!(
                m.xWrite.unwrap()(f, data.as_ptr().cast(), 100, 4096),
                ffi::SQLITE_OK
            );
            let mut size = 0i64;
            assert_eq!(m.xFileSize.unwrap()(f, &mut size), ffi::SQLITE_OK);
            assert_eq!(size, 4196);
            let mut buf = [1u8; 200];
            assert_eq!(
                m.xRead.unwrap()(f, buf.as_mut_ptr().cast(), 200, 4096),
                ffi::SQLITE_IOERR_SHORT_READ
            );
            assert_eq!(&buf[..100], &[7u8; 100][..]);
            assert_eq!(&buf[100..], &[0u8; 100][..]);
            let mut hole = [1u8; 16];
            assert_eq!(
                m.xRead.unwrap()(f, hole.as_mut_ptr().cast(), 16, 0),
                ffi::SQLITE_OK
            );
            assert_eq!(hole, [0u8; 16]);
            assert_eq!(m.xTruncate.unwrap()(f, 10), ffi::SQLITE_OK);
            assert_eq!(m.xFileSize.unwrap()(f, &mut size), ffi::SQLITE_OK);
            assert_eq!(size, 10);
            assert_eq!(m.xSync.unwrap()(f, ffi::SQLITE_SYNC_FULL), ffi::SQLITE_OK);
            assert_eq!(m.xClose.unwrap()(f), ffi::SQLITE_OK);
            assert_eq!(fs::metadata(dir.path().join("f")).unwrap().len(), 10);

            // Opening a missing file without CREATE fails cleanly.
            let missing =
                std::ffi::CString::new(dir.path().join("nope").to_str().unwrap()).unwrap();
            let (mem, rc) = raw_open(
                &missing,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_MAIN_DB,
            );
            assert_eq!(rc, ffi::SQLITE_CANTOPEN);
            assert!((*mem.as_ptr().cast::<ffi::sqlite3_file>())
                .pMethods
                .is_null());
        }
    }

    #[test]
    fn anonymous_files_live_in_memory() {
        let flags = ffi::SQLITE_OPEN_READWRITE
            | ffi::SQLITE_OPEN_CREATE
            | ffi::SQLITE_OPEN_DELETEONCLOSE
            | ffi::SQLITE_OPEN_TEMP_JOURNAL;
        unsafe {
            register().unwrap();
            let vfs = ffi::sqlite3_vfs_find(NAME.as_ptr());
            let mut mem = vec![0u64; ((*vfs).szOsFile as usize).div_ceil(8)];
            let rc = (*vfs).xOpen.unwrap()(
                vfs,
                ptr::null(),
                mem.as_mut_ptr().cast(),
                flags,
                ptr::null_mut(),
            );
            assert_eq!(rc, ffi::SQLITE_OK);
            let (f, m) = methods(&mut mem);
            assert_eq!(
                m.xWrite.unwrap()(f, b"abc".as_ptr().cast(), 3, 10),
                ffi::SQLITE_OK
            );
            let mut buf = [9u8; 14];
            assert_eq!(
                m.xRead.unwrap()(f, buf.as_mut_ptr().cast(), 14, 0),
                ffi::SQLITE_IOERR_SHORT_READ
            );
            assert_eq!(&buf, b"\0\0\0\0\0\0\0\0\0\0abc\0");
            assert_eq!(m.xTruncate.unwrap()(f, 11), ffi::SQLITE_OK);
            let mut size = 0;
            m.xFileSize.unwrap()(f, &mut size);
            assert_eq!(size, 11);
            assert_eq!(m.xClose.unwrap()(f), ffi::SQLITE_OK);
        }
    }

    #[test]
    fn delete_access_and_delete_on_close() {
        let dir = tempdir();
        let p = dir.path().join("j");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        unsafe {
            register().unwrap();
            let vfs = ffi::sqlite3_vfs_find(NAME.as_ptr());
            let access = |flags| {
                let mut out = -1;
                assert_eq!(
                    (*vfs).xAccess.unwrap()(vfs, c.as_ptr(), flags, &mut out),
                    ffi::SQLITE_OK
                );
                out
            };
            assert_eq!(access(ffi::SQLITE_ACCESS_EXISTS), 0);
            fs::write(&p, b"").unwrap();
            assert_eq!(
                access(ffi::SQLITE_ACCESS_EXISTS),
                0,
                "an empty file is not a hot journal"
            );
            fs::write(&p, b"x").unwrap();
            assert_eq!(access(ffi::SQLITE_ACCESS_EXISTS), 1);
            assert_eq!(access(ffi::SQLITE_ACCESS_READWRITE), 1);
            assert_eq!((*vfs).xDelete.unwrap()(vfs, c.as_ptr(), 1), ffi::SQLITE_OK);
            assert!(!p.exists());
            assert_eq!(
                (*vfs).xDelete.unwrap()(vfs, c.as_ptr(), 0),
                ffi::SQLITE_IOERR_DELETE_NOENT
            );

            let mut full = [0 as c_char; 64];
            assert_eq!(
                (*vfs).xFullPathname.unwrap()(vfs, c"rel/x.db".as_ptr(), 64, full.as_mut_ptr()),
                ffi::SQLITE_OK
            );
            assert_eq!(CStr::from_ptr(full.as_ptr()), c"rel/x.db");
            assert_eq!(
                (*vfs).xFullPathname.unwrap()(vfs, c"rel/x.db".as_ptr(), 4, full.as_mut_ptr()),
                ffi::SQLITE_CANTOPEN
            );

            let flags = ffi::SQLITE_OPEN_READWRITE
                | ffi::SQLITE_OPEN_CREATE
                | ffi::SQLITE_OPEN_DELETEONCLOSE
                | ffi::SQLITE_OPEN_TEMP_DB;
            let (mut mem, rc) = raw_open(&c, flags);
            assert_eq!(rc, ffi::SQLITE_OK);
            assert!(p.exists());
            let (f, m) = methods(&mut mem);
            assert_eq!(m.xClose.unwrap()(f), ffi::SQLITE_OK);
            assert!(!p.exists(), "DELETEONCLOSE");
        }
    }

    #[test]
    fn lock_protocol_within_one_process() {
        let mut a = FileLock::new(Some("lock-test-file".into()));
        let mut b = FileLock::new(Some("lock-test-file".into()));
        assert_eq!(a.acquire(ffi::SQLITE_LOCK_SHARED), ffi::SQLITE_OK);
        assert_eq!(b.acquire(ffi::SQLITE_LOCK_SHARED), ffi::SQLITE_OK);
        assert_eq!(a.acquire(ffi::SQLITE_LOCK_RESERVED), ffi::SQLITE_OK);
        assert!(b.reserved_by_anyone());
        assert_eq!(b.acquire(ffi::SQLITE_LOCK_RESERVED), ffi::SQLITE_BUSY);
        // b still reads, so a stops at PENDING, which keeps new readers out.
        assert_eq!(a.acquire(ffi::SQLITE_LOCK_EXCLUSIVE), ffi::SQLITE_BUSY);
        assert_eq!(a.level, ffi::SQLITE_LOCK_PENDING);
        let mut c = FileLock::new(Some("lock-test-file".into()));
        assert_eq!(c.acquire(ffi::SQLITE_LOCK_SHARED), ffi::SQLITE_BUSY);
        b.release(ffi::SQLITE_LOCK_NONE);
        assert_eq!(a.acquire(ffi::SQLITE_LOCK_EXCLUSIVE), ffi::SQLITE_OK);
        a.release(ffi::SQLITE_LOCK_SHARED);
        assert!(!c.reserved_by_anyone());
        assert_eq!(c.acquire(ffi::SQLITE_LOCK_SHARED), ffi::SQLITE_OK);
        a.release(ffi::SQLITE_LOCK_NONE);
        c.release(ffi::SQLITE_LOCK_NONE);
        assert!(LOCKS
            .lock()
            .unwrap()
            .as_ref()
            .is_none_or(|t| !t.contains_key("lock-test-file")));
    }

    #[test]
    fn random_bytes_vary() {
        let mut a = [0u8; 37];
        let mut b = [0u8; 37];
        fill_random(&mut a);
        fill_random(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 37]);
    }
}
