//! Privacy enforced by the node itself: erasure requests and the
//! retention policy, carried out by two supervisor actors on their own
//! arbiter (`mikabot-privacy`), against storage.
//!
//! - [`Privacy`]: what routes call. An erasure is accepted (journaled,
//!   hidden at once: see `crate::storage::erasure`), reached in memory
//!   (live sessions closed, replies stopped), and handed to the worker.
//! - [`erasure_worker::ErasureWorker`]: carries accepted requests out
//!   (records removed, keys rotated) and marks them done, leaving a
//!   receipt; resumes whatever a crash left pending.
//! - [`retention::RetentionSweeper`]: on an interval, applies [`POLICY`]:
//!   files erasures for what is past its horizon, drops technical data.
//!
//! A panic inside a sweep is caught (the sweep runs on a blocking thread,
//! whose panic is an error to the actor), logged, and the work is done on
//! the next tick.

pub mod erasure_worker;
pub mod export;
pub mod retention;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::Addr;
use mikabot_actors::live::LiveSessions;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::storage::erasure::{Accepted, ErasureCounts, ErasureScope};
use crate::storage::{Storage, StorageError};

/// What a retention rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// A conversation: its messages, record and technical data.
    Conversations,
    /// A conversation's technical and usage data: anonymised address,
    /// device class, page and referrer.
    TechnicalData,
    /// An account deleted by its owner, with the stores only it owns.
    DeletedAccounts,
}

/// How long a category is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Horizon {
    /// The store's own `retention_days` (none: kept while the store lives).
    StoreRetentionDays,
    /// Calendar months since the conversation started
    /// (`privacy.technical_data_months`).
    Months(u32),
    /// Days since the account's deletion.
    Days(u32),
}

/// What happens to what is past its horizon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// An erasure request is filed (journaled, receipt and all).
    Erase,
    /// The technical data is dropped; the conversation's text stays under
    /// its own rule.
    DropTechnicalData,
}

/// One line of the retention policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub category: Category,
    pub horizon: Horizon,
    pub action: Action,
}

/// The retention policy, as `docs/privacy.md` states it. A new category
/// (billing records, say) is a new line here and its finder in storage.
pub fn policy(technical_data_months: u32) -> [Rule; 3] {
    [
        Rule {
            category: Category::Conversations,
            horizon: Horizon::StoreRetentionDays,
            action: Action::Erase,
        },
        Rule {
            category: Category::TechnicalData,
            horizon: Horizon::Months(technical_data_months),
            action: Action::DropTechnicalData,
        },
        Rule {
            category: Category::DeletedAccounts,
            horizon: Horizon::Days((crate::accounts::DELETION_GRACE_SECS / 86_400) as u32),
            action: Action::Erase,
        },
    ]
}

/// The time, in milliseconds since the Unix epoch. Tests set it.
#[derive(Clone)]
pub enum Clock {
    System,
    /// A set time, moved by the test.
    Fixed(Arc<AtomicU64>),
}

impl Clock {
    pub fn now_ms(&self) -> u64 {
        match self {
            Self::System => mikabot_actors::log::now_ms(),
            Self::Fixed(at) => at.load(Ordering::SeqCst),
        }
    }
}

/// `ms` moved back by `months` calendar months (the day of the month kept,
/// or the month's last day where it has fewer).
pub fn months_before(ms: u64, months: u32) -> u64 {
    let day_ms = 86_400_000;
    let days = (ms / day_ms) as i64;
    let within_day = ms % day_ms;
    let (year, month, day) = civil_from_days(days);
    let total = year * 12 + i64::from(month) - 1 - i64::from(months);
    let (year, month) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let day = day.min(days_in_month(year, month));
    let days = days_from_civil(year, month, day);
    u64::try_from(days).map_or(0, |d| d * day_ms + within_day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The privacy metrics, registered by the edge.
#[derive(Clone, Default)]
pub struct PrivacyMetrics {
    pub erasures_pending: Gauge,
    pub erasures_completed: Counter,
    /// Seconds since the oldest pending request was accepted (0: none).
    pub oldest_pending_seconds: Gauge,
    pub sweeps_failed: Counter,
}

impl PrivacyMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "erasures_pending",
            "Erasure requests accepted and not carried out yet",
            self.erasures_pending.clone(),
        );
        registry.register(
            "erasures_completed",
            "Erasure requests carried out since start",
            self.erasures_completed.clone(),
        );
        registry.register(
            "erasure_oldest_pending_seconds",
            "Age of the oldest pending erasure request, in seconds (0 when none)",
            self.oldest_pending_seconds.clone(),
        );
        registry.register(
            "privacy_sweeps_failed",
            "Retention or erasure sweeps that failed or panicked (retried on the next tick)",
            self.sweeps_failed.clone(),
        );
    }
}

/// What routes call to erase. Cheap to clone.
#[derive(Clone)]
pub struct Privacy {
    storage: Storage,
    live: LiveSessions,
    worker: Addr<erasure_worker::ErasureWorker>,
    clock: Clock,
}

impl Privacy {
    pub fn new(
        storage: Storage,
        live: LiveSessions,
        worker: Addr<erasure_worker::ErasureWorker>,
        clock: Clock,
    ) -> Self {
        Self {
            storage,
            live,
            worker,
            clock,
        }
    }

    /// Accepts an erasure: durable and hidden when this returns, reached
    /// in memory, and handed to the worker.
    pub async fn erase(&self, scope: ErasureScope) -> Result<Accepted, StorageError> {
        let accepted = self
            .storage
            .request_erasure(scope, self.clock.now_ms())
            .await?;
        for session in &accepted.sessions {
            self.live.erase(*session);
        }
        self.worker.do_send(erasure_worker::Wake);
        Ok(accepted)
    }

    /// What `scope` would remove now: the dry run.
    pub async fn preview(&self, scope: ErasureScope) -> Result<ErasureCounts, StorageError> {
        self.storage
            .blocking(move |storage| storage.erasure_preview(&scope))
            .await
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(year: i64, month: u32, day: u32) -> u64 {
        days_from_civil(year, month, day) as u64 * 86_400_000
    }

    #[test]
    fn calendar_months_go_back_by_the_calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(months_before(ms(2026, 12, 2), 26), ms(2024, 10, 2));
        assert_eq!(months_before(ms(2026, 3, 31), 1), ms(2026, 2, 28));
        assert_eq!(months_before(ms(2024, 3, 31), 1), ms(2024, 2, 29));
        assert_eq!(months_before(ms(2026, 1, 15), 13), ms(2024, 12, 15));
        assert_eq!(
            months_before(ms(2026, 1, 15) + 5_000, 0),
            ms(2026, 1, 15) + 5_000
        );
    }
}
