//! The `[housekeeping]` section (spec §10): how long finished messages are kept, when
//! unfetched ones expire, and how the background job paces itself.

use std::time::Duration;

use super::Checker;
use super::file::HousekeepingSection;

/// One day, the unit the configuration counts retention and expiry in.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Retention and expiry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HousekeepingConfig {
    /// False: nothing is ever removed or expired (the background job does not run).
    pub enabled: bool,
    /// Acknowledged, pushed and expired messages are removed this long after they got
    /// there (default 14 days).
    pub retention: Duration,
    /// Messages never fetched expire this long after delivery, with an `error` to the
    /// sender (default 30 days).
    pub expiry: Duration,
    /// Also remove messages fetched but never acknowledged, `retention` after the fetch:
    /// for business systems that do not acknowledge (default false).
    pub remove_fetched_without_ack: bool,
    /// Pause between rounds (default 10 minutes).
    pub interval: Duration,
    /// Messages one batch handles before the job yields to other work (default 500).
    pub batch_size: usize,
}

impl Checker {
    pub(super) fn housekeeping(&mut self, section: &HousekeepingSection) -> HousekeepingConfig {
        let mut positive = |key: &str, value: u64| -> u64 {
            if value == 0 {
                self.problem(format!("housekeeping.{key} must be greater than 0"));
            }
            value
        };
        let retention_days = positive("retention_days", section.retention_days);
        let expiry_days = positive("expiry_days", section.expiry_days);
        let interval_secs = positive("interval_secs", section.interval_secs);
        let batch_size = positive("batch_size", section.batch_size);
        let days = |n: u64| DAY.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
        HousekeepingConfig {
            enabled: section.enabled,
            retention: days(retention_days),
            expiry: days(expiry_days),
            remove_fetched_without_ack: section.remove_fetched_without_ack,
            interval: Duration::from_secs(interval_secs),
            batch_size: usize::try_from(batch_size).unwrap_or(usize::MAX),
        }
    }
}
