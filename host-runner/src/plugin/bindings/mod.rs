//! Every `bindgen!`: one module per frozen WIT version (`wit/since_vX.Y/`),
//! the newest aliased as [`latest`], and the one enum that dispatches over them.
//!
//! Synchronous bindings: calls run on the caller's thread, bounded by the
//! epoch deadline. Adding a version: freeze its WIT directory, add a
//! `since_vX_Y.rs` whose exports reuse the latest types through `with:`, a
//! variant in [`PluginPre`] and [`Plugin`], an arm in [`on_version!`], and an
//! entry in [`SUPPORTED`].

pub(crate) mod convert;
pub mod since_v0_1;
pub mod since_v0_2;
pub mod version;
pub(crate) mod vocabulary;

pub use since_v0_2 as latest;

use wasmtime::component::{Component, Linker};
use wasmtime::{AsContextMut, Engine};

use super::imports;
use super::imports::backend::BackendImport;
use super::state::HostState;
use version::{InterfaceVersion, VersionError};

/// Every interface version this host has bindings for, oldest first.
pub const SUPPORTED: [InterfaceVersion; 2] = [since_v0_1::VERSION, since_v0_2::VERSION];

/// The oldest interface version this host runs.
pub const MIN_VERSION: InterfaceVersion = SUPPORTED[0];

/// The newest interface version this host has bindings for.
pub const MAX_VERSION: InterfaceVersion = SUPPORTED[SUPPORTED.len() - 1];

/// A component linked against the bindings of its interface version, ready to instantiate.
#[derive(Clone)]
pub enum PluginPre {
    /// `leasedb:plugin@0.1.x`.
    V0_1(since_v0_1::PluginPre<HostState>),
    /// `leasedb:plugin@0.2.x`.
    V0_2(since_v0_2::PluginPre<HostState>),
}

/// A live instance's exports.
pub enum Plugin {
    /// `leasedb:plugin@0.1.x`.
    V0_1(since_v0_1::Plugin),
    /// `leasedb:plugin@0.2.x`.
    V0_2(since_v0_2::Plugin),
}

/// Runs `$body` with `$p` bound to the versioned bindings of `$plugin` (a
/// `&Plugin`) and returns the answer in the latest types: older versions'
/// answers are lifted with [`since_v0_1::Convert`]. Arguments of
/// version-specific types are named after `;` and lowered the same way
/// before `$body` sees them (a slice becomes a `Vec`: pass `&arg[..]`).
/// This is the only place versions are matched.
macro_rules! on_version {
    ($plugin:expr, $p:ident => $body:expr $(; $($arg:ident),*)?) => {
        match $plugin {
            $crate::plugin::bindings::Plugin::V0_1($p) => {
                #[allow(unused_imports)]
                use $crate::plugin::bindings::since_v0_1::Convert as _;
                $($(let $arg = $arg.convert();)*)?
                ($body).map($crate::plugin::bindings::since_v0_1::Convert::convert)
            }
            $crate::plugin::bindings::Plugin::V0_2($p) => $body,
        }
    };
}
pub(crate) use on_version;

impl PluginPre {
    /// Reads the component's interface version, refuses it unless a bindings
    /// module runs it, and links it against the host's imports.
    pub fn link(
        engine: &Engine,
        component: &Component,
    ) -> Result<(PluginPre, InterfaceVersion), LinkError> {
        let found = version::of_component(engine, component).map_err(LinkError::Version)?;
        let bindings = version::select(found, &SUPPORTED).map_err(LinkError::Version)?;
        let mut linker = Linker::<HostState>::new(engine);
        let link = |e: wasmtime::Error| LinkError::Link(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link)?;
        imports::filesystem::add_to_linker(&mut linker).map_err(link)?;
        let pre = if bindings == since_v0_1::VERSION {
            since_v0_1::add_to_linker(&mut linker).map_err(link)?;
            let pre = linker.instantiate_pre(component).map_err(link)?;
            PluginPre::V0_1(since_v0_1::PluginPre::new(pre).map_err(link)?)
        } else {
            // The backend import, the only one besides WASI.
            since_v0_2::Plugin::add_to_linker::<_, BackendImport>(&mut linker, BackendImport::view)
                .map_err(link)?;
            let pre = linker.instantiate_pre(component).map_err(link)?;
            PluginPre::V0_2(since_v0_2::PluginPre::new(pre).map_err(link)?)
        };
        Ok((pre, found))
    }

    /// The engine the component was compiled for.
    pub fn engine(&self) -> &Engine {
        match self {
            PluginPre::V0_1(pre) => pre.engine(),
            PluginPre::V0_2(pre) => pre.engine(),
        }
    }

    /// A new instance in `store`.
    pub fn instantiate(
        &self,
        store: impl AsContextMut<Data = HostState>,
    ) -> wasmtime::Result<Plugin> {
        Ok(match self {
            PluginPre::V0_1(pre) => Plugin::V0_1(pre.instantiate(store)?),
            PluginPre::V0_2(pre) => Plugin::V0_2(pre.instantiate(store)?),
        })
    }
}

impl Plugin {
    /// The schema version the build writes; `None` before interface 0.2, which cannot say.
    pub fn schema_version(
        &self,
        store: impl AsContextMut<Data = HostState>,
    ) -> wasmtime::Result<Option<u32>> {
        match self {
            Plugin::V0_1(_) => Ok(None),
            Plugin::V0_2(p) => p
                .leasedb_plugin_lifecycle()
                .call_schema_version(store)
                .map(Some),
        }
    }

    /// Opens a group commit; `Ok(false)`: interface 0.1 has none, every
    /// operation keeps committing on its own.
    pub fn begin_batch(
        &self,
        store: impl AsContextMut<Data = HostState>,
    ) -> wasmtime::Result<Result<bool, latest::leasedb::plugin::types::Error>> {
        match self {
            Plugin::V0_1(_) => Ok(Ok(false)),
            Plugin::V0_2(p) => Ok(p
                .leasedb_plugin_lifecycle()
                .call_begin_batch(store)?
                .map(|()| true)),
        }
    }

    /// Commits the open group commit (nothing before interface 0.2).
    pub fn commit_batch(
        &self,
        store: impl AsContextMut<Data = HostState>,
    ) -> wasmtime::Result<Result<(), latest::leasedb::plugin::types::Error>> {
        match self {
            Plugin::V0_1(_) => Ok(Ok(())),
            Plugin::V0_2(p) => p.leasedb_plugin_lifecycle().call_commit_batch(store),
        }
    }
}

/// Why a compiled component could not be linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// Not a plugin, or an interface version this host does not run.
    Version(VersionError),
    /// Its imports or exports do not match the bindings of its version.
    Link(String),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Version(e) => e.fmt(f),
            LinkError::Link(why) => write!(f, "cannot link the plugin: {why}"),
        }
    }
}

impl std::error::Error for LinkError {}
