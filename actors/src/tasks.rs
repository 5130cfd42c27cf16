//! The node's background tasks. Everything that runs on its own (reply
//! tasks, reply feeds' grace timers, housekeeping such as rate-limiter
//! sweeps) is spawned through [`Tasks`], so a stopping node waits for all
//! of it, within bounds, and exits with nothing left running. Its owner
//! ([`Application`](../../mikabot/startup/struct.Application.html)) creates
//! it and stops it; a task never polls to learn that the node stops.
//!
//! Stopping has two signals. `stopping`: housekeeping and timers end at
//! once, replies go on. `cut`: replies still running when the shutdown
//! timeout passes stop where they are and record what they have, marked
//! incomplete.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest wait, after the cut, for cut replies to record themselves.
pub const CUT_GRACE: Duration = Duration::from_secs(5);

/// The node's background tasks. Cheap to clone.
#[derive(Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    stopping: CancellationToken,
    cut: CancellationToken,
}

/// How stopping went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Tasks that were still running at the shutdown timeout and were cut.
    pub cut: usize,
    /// Tasks still running after the cut's grace (abandoned).
    pub abandoned: usize,
}

impl Tasks {
    /// Runs `task` on the current runtime as one of the node's tasks.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Resolves once the node starts stopping.
    pub async fn stopping(&self) {
        self.stopping.cancelled().await;
    }

    /// Resolves once running work must stop where it is.
    pub async fn cut(&self) {
        self.cut.cancelled().await;
    }

    /// Signals `stopping` without waiting (what [`stop`](Self::stop) does
    /// first).
    pub fn begin_stopping(&self) {
        self.stopping.cancel();
    }

    /// Whether the node is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Tasks running now.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Stops: signals `stopping`, lets tasks finish for up to `timeout`,
    /// then signals `cut` and waits up to [`CUT_GRACE`] for them to record
    /// what they have.
    pub async fn stop(&self, timeout: Duration) -> Stopped {
        self.stopping.cancel();
        self.tracker.close();
        if tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_ok()
        {
            return Stopped {
                cut: 0,
                abandoned: 0,
            };
        }
        let cut = self.tracker.len();
        self.cut.cancel();
        let _ = tokio::time::timeout(CUT_GRACE, self.tracker.wait()).await;
        Stopped {
            cut,
            abandoned: self.tracker.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stopping_waits_for_tasks_then_cuts_the_slow_ones() {
        let tasks = Tasks::default();
        let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
        for length in [1_u64, 100] {
            let (tasks2, done_tx) = (tasks.clone(), done_tx.clone());
            tasks.spawn(async move {
                let outcome = tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(length)) => "finished",
                    () = tasks2.cut() => "cut",
                };
                let _ = done_tx.send((length, outcome));
            });
        }
        let housekeeping = tasks.clone();
        tasks.spawn(async move { housekeeping.stopping().await });
        let stopped = tasks.stop(Duration::from_secs(10)).await;
        assert_eq!(
            stopped,
            Stopped {
                cut: 1,
                abandoned: 0
            }
        );
        let mut outcomes = vec![
            done.recv().await.expect("an outcome"),
            done.recv().await.expect("an outcome"),
        ];
        outcomes.sort_unstable();
        assert_eq!(outcomes, [(1, "finished"), (100, "cut")]);
        assert_eq!(tasks.running(), 0);
    }
}
