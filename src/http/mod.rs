//! HTTP routes and the state they share.

mod accounts;
pub mod address;
pub mod assets;
pub(crate) mod catalog;
pub mod client;
mod demo_shop;
mod echo;
pub(crate) mod error;
mod frames;
mod golden;
pub mod headers;
mod health;
pub mod operator;
mod pages;
pub(crate) mod privacy;
mod shopper;
pub mod widget;

use std::sync::Arc;

use actix_web::middleware::Compress;
use actix_web::web;
use governor::DefaultKeyedRateLimiter;
use mikabot_actors::ids::StoreId;
use mikabot_actors::limits::{ClientRates, ClientSlots};
use mikabot_actors::live::LiveSessions;
use mikabot_actors::log::ConversationLog;
use mikabot_actors::metrics::Metrics;
use mikabot_actors::provider::Models;
use mikabot_actors::session::SessionSettings;
use mikabot_actors::store::Stores;
use mikabot_actors::tasks::Tasks;
use prometheus_client::registry::Registry;

use self::address::{ClientAddressing, ClientKey};
use crate::storage::Storage;

/// What every request handler can reach.
pub struct AppState {
    pub stores: Stores,
    pub log: Arc<dyn ConversationLog>,
    /// The provider, the offline fallback, the breaker and store budgets.
    pub models: Arc<Models>,
    /// Sessions open per client and on the node.
    pub slots: ClientSlots,
    /// Per-client rates of conversations and messages.
    pub rates: Arc<ClientRates>,
    pub live: LiveSessions,
    /// Every store's live desk.
    pub desks: mikabot_actors::desk::Desks,
    /// The node's background tasks (reply tasks run there).
    pub tasks: Tasks,
    pub metrics: Arc<Metrics>,
    /// Every metric of the node, for `/metrics`.
    pub registry: Registry,
    pub session_settings: Arc<SessionSettings>,
    pub new_sessions: Arc<DefaultKeyedRateLimiter<ClientKey>>,
    pub max_frame_bytes: usize,
    pub outgoing_buffer: usize,
    /// Who a request comes from (trusted proxies, IPv6 grouping).
    pub addressing: ClientAddressing,
    pub storage: Storage,
    /// `None` turns the catalog API off.
    pub operator_token: Option<String>,
    /// Failed operator authentications, by address.
    pub operator_failures: Arc<operator::FailureThrottle>,
    pub max_upload_bytes: usize,
    /// Held while a store's profile is read, changed and installed (catalog
    /// import, synonyms, widget settings), so no change undoes another.
    pub profile_changes: tokio::sync::Mutex<()>,
    /// Serve `/v1/echo` (`server.echo_socket`), for the Autobahn suite.
    pub echo_socket: bool,
    /// `server.public_url` is https: responses carry HSTS.
    pub https: bool,
    /// The demo shop's pages, when the demo store is enabled.
    pub demo_shop: Option<Arc<demo_shop::DemoShop>>,
    /// `server.public_url` without a trailing slash, for links in mail and
    /// the embed tag.
    pub public_url: String,
    /// The origin of `public_url` (lower case), for CSRF's origin check.
    pub public_origin: String,
    /// The dashboard's session and throttle settings.
    pub dashboard: crate::config::DashboardSettings,
    pub postman: Arc<crate::email::Postman>,
    /// Failed dashboard sign-ins, by the SHA-256 of the email address.
    pub login_by_account: operator::FailureThrottle<[u8; 32]>,
    /// Failed dashboard sign-ins, by client address.
    pub login_by_address: operator::FailureThrottle<ClientKey>,
    /// Emails (sign-ups, links) asked for, by client address.
    pub email_requests: DefaultKeyedRateLimiter<ClientKey>,
    /// Cookie-consent decisions recorded, by client address.
    pub consent_decisions: DefaultKeyedRateLimiter<ClientKey>,
    /// The threads store actors run on, to serve a store created or
    /// restored from the dashboard.
    pub store_threads: Arc<crate::startup::StoreThreads>,
    /// Erasure requests and the retention sweeper.
    pub privacy: crate::privacy::Privacy,
    pub retention: actix::Addr<crate::privacy::retention::RetentionSweeper>,
    /// Stores whose golden conversations are being replayed.
    pub golden_runs: crate::golden::Running,
}

pub use demo_shop::DemoShop;

/// Proof that `profile_changes` is held.
pub type StoreChanges<'a> = tokio::sync::MutexGuard<'a, ()>;

