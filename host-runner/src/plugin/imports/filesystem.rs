//! The plugin's own file syncs (`wasi:filesystem` `sync` and `sync-data`),
//! wasmtime-wasi's with one step first: the object writes the store holds
//! back for a group commit are made durable before any file of the plugin's
//! is. The database is such a file, and once a sync makes its rows durable
//! they may name those objects, also in the middle of a batch (the plugin
//! makes its state durable before a destructive backend change).

use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    Descriptor, ErrorCode, Host, HostDescriptor,
};
use wasmtime_wasi::p2::FsResult;

use crate::plugin::state::HostState;

/// The `wasi:filesystem/types` instance wasmtime-wasi defines (components
/// importing an older 0.2 version are matched to it).
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Replaces the two sync methods `wasmtime_wasi::p2::add_to_linker_sync`
/// defined in `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(TYPES)?;
    types.func_wrap(
        "[method]descriptor.sync-data",
        |store: StoreContextMut<'_, HostState>, (fd,): (Resource<Descriptor>,)| {
            after_held_writes(store, fd, |fs, fd| fs.sync_data(fd))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.sync",
        |store: StoreContextMut<'_, HostState>, (fd,): (Resource<Descriptor>,)| {
            after_held_writes(store, fd, |fs, fd| fs.sync(fd))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Makes the store's held writes durable, then runs `sync` on `fd`. A failure
/// of the former fails the sync with an I/O error, so the plugin's commit
/// fails rather than naming objects that may be lost.
fn after_held_writes(
    mut store: StoreContextMut<'_, HostState>,
    fd: Resource<Descriptor>,
    sync: impl FnOnce(
        &mut wasmtime_wasi::filesystem::WasiFilesystemCtxView<'_>,
        Resource<Descriptor>,
    ) -> FsResult<()>,
) -> wasmtime::Result<(Result<(), ErrorCode>,)> {
    let state = store.data_mut();
    if let Err(e) = state.backend.settle_held() {
        tracing::error!("plugin: held object writes could not be made durable: {e}");
        return Ok((Err(ErrorCode::Io),));
    }
    let mut fs = state.filesystem();
    match sync(&mut fs, fd) {
        Ok(()) => Ok((Ok(()),)),
        Err(e) => Ok((Err(fs.convert_error_code(e)?),)),
    }
}
