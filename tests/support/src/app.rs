//! Starts a real node, as `main` does, on an ephemeral port, with a
//! temporary data directory; stops it gracefully and restarts it on the same
//! directory.

use std::path::Path;
use std::time::Duration;

use mikabot::config::Settings;
use mikabot::startup::{Application, Stopper};
use mikabot::storage::Storage;
use mikabot_actors::ids::{ConversationId, StoreId};
use mikabot_actors::log::{ConversationLog, StoredMessage};
use tempfile::TempDir;

/// A running node and its data directory.
pub struct TestApp {
    pub port: u16,
    pub stopper: Stopper,
    pub storage: Option<Storage>,
    pub dir: Option<TempDir>,
    /// The privacy supervisors (their fault injection, the clock).
    pub privacy: Option<mikabot::startup::PrivacyHandles>,
    join: Option<actix_web::rt::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub fn ws_url(&self, store: &str) -> String {
        format!("ws://127.0.0.1:{}/v1/widget/ws?store={store}", self.port)
    }

    /// The node's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .expect("the node answers")
            .text()
            .await
            .expect("a text body")
    }

    pub fn live_sessions(&self) -> usize {
        self.stopper.live_sessions()
    }

    pub fn storage(&self) -> &Storage {
        self.storage.as_ref().expect("the node is running")
    }

    /// The stored messages of the conversation a `ready` frame announced.
    pub fn stored_history(&self, ready: &serde_json::Value) -> Vec<StoredMessage> {
        let store = StoreId::parse("demo").expect("valid store id");
        let conversation = ConversationId::parse(
            ready["conversation_id"]
                .as_str()
                .expect("ready has a conversation id"),
        )
        .expect("conversation ids are UUIDs");
        self.storage()
            .history(&store, conversation, usize::MAX)
            .expect("history loads")
    }

    /// Waits until the live-session count is `expected`, failing after a
    /// generous deadline (machines are shared and noisy).
    pub async fn wait_for_live_sessions(&self, expected: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.live_sessions() != expected {
            assert!(
                tokio::time::Instant::now() < deadline,
                "live sessions stayed at {} instead of {expected}",
                self.live_sessions()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the node gracefully and waits until storage is flushed and
    /// released. Returns the data directory for a restart.
    pub async fn stop(mut self) -> TempDir {
        self.stopper.stop().await;
        self.storage = None;
        self.privacy = None;
        if let Some(join) = self.join.take() {
            join.await
                .expect("node task")
                .expect("node stopped cleanly");
        }
        self.dir.take().expect("the data directory")
    }
}

/// Settings for tests: port 0, one worker, no demo delays, quick timings.
pub fn test_settings(dir: &Path) -> Settings {
    let mut settings = Settings::load_with_env(None, Vec::new()).expect("defaults are valid");
    settings.server.port = 0;
    settings.server.workers = 1;
    // Keeps the node's own address out of stored records, so a test can
    // look for it in the data files.
    settings.server.public_url = "http://localhost:8080".into();
    // The database, keyring and master key all inside `dir`, as
    // `StorageOptions::in_dir` has them.
    let options = mikabot::storage::StorageOptions::in_dir(dir);
    settings.storage.data_dir = options.data_dir;
    settings.storage.keyring_file = options.keyring;
    settings.storage.master_key_file = dir.join("master.key");
    settings.offline.token_delay_ms = 0;
    // Stopping waits this long for replies in flight (a stalled model's).
    settings.server.shutdown_timeout_secs = 2;
    // Every test's shoppers come from 127.0.0.1: the per-address bounds and
    // the breaker are lifted, except where a test is about them.
    settings.limits.sessions_per_address = 10_000;
    settings.limits.sessions_per_ipv6_network = 10_000;
    settings.limits.new_conversations_per_address_per_hour = 10_000;
    settings.limits.messages_per_address_per_minute = 10_000;
    settings.model.breaker_failures = 10_000;
    settings.log.filter = "warn".into();
    // The demo owner's password hash costs each node a moment; tests about
    // it turn it back on.
    settings.dashboard.demo_owner = false;
    settings
}

/// A node on a fresh temporary directory.
pub async fn spawn_app(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_app_in(dir, tweak).await
}

/// A node on an existing data directory (for restarts).
pub async fn spawn_app_in(dir: TempDir, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_at(dir, mikabot::privacy::Clock::System, tweak).await
}

/// A node whose privacy supervisors read `clock` (a test moves it).
pub async fn spawn_app_with_clock(
    clock: mikabot::privacy::Clock,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_app_at(dir, clock, tweak).await
}

async fn spawn_app_at(
    dir: TempDir,
    clock: mikabot::privacy::Clock,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = test_settings(dir.path());
    tweak(&mut settings);
    let app = Application::build_with_clock(settings, clock)
        .await
        .expect("the node builds");
    let port = app.port();
    let stopper = app.stopper();
    let storage = Some(app.storage());
    let privacy = Some(app.privacy());
    let join = actix_web::rt::spawn(app.run_until_stopped(false));
    TestApp {
        port,
        stopper,
        storage,
        privacy,
        dir: Some(dir),
        join: Some(join),
    }
}

/// A node whose model is `fake`, retrying quickly, with `tweak` applied last.
pub async fn spawn_app_on(fake: &crate::FakeOpenAi, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let base_url = fake.base_url.clone();
    spawn_app(move |s| {
        s.model.provider = mikabot::config::ProviderChoice::Openai;
        s.model.base_url = base_url;
        s.model.retry_base_delay_ms = 20;
        s.model.retry_max_delay_ms = 100;
        tweak(s);
    })
    .await
}