impl AppState {
    /// Runs `write` while `store` still exists, under `profile_changes`
    /// (`held`): a store's deletion takes the same lock, so nothing is
    /// written for a store already deleted (and found later by a new store
    /// given the same id). `None`: the store is gone and nothing was written.
    pub async fn write_for_store<T, F>(
        &self,
        _held: &StoreChanges<'_>,
        store: &StoreId,
        write: F,
    ) -> Result<Option<T>, crate::storage::StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Storage) -> Result<T, crate::storage::StorageError> + Send + 'static,
    {
        let id = store.clone();
        self.storage
            .blocking(move |storage| match storage.store(&id)? {
                Some(_) => write(storage).map(Some),
                None => Ok(None),
            })
            .await
    }
}

/// Mounts every route.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/widget/ws", web::get().to(widget::socket))
        .route("/v1/echo", web::get().to(echo::echo))
        .route("/v1/stores/{store}/catalog", web::put().to(catalog::import))
        .route(
            "/v1/stores/{store}/catalog",
            web::post().to(catalog::import),
        )
        .route(
            "/v1/stores/{store}/synonyms",
            web::put().to(catalog::synonyms),
        )
        .route(
            "/v1/stores/{store}/widget",
            web::patch().to(catalog::widget_settings),
        )
        .route("/v1/stores/{store}/golden", web::get().to(golden::show))
        .route("/v1/stores/{store}/golden", web::put().to(golden::put))
        .route("/v1/stores/{store}/golden/run", web::post().to(golden::run))
        .route("/v1/stores/{store}/pages", web::get().to(pages::list))
        .route(
            "/v1/stores/{store}/pages/{slug}",
            web::get().to(pages::show),
        )
        .route("/v1/stores/{store}/pages/{slug}", web::put().to(pages::put))
        .route(
            "/v1/stores/{store}/pages/{slug}",
            web::delete().to(pages::delete),
        )
        .route(
            "/v1/stores/{store}/widget",
            web::get().to(assets::widget_settings),
        )
        .route(
            "/v1/stores/{store}/conversations",
            web::get().to(privacy::list),
        )
        .route(
            "/v1/stores/{store}/conversations/{id}",
            web::get().to(privacy::show),
        )
        .route(
            "/v1/stores/{store}/conversations/{id}",
            web::delete().to(privacy::erase_one),
        )
        .route(
            "/v1/stores/{store}/conversations/{id}/restriction",
            web::post().to(privacy::restriction),
        )
        .route(
            "/v1/stores/{store}/shopper/object",
            web::post().to(shopper::object),
        )
        .route(
            "/v1/stores/{store}/erasures",
            web::post().to(privacy::erase),
        )
        .route(
            "/v1/stores/{store}/erasures/{id}",
            web::get().to(privacy::erasure),
        )
        .route("/v1/stores/{store}/export", web::get().to(privacy::export))
        .route(
            "/v1/stores/{store}/shopper/export",
            web::post().to(shopper::export),
        )
        .route(
            "/v1/stores/{store}/shopper/erase",
            web::post().to(shopper::erase),
        )
        .route(
            "/v1/stores/{store}/shopper/{action}",
            web::method(actix_web::http::Method::OPTIONS).to(shopper::preflight),
        )
        .route("/v1/operator/backup", web::post().to(privacy::backup))
        .route(
            "/v1/operator/retention/preview",
            web::get().to(privacy::retention_preview),
        )
        .route("/v1/operator/accounts", web::get().to(accounts::list))
        .route(
            "/v1/operator/accounts/{account}/suspend",
            web::post().to(accounts::suspend),
        )
        .route(
            "/v1/operator/accounts/{account}/unsuspend",
            web::post().to(accounts::unsuspend),
        )
        .route("/widget.js", web::get().to(assets::widget_js))
        .route("/widget.js", web::head().to(assets::widget_js))
        .service(
            web::scope("/demo")
                .wrap(Compress::default())
                .route("", web::get().to(demo_shop::to_index))
                .route("/", web::get().to(demo_shop::index))
                .route("/products/{id}", web::get().to(demo_shop::product))
                .route("/images/{file}", web::get().to(demo_shop::image)),
        )
        .configure(crate::dashboard::mount)
        .route("/", web::get().to(demo_shop::to_index))
        .route("/healthz", web::get().to(health::health))
        .route("/readyz", web::get().to(health::ready))
        .route("/metrics", web::get().to(health::metrics))
        .default_service(web::to(error::no_route));
}

/// Turns Nagle's algorithm off on each accepted connection: a token frame
/// goes out when it is written, instead of waiting for the client to
/// acknowledge the one before (up to its delayed-ACK timer, 40 ms on
/// Linux). actix-web leaves the option as the system sets it.
pub fn send_without_delay(connection: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Err(error) = tcp.set_nodelay(true)
    {
        tracing::debug!(%error, "TCP_NODELAY not set");
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let _client = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        accepted.set_nodelay(false).expect("set");
        super::send_without_delay(&accepted, &mut actix_web::dev::Extensions::new());
        assert!(accepted.nodelay().expect("read"));
    }
}
