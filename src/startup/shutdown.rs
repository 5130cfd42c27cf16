//! Stopping a node. On SIGTERM (or [`Stopper::stop`]) the node reports
//! itself not ready (`/readyz` answers 503 `stopping`, new widget sockets
//! are refused with `server_shutdown`), tells every widget session `server_shutdown`
//! (close 1001), lets replies in flight finish for up to
//! `server.shutdown_timeout_secs` and cuts the rest (they record what they
//! generated, marked incomplete), then stops the HTTP server. After that
//! `Application::run_until_stopped` stops the store threads, flushes
//! storage and waits until the database is closed. Every wait is on an
//! event, bounded; nothing polls. The node is gone within
//! `shutdown_timeout_secs` plus the fixed bounds below (3 s to drain
//! sessions, 5 s for cut replies to record, 5 s for other requests, 10 s for
//! the database to close), and in practice within the timeout and a second.

use std::time::Duration;

use actix_web::dev::ServerHandle;
use mikabot_actors::live::LiveSessions;
use mikabot_actors::tasks::Tasks;

/// Longest wait for sessions to close after they were told to.
const SESSION_DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait, once replies are done, for other HTTP requests (an upload,
/// say) to finish before their connections are closed.
pub(super) const HTTP_DRAIN_TIMEOUT: u64 = 5;

/// Stops a running node gracefully. Cheap to clone.
#[derive(Clone)]
pub struct Stopper {
    pub(super) live: LiveSessions,
    pub(super) tasks: Tasks,
    pub(super) server: ServerHandle,
    /// How long replies in flight may take to finish.
    pub(super) reply_timeout: Duration,
}

impl Stopper {
    pub async fn stop(&self) {
        self.tasks.begin_stopping();
        tracing::info!(
            sessions = self.live.count(),
            tasks = self.tasks.running(),
            "stopping: closing sessions"
        );
        self.live.shutdown_all();
        if tokio::time::timeout(SESSION_DRAIN_TIMEOUT, self.live.all_closed())
            .await
            .is_err()
        {
            tracing::warn!(
                sessions = self.live.count(),
                "sessions still open after the drain timeout"
            );
        }
        let stopped = self.tasks.stop(self.reply_timeout).await;
        if stopped.cut > 0 {
            tracing::warn!(
                cut = stopped.cut,
                abandoned = stopped.abandoned,
                "tasks cut at the shutdown timeout: replies with text were recorded as incomplete, \
                 replies without any are answered when their shopper returns"
            );
        }
        self.server.stop(true).await;
    }

    /// Live widget sessions now.
    pub fn live_sessions(&self) -> usize {
        self.live.count()
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
