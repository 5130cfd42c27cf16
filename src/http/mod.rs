//! HTTP routes and the state they share.

mod catalog;
pub mod client;
mod health;
mod widget;

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::web;
use governor::DefaultKeyedRateLimiter;
use mikabot_actors::live::LiveSessions;
use mikabot_actors::log::ConversationLog;
use mikabot_actors::model::ChatModel;
use mikabot_actors::session::SessionSettings;
use mikabot_actors::store::Stores;

use crate::storage::Storage;

/// What every request handler can reach.
pub struct AppState {
    pub stores: Stores,
    pub log: Arc<dyn ConversationLog>,
    pub model: Arc<dyn ChatModel>,
    pub live: LiveSessions,
    pub session_settings: Arc<SessionSettings>,
    pub new_sessions: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    pub max_frame_bytes: usize,
    pub outgoing_buffer: usize,
    pub trust_forwarded_for: bool,
    pub storage: Storage,
    /// `None` turns the catalog API off.
    pub operator_token: Option<String>,
    pub max_upload_bytes: usize,
}

/// Mounts every route.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/widget/ws", web::get().to(widget::socket))
        .route("/v1/stores/{store}/catalog", web::put().to(catalog::import))
        .route(
            "/v1/stores/{store}/catalog",
            web::post().to(catalog::import),
        )
        .route(
            "/v1/stores/{store}/synonyms",
            web::put().to(catalog::synonyms),
        )
        .route("/healthz", web::get().to(health::health))
        .route("/metrics", web::get().to(health::metrics));
}
