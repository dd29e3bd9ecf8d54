//! The crash policy: one running instance, replaced when it dies.
//!
//! A call that traps, runs past its deadline or exhausts its memory kills only
//! that instance: its store is dropped and a fresh one started (re-running
//! `init` with the same settings), which takes over the uploads in flight the
//! dead one staged (`RESUME_HANDOVER`), so only the fatal call fails. After a
//! second death without a call served in between it starts cold instead: the
//! staged state may be what kills it. An instance that keeps dying is restarted at
//! once a few times in a row, then with exponential back-off (calls fail fast
//! with "unavailable" meanwhile, never block the thread); and a freshly swapped
//! version that dies [`PROBATION_DEATHS`] times within its first
//! [`PROBATION_CALLS`] calls is replaced by the version it replaced, when that
//! version can still read the database.

use std::time::{Duration, Instant};

use wasmtime::Store;

use super::bindings::version::InterfaceVersion;
use super::bindings::{on_version, Plugin, PluginPre};
use super::engine::CompileOutcome;
use super::error::{CallError, HostError};
use super::launcher::{classify, drop_elsewhere, Instance, Launcher};
use super::state::HostState;
use super::wit::InitReport;

/// The handover that asks a fresh instance to take over the uploads in
/// flight its dead predecessor staged in the state directory (EMBEDDING.md).
pub const RESUME_HANDOVER: &[u8] = &[1];

/// Deaths in a row that are restarted at once; later ones back off.
pub const IMMEDIATE_RESTARTS: u32 = 3;

/// First back-off after [`IMMEDIATE_RESTARTS`]; doubled per further death.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Longest back-off between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Calls a freshly swapped version serves on probation.
pub const PROBATION_CALLS: u32 = 100;

/// Deaths during probation that roll a swap back.
pub const PROBATION_DEATHS: u32 = 3;

/// The running instance (if any), how to start another, and the crash policy's state.
pub(crate) struct Supervisor {
    pub(crate) launcher: Launcher,
    pub(crate) compile_outcome: CompileOutcome,
    /// `None` after a death whose restart failed (or is backing off); a later call tries again.
    pub(crate) instance: Option<Instance>,
    pub(crate) init_report: InitReport,
    pub(crate) restarts: u64,
    /// Deaths since the last call that returned.
    deaths_in_a_row: u32,
    /// No restart before this (back-off).
    not_before: Option<Instant>,
    /// Set by a swap, cleared after [`PROBATION_CALLS`] calls.
    probation: Option<Probation>,
    /// The component the last swap replaced, for a crash rollback.
    previous: Option<Previous>,
    crash_rollbacks: u64,
    last_crash_rollback: Option<String>,
}

struct Probation {
    calls_left: u32,
    deaths: u32,
}

/// The component a swap replaced.
pub(crate) struct Previous {
    pub(crate) pre: PluginPre,
    pub(crate) version: InterfaceVersion,
    pub(crate) compile_outcome: CompileOutcome,
    /// The schema version it ran on: it can only come back to a database at this version.
    pub(crate) schema: u32,
}

impl Supervisor {
    /// Starts the first instance.
    pub(crate) fn start(
        launcher: Launcher,
        compile_outcome: CompileOutcome,
    ) -> Result<Supervisor, HostError> {
        let (instance, init_report) = launcher.launch(None)?;
        Ok(Supervisor {
            launcher,
            compile_outcome,
            instance: Some(instance),
            init_report,
            restarts: 0,
            deaths_in_a_row: 0,
            not_before: None,
            probation: None,
            previous: None,
            crash_rollbacks: 0,
            last_crash_rollback: None,
        })
    }

    /// How many times a freshly swapped version was rolled back for crashing.
    pub(crate) fn crash_rollbacks(&self) -> u64 {
        self.crash_rollbacks
    }

    /// Why the last crash rollback happened (or could not).
    pub(crate) fn last_crash_rollback(&self) -> Option<&str> {
        self.last_crash_rollback.as_deref()
    }

    /// Runs one export under the deadline and memory cap; replaces the instance if it dies.
    pub(crate) fn call<T>(
        &mut self,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        let mut instance = match self.instance.take() {
            Some(instance) => instance,
            None => self.revive()?,
        };
        instance.arm(&self.launcher.sandbox);
        match f(&instance.plugin, &mut instance.store) {
            Ok(value) => {
                self.instance = Some(instance);
                self.served();
                Ok(value)
            }
            Err(error) => {
                let failure = classify(&instance.store, error);
                // A trapped instance cannot be entered again; drop it with its store.
                drop(instance);
                self.died();
                Err(failure)
            }
        }
    }

    /// Replaces the instance after a failed group commit: its database
    /// transaction is gone, but its memory still holds every upload in
    /// flight. Like a hot swap, the next instance takes them over (settling
    /// whatever the lost batch had recorded), so only the batch fails; a cold
    /// start is the fallback. If that fails too, the next call tries again.
    pub(crate) fn restart_after_failed_commit(&mut self) {
        let mut blob = None;
        if let Some(mut old) = self.instance.take() {
            old.arm(&self.launcher.sandbox);
            if let Ok(Ok(state)) = on_version!(&old.plugin, p => p.leasedb_plugin_lifecycle().call_handover(&mut old.store))
            {
                blob = Some(state);
            }
            old.shut_down(&self.launcher.sandbox);
        }
        self.restarts += 1;
        if let Some(blob) = blob {
            match self.launcher.launch(Some(&blob)) {
                Ok((instance, report)) => {
                    self.instance = Some(instance);
                    self.init_report = report;
                    return;
                }
                Err(e) => {
                    tracing::error!("plugin: the uploads in flight could not be carried over: {e}")
                }
            }
        }
        match self.relaunch() {
            Ok(instance) => self.instance = Some(instance),
            Err(e) => tracing::error!("plugin: restarting after a failed group commit: {e}"),
        }
    }

