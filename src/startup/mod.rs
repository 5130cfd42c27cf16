//! `Application`: builds a node from settings (storage, model, store actors,
//! HTTP listener) and runs it until stopped. `main` and the tests use the
//! same code. [`shutdown`] has the stopping sequence; [`stores`] the threads
//! store actors run on.

mod privacy;
mod shutdown;
mod stores;

use std::net::{IpAddr, TcpListener};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use governor::{Quota, RateLimiter};
use mikabot_actors::desk::Desks;
use mikabot_actors::ids::StoreId;
use mikabot_actors::limits::{ClientRates, ClientSlots};
use mikabot_actors::live::LiveSessions;
use mikabot_actors::metrics::Metrics;
use mikabot_actors::reply::RetryPolicy;
use mikabot_actors::session::SessionSettings;
use mikabot_actors::store::Stores;
use mikabot_actors::tasks::Tasks;
use prometheus_client::registry::{Registry, Unit};

use crate::config::Settings;
use crate::http::address::ClientAddressing;
use crate::http::operator::FailureThrottle;
use crate::http::{self, AppState};
use crate::privacy::Clock;
use crate::storage::Storage;
use crate::{demo, model};

pub use self::privacy::{PrivacyHandles, PrivacyThread};
pub use self::shutdown::Stopper;
pub use self::stores::StoreThreads;

/// How often idle per-address rate-limit entries are dropped.
const LIMITER_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Longest wait, after the server stopped, for the database to close.
const STORAGE_RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// A built node, listening but not yet running.
pub struct Application {
    port: u16,
    server: Server,
    stopper: Stopper,
    storage: Storage,
    store_threads: Arc<StoreThreads>,
    privacy: PrivacyThread,
    /// Where the stores' desks run.
    desk_thread: actix::Arbiter,
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value)
}

fn session_settings(settings: &Settings) -> SessionSettings {
    let w = &settings.widget;
    let m = &settings.model;
    SessionSettings {
        heartbeat_interval: seconds(w.heartbeat_interval_secs),
        client_timeout: seconds(w.client_timeout_secs),
        hello_timeout: seconds(w.hello_timeout_secs),
        max_message_chars: w.max_message_chars,
        messages_per_minute: NonZeroU32::new(w.messages_per_minute).unwrap_or(NonZeroU32::MIN),
        history_tokens: m.history_tokens,
        history_messages: w.history_messages,
        retrieval_limit: w.retrieval_limit,
        query_rewrite: (m.query_rewrite_ms > 0).then(|| Duration::from_millis(m.query_rewrite_ms)),
        max_protocol_errors: w.max_protocol_errors,
        retry: RetryPolicy {
            base_delay: Duration::from_millis(m.retry_base_delay_ms),
            max_delay: Duration::from_millis(m.retry_max_delay_ms),
            budget: Duration::from_secs(m.retry_budget_secs),
            idle_timeout: Duration::from_secs(m.timeout_secs),
        },
    }
}

