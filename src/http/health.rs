//! Liveness and metrics for operators.

use actix_web::{HttpResponse, web};

use crate::http::AppState;

/// `GET /healthz`: the node answers and how busy it is.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "live_sessions": state.live.count(),
        "stores": state.stores.len(),
        "model": state.model.name(),
    }))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let body = format!(
        "# HELP mikabot_live_sessions Widget sessions connected now.\n\
         # TYPE mikabot_live_sessions gauge\n\
         mikabot_live_sessions {}\n\
         # HELP mikabot_stores Stores served by this node.\n\
         # TYPE mikabot_stores gauge\n\
         mikabot_stores {}\n",
        state.live.count(),
        state.stores.len()
    );
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}