    /// A fresh instance in place of a dead one; its init report becomes the latest.
    fn relaunch(&mut self) -> Result<Instance, HostError> {
        let resumed = match self.deaths_in_a_row {
            0 | 1 => self.launcher.launch(Some(RESUME_HANDOVER)).map_err(|e| {
                tracing::warn!(
                    "plugin: the uploads in flight could not be taken over ({e}); starting cold"
                );
            }),
            _ => Err(()),
        };
        let (instance, report) = match resumed {
            Ok(started) => started,
            Err(()) => self.launcher.launch(None)?,
        };
        self.init_report = report;
        Ok(instance)
    }

    /// A call returned (with an answer or a typed error): the instance works.
    fn served(&mut self) {
        self.deaths_in_a_row = 0;
        self.not_before = None;
        if let Some(p) = &mut self.probation {
            p.calls_left = p.calls_left.saturating_sub(1);
            if p.calls_left == 0 {
                self.probation = None;
            }
        }
    }

    /// The running instance died (and is gone): restart now, or after a
    /// back-off, or roll a fresh swap back, so the next call finds a ready
    /// instance; if that fails, a later call tries again.
    pub(crate) fn died(&mut self) {
        self.restarts += 1;
        self.deaths_in_a_row += 1;
        if let Some(p) = &mut self.probation {
            p.deaths += 1;
            if p.deaths >= PROBATION_DEATHS {
                self.probation = None;
                if self.roll_back_crashing() {
                    return;
                }
            }
        }
        if self.deaths_in_a_row <= IMMEDIATE_RESTARTS {
            match self.relaunch() {
                Ok(instance) => self.instance = Some(instance),
                Err(_) => self.not_before = Some(Instant::now() + FIRST_BACKOFF),
            }
        } else {
            self.not_before = Some(Instant::now() + self.backoff());
        }
    }

    /// A swap put a new version in: it serves on probation, and `previous`
    /// comes back if it keeps dying.
    pub(crate) fn swapped(&mut self, previous: Previous) {
        if let Some(older) = self.previous.replace(previous) {
            // Swaps are one at a time: no call uses the version two swaps back.
            drop_elsewhere(older);
        }
        self.probation = Some(Probation {
            calls_left: PROBATION_CALLS,
            deaths: 0,
        });
        self.deaths_in_a_row = 0;
        self.not_before = None;
    }

    fn backoff(&self) -> Duration {
        let extra = self
            .deaths_in_a_row
            .saturating_sub(IMMEDIATE_RESTARTS + 1)
            .min(16);
        FIRST_BACKOFF.saturating_mul(1 << extra).min(MAX_BACKOFF)
    }

    /// Brings back an instance for a call, unless backing off after repeated deaths.
    fn revive(&mut self) -> Result<Instance, CallError> {
        if let Some(at) = self.not_before {
            let now = Instant::now();
            if now < at {
                return Err(CallError::Unavailable(format!(
                    "the plugin crashed {} times in a row; restarting in {} ms",
                    self.deaths_in_a_row,
                    (at - now).as_millis()
                )));
            }
        }
        match self.relaunch() {
            Ok(instance) => Ok(instance),
            Err(e) => {
                self.deaths_in_a_row += 1;
                self.not_before = Some(Instant::now() + self.backoff());
                Err(CallError::Unavailable(e.to_string()))
            }
        }
    }

    /// Replaces a freshly swapped version that keeps dying by the one it replaced.
    fn roll_back_crashing(&mut self) -> bool {
        let Some(previous) = self.previous.take() else {
            return false;
        };
        let on_disk = self.init_report.schema_version;
        if previous.schema < on_disk {
            self.last_crash_rollback = Some(format!(
                "the swapped-in version keeps crashing, but the previous one cannot read \
                 schema version {on_disk} (it wrote {}); restarting with back-off instead",
                previous.schema
            ));
            return false;
        }
        let crashing_pre = std::mem::replace(&mut self.launcher.pre, previous.pre);
        let crashing_version = std::mem::replace(&mut self.launcher.version, previous.version);
        match self.launcher.launch(None) {
            Ok((instance, report)) => {
                self.instance = Some(instance);
                self.init_report = report;
                self.compile_outcome = previous.compile_outcome;
                self.deaths_in_a_row = 0;
                self.not_before = None;
                self.crash_rollbacks += 1;
                self.last_crash_rollback = Some(format!(
                    "the swapped-in version (interface {crashing_version}) died {PROBATION_DEATHS} \
                     times in its first {PROBATION_CALLS} calls; rolled back to interface {}",
                    self.launcher.version
                ));
                true
            }
            Err(e) => {
                self.launcher.pre = crashing_pre;
                self.launcher.version = crashing_version;
                self.last_crash_rollback =
                    Some(format!("rolling back a crashing swap failed: {e}"));
                false
            }
        }
    }
}

impl Drop for Supervisor {
    /// Lets the plugin close its database cleanly.
    fn drop(&mut self) {
        if let Some(instance) = self.instance.take() {
            instance.shut_down(&self.launcher.sandbox);
        }
    }
}
