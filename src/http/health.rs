//! Liveness, readiness and metrics for operators.

use actix_web::ResponseError as _;
use actix_web::{HttpResponse, web};
use mikabot_actors::store::NotLoaded;
use serde_json::json;

use crate::http::AppState;
use crate::http::error::ApiError;

/// `GET /healthz`: the node answers and how busy it is.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "live_sessions": state.live.count(),
        "stores": state.stores.len(),
        "model": state.models.primary.name(),
        "model_breaker": state.models.breaker.state().as_str(),
    }))
}

/// `GET /readyz`: 200 when the node serves every store: storage open and
/// every store's catalog loaded; 503 with the reason while starting or
/// stopping, or when a catalog failed to load.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let not_ready = |status: &str, reason: String| {
        HttpResponse::ServiceUnavailable().json(json!({"status": status, "reason": reason}))
    };
    if state.tasks.is_stopping() {
        return not_ready("stopping", "the node is stopping".into());
    }
    if !state.storage.is_open() {
        return not_ready(
            "failed",
            "storage is closed: its storage thread stopped".into(),
        );
    }
    match state.stores.loaded() {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(NotLoaded::Loading { stores }) => not_ready(
            "starting",
            format!("{stores} store catalogs are still loading"),
        ),
        Err(NotLoaded::Failed(failures)) => not_ready(
            "failed",
            format!("catalogs failed to load: {}", failures.join("; ")),
        ),
    }
}

/// `GET /metrics`: every metric, in the OpenMetrics text format
/// (Prometheus reads it).
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    state.metrics.live_sessions.set(gauge(state.live.count()));
    state.metrics.stores.set(gauge(state.stores.len()));
    state.metrics.breaker(state.models.breaker.state());
    let mut body = String::with_capacity(16 * 1024);
    if let Err(error) = prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        return ApiError::internal(error).error_response();
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body)
}
