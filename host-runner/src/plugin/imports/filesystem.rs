//! The plugin's own file syncs and its database's writes (`wasi:filesystem`
//! `sync`, `sync-data` and `write`), wasmtime-wasi's with one step first:
//! the object writes the store holds back for a group commit are made
//! durable. The database's rows may name those objects, also in the middle
//! of a batch (the plugin makes its state durable before a destructive
//! backend change), and a sync is not the first moment they count: a commit
//! outlives a crash of this process once its last WAL frame is written (the
//! kernel keeps the write and the next open replays it). So the objects are
//! settled before that write, not only before the sync that follows it.
//! The plugin's other files (the log of uploads in flight, never synced and
//! ignored by a cold start) name nothing durably: their writes, one or more
//! per upload call, go straight through, or a batch's objects would be
//! settled one call at a time.

use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    Descriptor, DescriptorFlags, ErrorCode, Host, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::FsResult;

use crate::plugin::state::HostState;

/// The `wasi:filesystem/types` instance wasmtime-wasi defines (components
/// importing an older 0.2 version are matched to it).
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// The plugin's database file in its state directory; SQLite names its WAL
/// and journal after it (the upload log too, `-uploads`, which is no part of it).
const DATABASE_FILE: &str = "leasedb.sqlite3";

/// Whether `path` (as the plugin opens it) is one of its database's files.
fn is_database_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.strip_prefix(DATABASE_FILE)
        .is_some_and(|suffix| matches!(suffix, "" | "-wal" | "-journal"))
}

/// Replaces the methods `open-at`, `write`, `sync` and `sync-data`
/// `wasmtime_wasi::p2::add_to_linker_sync` defined in `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES)?;
    types.func_wrap(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, HostState>,
         (dir, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            let database = is_database_file(&path);
            let state = store.data_mut();
            let opened = run(state, false, |fs| {
                fs.open_at(dir, path_flags, path, open_flags, flags)
            })?;
            if let (Ok(file),) = &opened {
                // A rep is reused once its descriptor is dropped: each open
                // says afresh what the descriptor behind it is.
                if database {
                    state.database_files.insert(file.rep());
                } else {
                    state.database_files.remove(&file.rep());
                }
            }
            Ok(opened)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write",
        |mut store: StoreContextMut<'_, HostState>,
         (fd, buf, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            let state = store.data_mut();
            let database = state.database_files.contains(&fd.rep());
            run(state, database, |fs| fs.write(fd, buf, offset))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.sync-data",
        |mut store: StoreContextMut<'_, HostState>, (fd,): (Resource<Descriptor>,)| {
            run(store.data_mut(), true, |fs| fs.sync_data(fd))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.sync",
        |mut store: StoreContextMut<'_, HostState>, (fd,): (Resource<Descriptor>,)| {
            run(store.data_mut(), true, |fs| fs.sync(fd))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Runs `op` (an open, a write or a sync of one of the plugin's files) and
/// answers as wasmtime-wasi would; with `settle_first`, the store's held
/// writes are made durable before it. A failure of that fails `op` with an
/// I/O error, so the plugin's commit fails rather than naming objects that
/// may be lost. With nothing held it costs a lock.
fn run<T>(
    state: &mut HostState,
    settle_first: bool,
    op: impl FnOnce(&mut wasmtime_wasi::filesystem::WasiFilesystemCtxView<'_>) -> FsResult<T>,
) -> wasmtime::Result<(Result<T, ErrorCode>,)> {
    if settle_first {
        if let Err(e) = state.backend.settle_held() {
            tracing::error!("plugin: held object writes could not be made durable: {e}");
            return Ok((Err(ErrorCode::Io),));
        }
    }
    let mut fs = state.filesystem();
    match op(&mut fs) {
        Ok(done) => Ok((Ok(done),)),
        Err(e) => Ok((Err(fs.convert_error_code(e)?),)),
    }
}
