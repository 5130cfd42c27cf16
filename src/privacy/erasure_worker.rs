//! `ErasureWorker`: carries accepted erasure requests out, oldest first,
//! and marks each done (its receipt). It wakes when a request is accepted
//! and on every tick, so whatever a crash left pending (at any step) is
//! resumed and completed after a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;

use super::{Clock, PrivacyMetrics};
use crate::storage::{Storage, StorageError};

/// Requests carried out in one sweep at most (the rest in the next,
/// which follows at once).
const MAX_BATCH: usize = 1000;

/// A request was accepted: carry it out now.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct Wake;

/// What one sweep did.
#[derive(Debug, Default)]
struct Swept {
    completed: u64,
    pending: i64,
    oldest_pending_ms: Option<u64>,
}

pub struct ErasureWorker {
    storage: Storage,
    metrics: PrivacyMetrics,
    clock: Clock,
    interval: Duration,
    /// A sweep runs now; a wake meanwhile asks for another after it.
    running: bool,
    again: bool,
    /// The last sweep failed: the next waits for the tick, not a loop.
    failed_last: bool,
    /// Tests: the next this many sweeps panic midway.
    pub(crate) injected_panics: Arc<AtomicUsize>,
}

impl ErasureWorker {
    pub fn new(
        storage: Storage,
        metrics: PrivacyMetrics,
        clock: Clock,
        interval: Duration,
    ) -> Self {
        Self {
            storage,
            metrics,
            clock,
            interval,
            running: false,
            again: false,
            failed_last: false,
            injected_panics: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Makes the next `n` sweeps panic (for the supervisor's test).
    pub fn panics(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.injected_panics)
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            self.again = true;
            return;
        }
        self.running = true;
        let storage = self.storage.clone();
        let clock = self.clock.clone();
        let panics = Arc::clone(&self.injected_panics);
        let work =
            tokio::task::spawn_blocking(move || carry_out_pending(&storage, &clock, &panics));
        ctx.spawn(work.into_actor(self).map(|outcome, worker, ctx| {
            worker.running = false;
            match outcome {
                Ok(Ok(swept)) => {
                    worker.failed_last = false;
                    worker.metrics.erasures_completed.inc_by(swept.completed);
                    worker.metrics.erasures_pending.set(swept.pending);
                    let age = swept.oldest_pending_ms.map_or(0, |at| {
                        worker.clock.now_ms().saturating_sub(at) / 1000
                    });
                    worker.metrics.oldest_pending_seconds.set(age as i64);
                    if swept.completed > 0 {
                        tracing::info!(requests = swept.completed, "erasures carried out");
                    }
                }
                Ok(Err(error)) => {
                    worker.failed_last = true;
                    worker.metrics.sweeps_failed.inc();
                    tracing::error!(%error, "an erasure sweep failed; it resumes on the next tick");
                }
                Err(panicked) => {
                    worker.failed_last = true;
                    worker.metrics.sweeps_failed.inc();
                    tracing::error!(error = %panicked, "an erasure sweep panicked; it resumes on the next tick");
                }
            }
            let more = worker.metrics.erasures_pending.get() > 0;
            if std::mem::take(&mut worker.again) || (more && !worker.failed_last) {
                worker.sweep(ctx);
            }
        }));
    }
}

fn carry_out_pending(
    storage: &Storage,
    clock: &Clock,
    panics: &AtomicUsize,
) -> Result<Swept, StorageError> {
    let mut swept = Swept::default();
    // Everything pending goes as one batch: each store's records removed
    // and its key rotated once, however many requests named it. Bounded,
    // so a flood of requests cannot hold one sweep for long.
    let batch: Vec<_> = storage
        .pending_erasures()?
        .into_iter()
        .take(MAX_BATCH)
        .map(|r| r.id)
        .collect();
    if !batch.is_empty() {
        let injected = panics
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if injected {
            panic!("an injected fault in the erasure sweep");
        }
        for receipt in storage.carry_out_all(&batch, clock.now_ms())? {
            tracing::info!(
                request = %receipt.id,
                kind = receipt.kind,
                conversations = receipt.counts.conversations,
                messages = receipt.counts.messages,
                "erasure done"
            );
            swept.completed += 1;
        }
    }
    let pending = storage.pending_erasures()?;
    swept.pending = pending.len() as i64;
    swept.oldest_pending_ms = pending.first().map(|r| r.requested_at_ms);
    Ok(swept)
}

impl Actor for ErasureWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Whatever a crash left pending is resumed at once.
        self.sweep(ctx);
        ctx.run_interval(self.interval, |worker, ctx| worker.sweep(ctx));
    }
}

impl Supervised for ErasureWorker {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("the erasure worker restarts");
        self.running = false;
    }
}

impl Handler<Wake> for ErasureWorker {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.sweep(ctx);
    }
}
