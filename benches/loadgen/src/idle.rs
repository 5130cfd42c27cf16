//! `idle`: opens many widget sessions, holds them while heartbeats run, and
//! reports the node's memory per session and the time to open them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mikabot_test_support::model::Shape;
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore, watch};

use crate::report::{Counts, add, counts_text, kib, secs, table};
use crate::{Common, MANY_SESSIONS, RunInfo, open_session, rig, source};

#[derive(Clone, Debug)]
pub struct IdleOptions {
    pub sessions: usize,
    /// How long the open sessions are held (heartbeats keep running).
    pub hold: Duration,
    /// Sessions being opened at once.
    pub concurrency: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct IdleReport {
    pub run: RunInfo,
    pub sessions_requested: usize,
    pub sessions_open: usize,
    pub failures: Counts,
    pub open_secs: f64,
    pub hold_secs: f64,
    /// Sessions the node closed while they were held.
    pub dropped_while_held: usize,
    /// Node RSS readings (`None` when the node's process is unknown: a
    /// running node without `--node-pid`).
    pub rss_before_kib: Option<f64>,
    pub rss_open_kib: Option<f64>,
    pub rss_held_kib: Option<f64>,
    pub rss_after_close_kib: Option<f64>,
    /// (RSS at the end of the hold − RSS before) / sessions open.
    pub kib_per_session: Option<f64>,
}

pub async fn idle(common: &Common, options: &IdleOptions) -> anyhow::Result<IdleReport> {
    let shape = Shape {
        ttft: Duration::ZERO,
        tokens_per_sec: 1.0,
        reply_tokens: 1,
    };
    let mut rig = rig("idle", common, shape, MANY_SESSIONS).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rig.node.rss();

    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Counts::new()));
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..options.sessions {
        let (target, source) = (rig.target.clone(), source(common, i));
        let (opened, failed, dropped, failures) = (
            opened.clone(),
            failed.clone(),
            dropped.clone(),
            failures.clone(),
        );
        let (permits, mut stop) = (permits.clone(), stop_rx.clone());
        tasks.spawn(async move {
            let shopper = {
                let _permit = permits.acquire().await;
                match open_session(&target, source).await {
                    Ok(shopper) => shopper,
                    Err(failure) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        add(&mut *failures.lock().await, failure.label());
                        return;
                    }
                }
            };
            opened.fetch_add(1, Ordering::Relaxed);
            let mut shopper = shopper;
            tokio::select! {
                () = async { let _ = stop.wait_for(|stop| *stop).await; } => {}
                end = async { loop { if let Err(f) = shopper.try_next_text().await { return f; } } } => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    add(&mut *failures.lock().await, format!("dropped_{}", end.label()));
                }
            }
        });
    }
    let open_deadline = started + Duration::from_secs(600);
    while opened.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < options.sessions
        && Instant::now() < open_deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_open = rig.node.rss();
    tokio::time::sleep(options.hold).await;
    let rss_held = rig.node.rss();
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_closed = rig.node.rss();
    rig.node.stop().await?;
    rig.model.stop().await;

    let open = opened.load(Ordering::Relaxed);
    let failures = failures.lock().await.clone();
    Ok(IdleReport {
        run: rig.info,
        sessions_requested: options.sessions,
        sessions_open: open,
        failures,
        open_secs: secs(open_time),
        hold_secs: secs(options.hold),
        dropped_while_held: dropped.load(Ordering::Relaxed),
        rss_before_kib: rss_before.map(kib),
        rss_open_kib: rss_open.map(kib),
        rss_held_kib: rss_held.map(kib),
        rss_after_close_kib: rss_closed.map(kib),
        kib_per_session: rss_held
            .zip(rss_before)
            .filter(|_| open > 0)
            .map(|(held, before)| kib(held.saturating_sub(before) / open as u64)),
    })
}

impl IdleReport {
    pub fn markdown(&self) -> String {
        let mib = |kib: Option<f64>| {
            kib.map_or("not measured".into(), |k| format!("{:.1} MiB", k / 1024.0))
        };
        table(
            &format!("idle: {} sessions", self.sessions_requested),
            &[
                ("sessions open", self.sessions_open.to_string()),
                ("failures", counts_text(&self.failures)),
                ("time to open", format!("{:.2} s", self.open_secs)),
                ("held for", format!("{:.0} s", self.hold_secs)),
                ("dropped while held", self.dropped_while_held.to_string()),
                ("node RSS before", mib(self.rss_before_kib)),
                ("node RSS open", mib(self.rss_open_kib)),
                ("node RSS after the hold", mib(self.rss_held_kib)),
                ("node RSS after closing", mib(self.rss_after_close_kib)),
                (
                    "memory per idle session",
                    self.kib_per_session
                        .map_or("not measured".into(), |k| format!("{k:.1} KiB")),
                ),
            ],
        )
    }
}
