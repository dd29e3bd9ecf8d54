//! What a plugin instance's store holds.

use std::collections::HashSet;
use std::sync::Arc;

use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use crate::backend::ObjectStore;
use crate::plugin::sandbox::MemoryCap;

/// Store data of one plugin instance; a fresh one per (re)start.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: MemoryCap,
    pub(crate) backend: Arc<dyn ObjectStore>,
    /// The `wasi:filesystem` descriptors (by resource rep) the plugin opened
    /// on its database's files (`imports::filesystem`).
    pub(crate) database_files: HashSet<u32>,
}

impl HostState {
    /// Store data for an instance sandboxed by `wasi` and `limits`, storing into `backend`.
    pub fn new(wasi: WasiCtx, limits: MemoryCap, backend: Arc<dyn ObjectStore>) -> Self {
        HostState {
            wasi,
            table: ResourceTable::new(),
            limits,
            backend,
            database_files: HashSet::new(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
