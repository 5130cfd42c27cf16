//! `PrivacyThread`: the arbiter (`mikabot-privacy`'s thread) the privacy
//! supervisors run on, each started under an actix `Supervisor`, apart
//! from the HTTP workers and the store threads.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use actix::{Addr, Arbiter, Supervisor};
use mikabot_actors::live::LiveSessions;
use prometheus_client::registry::Registry;

use crate::config::Settings;
use crate::privacy::erasure_worker::ErasureWorker;
use crate::privacy::retention::RetentionSweeper;
use crate::privacy::{Clock, Privacy, PrivacyMetrics, policy};
use crate::storage::Storage;

/// What tests and routes reach the supervisors by.
#[derive(Clone)]
pub struct PrivacyHandles {
    pub privacy: Privacy,
    pub retention: Addr<RetentionSweeper>,
    /// Tests: the next this many erasure sweeps panic.
    pub erasure_panics: Arc<AtomicUsize>,
    /// Tests: the next this many retention sweeps panic.
    pub retention_panics: Arc<AtomicUsize>,
}

pub struct PrivacyThread {
    arbiter: Arbiter,
    pub handles: PrivacyHandles,
}

impl PrivacyThread {
    pub fn start(
        settings: &Settings,
        storage: &Storage,
        live: &LiveSessions,
        clock: Clock,
        registry: &mut Registry,
    ) -> Self {
        let arbiter = Arbiter::new();
        let metrics = PrivacyMetrics::default();
        metrics.register(registry);
        let worker = ErasureWorker::new(
            storage.clone(),
            metrics.clone(),
            clock.clone(),
            Duration::from_secs(settings.privacy.erasure_interval_secs),
        );
        let erasure_panics = worker.panics();
        let worker = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| worker);
        let privacy = Privacy::new(storage.clone(), live.clone(), worker, clock);
        let sweeper = RetentionSweeper::new(
            privacy.clone(),
            policy(settings.privacy.technical_data_months).to_vec(),
            metrics,
            Duration::from_secs(settings.privacy.retention_sweep_minutes * 60),
        );
        let retention_panics = sweeper.panics();
        let retention = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| sweeper);
        Self {
            arbiter,
            handles: PrivacyHandles {
                privacy,
                retention,
                erasure_panics,
                retention_panics,
            },
        }
    }

    /// Stops the supervisors and waits for their thread (a sweep on a
    /// blocking thread finishes on its own).
    pub fn stop(self) {
        self.arbiter.stop();
        if self.arbiter.join().is_err() {
            tracing::error!("the privacy thread panicked");
        }
    }
}
