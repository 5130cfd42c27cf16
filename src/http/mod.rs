//! HTTP routes and the state they share.

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
}

/// Mounts every route.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/widget/ws", web::get().to(widget::socket))
        .route("/healthz", web::get().to(health::health))
        .route("/metrics", web::get().to(health::metrics));
}