impl Application {
    /// Opens storage, loads stores, starts their actors and binds the
    /// listener. Must run inside an actix system.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::System).await
    }

    /// As [`build`](Self::build), with the privacy supervisors reading
    /// `clock` (tests move it).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        settings.validate()?;
        let data_dir = &settings.storage.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let storage = Storage::open(&settings.storage.options())
            .with_context(|| format!("opening data directory {}", data_dir.display()))?;

        if settings.demo.enabled {
            let id = StoreId::parse(&settings.demo.store_id)?;
            // Created once: a catalog imported into the demo store later is
            // never overwritten by a restart.
            if storage.store(&id)?.is_none() {
                let (profile, products) = demo::demo_store(id, &settings.server.public_url)?;
                storage.put_store(&profile)?;
                storage.replace_catalog(&profile.id, &products)?;
                for page in demo::demo_pages(&settings.server.public_url)? {
                    storage.save_page(&profile.id, &page)?;
                }
                storage.put_goldens(&profile.id, &demo::demo_goldens()?)?;
                tracing::info!(store = %profile.id, products = products.len(), "demo store created");
            }
            tracing::info!(store = %settings.demo.store_id, "demo store enabled");
        }

        let swept = storage.sweep_catalogs()?;
        if swept > 0 {
            tracing::warn!(
                products = swept,
                "removed catalog rows an interrupted import left behind"
            );
        }

        // Each store actor loads its catalog on its own; /readyz says when
        // all have.
        let store_threads = Arc::new(StoreThreads::new(match settings.server.store_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }));
        if settings.demo.enabled && settings.dashboard.demo_owner {
            demo::ensure_demo_owner(&storage, &settings)?;
        }
        let stores = Stores::default();
        for profile in storage.stores()? {
            let id = profile.id.clone();
            // The demo store stays on disk but is served only while enabled.
            if !settings.demo.enabled && id.as_str() == settings.demo.store_id {
                tracing::info!(store = %id, "demo store not served: demo.enabled is false");
                continue;
            }
            if !crate::dashboard::served(&storage, &id)? {
                tracing::info!(store = %id, "store not served: it has no active owner");
                continue;
            }
            stores.insert(id, store_threads.start(profile, &storage, &stores));
        }

        let models = Arc::new(model::from_settings(&settings)?);
        tracing::info!(model = models.primary.name(), "model provider ready");

        let new_sessions = Arc::new(RateLimiter::keyed(Quota::per_minute(
            NonZeroU32::new(settings.widget.new_sessions_per_ip_per_minute)
                .unwrap_or(NonZeroU32::MIN),
        )));
        let tasks = Tasks::default();
        let operator_failures = Arc::new(FailureThrottle::new(
            settings.operator.failed_attempts_per_minute,
        ));
        let rates = Arc::new(ClientRates::new(
            settings.limits.new_conversations_per_address_per_hour,
            settings.limits.messages_per_address_per_minute,
        ));
        let (sweep, failures, client_rates) = (
            Arc::clone(&new_sessions),
            Arc::clone(&operator_failures),
            Arc::clone(&rates),
        );
        let housekeeping = tasks.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(LIMITER_SWEEP_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        sweep.retain_recent();
                        failures.sweep();
                        client_rates.sweep();
                    }
                    () = housekeeping.stopping() => return,
                }
            }
        });

        let live = LiveSessions::new(tasks.clone());
        let demo_shop = if settings.demo.enabled {
            let store = StoreId::parse(&settings.demo.store_id)?;
            Some(Arc::new(http::DemoShop::new(store)?))
        } else {
            None
        };
        let metrics = Arc::new(Metrics::default());
        let mut registry = Registry::with_prefix("mikabot");
        metrics.register(&mut registry);
        registry.register_with_unit(
            "storage_flush",
            "Flushes of the storage thread, each covering every write waiting for it",
            Unit::Seconds,
            storage.flush_histogram(),
        );
        let privacy = PrivacyThread::start(&settings, &storage, &live, clock, &mut registry);
        let desk_thread = actix::Arbiter::new();
        let desks = Desks::new(
            desk_thread.handle(),
            Arc::new(storage.clone()),
            settings.desk.settings(),
            Arc::clone(&metrics),
        );
        let public_url = settings.server.public_url.trim_end_matches('/').to_owned();
        let public_origin = crate::accounts::validate::origin_of(&public_url).unwrap_or_default();
        let dashboard = settings.dashboard.clone();
        let login_window = Duration::from_secs(dashboard.login_window_minutes * 60);
        let postman = Arc::new(crate::email::Postman::new(&settings.email)?);
        if postman.uses_outbox() {
            tracing::info!(
                "no SMTP server configured (email.smtp_host): mail goes to the log and /dashboard/outbox"
            );
        }
        let state = web::Data::new(AppState {
            stores,
            log: Arc::new(storage.clone()),
            models,
            slots: ClientSlots::new(
                settings.limits.sessions_per_address,
                settings.limits.sessions_per_ipv6_network,
                settings.limits.sessions_per_node,
            ),
            rates: Arc::clone(&rates),
            live: live.clone(),
            desks,
            tasks: tasks.clone(),
            metrics,
            registry,
            session_settings: Arc::new(session_settings(&settings)),
            new_sessions,
            max_frame_bytes: settings.widget.max_frame_bytes,
            outgoing_buffer: settings.widget.outgoing_buffer,
            addressing: ClientAddressing {
                trusted_proxies: settings.server.trusted_networks(),
                header: settings.server.forwarded_header,
                ipv6_prefix: settings.server.ipv6_limit_prefix,
            },
            storage: storage.clone(),
            operator_token: (!settings.operator.api_token.is_empty())
                .then(|| settings.operator.api_token.expose().trim().to_owned()),
            operator_failures,
            max_upload_bytes: settings.import.max_upload_bytes,
            profile_changes: tokio::sync::Mutex::new(()),
            demo_shop,
            https: settings.server.public_url.starts_with("https://"),
            echo_socket: settings.server.echo_socket,
            public_url: public_url.clone(),
            public_origin,
            login_by_account: FailureThrottle::per_window(
                dashboard.login_failures_per_account,
                login_window,
            ),
            login_by_address: FailureThrottle::per_window(
                dashboard.login_failures_per_address,
                login_window,
            ),
            email_requests: RateLimiter::keyed(Quota::per_hour(
                NonZeroU32::new(dashboard.emails_per_address_per_hour).unwrap_or(NonZeroU32::MIN),
            )),
            consent_decisions: RateLimiter::keyed(Quota::per_hour(
                NonZeroU32::new(crate::dashboard::CONSENT_DECISIONS_PER_HOUR)
                    .unwrap_or(NonZeroU32::MIN),
            )),
            dashboard,
            postman,
            store_threads: Arc::clone(&store_threads),
            privacy: privacy.handles.privacy.clone(),
            retention: privacy.handles.retention.clone(),
            golden_runs: crate::golden::Running::default(),
        });
        let swept_state = state.clone();
        tasks.spawn({
            let tasks = tasks.clone();
            async move {
                let start = tokio::time::Instant::now() + LIMITER_SWEEP_INTERVAL;
                let mut tick = tokio::time::interval_at(start, LIMITER_SWEEP_INTERVAL);
                loop {
                    tokio::select! {
                        _ = tick.tick() => crate::dashboard::housekeeping(&swept_state).await,
                        () = tasks.stopping() => return,
                    }
                }
            }
        });

        let host: IpAddr = settings.server.host;
        let listener = TcpListener::bind((host, settings.server.port))
            .with_context(|| format!("binding {host}:{}", settings.server.port))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(actix_web::middleware::from_fn(
                    http::headers::security_headers,
                ))
                .configure(http::routes)
        })
        .on_connect(http::send_without_delay)
        .disable_signals()
        .shutdown_timeout(shutdown::HTTP_DRAIN_TIMEOUT);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener)?.run();
        let stopper = Stopper {
            live,
            tasks,
            server: server.handle(),
            reply_timeout: Duration::from_secs(settings.server.shutdown_timeout_secs),
        };
        tracing::info!(address = %format!("{host}:{port}"), "listening");
        tracing::info!("dashboard: {public_url}/dashboard");
        Ok(Self {
            port,
            server,
            stopper,
            storage,
            store_threads,
            privacy,
            desk_thread,
        })
    }

    /// The port the node listens on (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the node gracefully.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// The privacy supervisors (for tests).
    pub fn privacy(&self) -> PrivacyHandles {
        self.privacy.handles.clone()
    }

    /// The node's storage (for operators' tools and tests).
    pub fn storage(&self) -> Storage {
        self.storage.clone()
    }

    /// Serves until stopped (by [`Stopper::stop`] or, with
    /// `handle_signals`, SIGINT/SIGTERM; a second signal exits at once),
    /// then stops the store threads, flushes storage and waits until the
    /// database is closed.
    pub async fn run_until_stopped(self, handle_signals: bool) -> anyhow::Result<()> {
        if handle_signals {
            let stopper = self.stopper.clone();
            actix_web::rt::spawn(async move {
                shutdown::signal().await;
                actix_web::rt::spawn(async {
                    shutdown::signal().await;
                    tracing::warn!("second signal: exiting without waiting");
                    std::process::exit(130);
                });
                stopper.stop().await;
            });
        }
        self.server.await?;
        let store_threads = self.store_threads;
        tokio::task::spawn_blocking(move || store_threads.stop()).await?;
        let privacy = self.privacy;
        tokio::task::spawn_blocking(move || privacy.stop()).await?;
        let desk_thread = self.desk_thread;
        desk_thread.stop();
        tokio::task::spawn_blocking(move || desk_thread.join())
            .await?
            .ok();
        self.storage.flush().await?;
        let closed = self.storage.closed();
        drop(self.storage);
        if tokio::time::timeout(STORAGE_RELEASE_TIMEOUT, closed)
            .await
            .is_err()
        {
            tracing::warn!("storage still in use after stopping");
        }
        tracing::info!("stopped; storage flushed");
        Ok(())
    }
}
