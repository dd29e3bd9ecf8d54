//! The wall clock the plugin sees. Lease times come from it (SPEC §5), so tests
//! move it forward instead of waiting 31 days.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime_wasi::HostWallClock;

/// System time plus an adjustable offset, or a fixed instant; clones share one setting,
/// so a test keeps a clone and moves the time of every instance the host starts.
#[derive(Clone, Default)]
pub struct AdjustableClock {
    setting: Arc<Mutex<Setting>>,
}

#[derive(Default)]
struct Setting {
    /// `None`: follow the system clock.
    fixed: Option<Duration>,
    /// Added to the base time (may be negative).
    offset_secs: i64,
}

impl AdjustableClock {
    /// Follows the system clock (the default).
    pub fn system() -> Self {
        Self::default()
    }

    /// Stands still at `secs` seconds since the Unix epoch until moved.
    pub fn fixed_at(secs: u64) -> Self {
        let clock = Self::default();
        clock.set(secs);
        clock
    }

    /// Stops the clock at `secs` seconds since the Unix epoch.
    pub fn set(&self, secs: u64) {
        let mut setting = self.setting();
        setting.fixed = Some(Duration::from_secs(secs));
        setting.offset_secs = 0;
    }

    /// Moves the clock forward (or back, if negative) by `secs` seconds.
    pub fn advance(&self, secs: i64) {
        let mut setting = self.setting();
        setting.offset_secs = setting.offset_secs.saturating_add(secs);
    }

    /// The time the plugin sees now, since the Unix epoch.
    pub fn now(&self) -> Duration {
        let setting = self.setting();
        let base = setting.fixed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
        });
        let shift = Duration::from_secs(setting.offset_secs.unsigned_abs());
        if setting.offset_secs >= 0 {
            base.saturating_add(shift)
        } else {
            base.saturating_sub(shift)
        }
    }

    fn setting(&self) -> std::sync::MutexGuard<'_, Setting> {
        self.setting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl HostWallClock for AdjustableClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        AdjustableClock::now(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_setting() {
        let clock = AdjustableClock::fixed_at(1_000);
        let seen_by_plugin = clock.clone();
        clock.advance(31 * 86_400);
        assert_eq!(
            seen_by_plugin.now(),
            Duration::from_secs(1_000 + 31 * 86_400)
        );
        clock.advance(-1_000 - 31 * 86_400 - 5);
        assert_eq!(seen_by_plugin.now(), Duration::ZERO);
    }

    #[test]
    fn system_clock_is_near_now() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let seen = AdjustableClock::system().now();
        assert!(seen.abs_diff(now) < Duration::from_secs(5));
    }
}
