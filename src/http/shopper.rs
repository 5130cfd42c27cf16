//! A shopper's own rights, from the widget's menu: download the
//! conversation, and delete it. Authorised by the shopper's session id (the
//! secret that resumes the conversation), sent in the body, never in a URL.
//!
//! - `POST /v1/stores/{store}/shopper/export` with `{"session_id": …}`:
//!   the conversation as JSON (`docs/privacy.md`, "Exports").
//! - `POST /v1/stores/{store}/shopper/erase` with `{"session_id": …}`: the
//!   conversation erased (202 once durable and hidden).
//! - `POST /v1/stores/{store}/shopper/object` with `{"session_id": …}`:
//!   the shopper's objection to analytics, recorded for the session.
//! - `OPTIONS` on each: the CORS preflight, for the store's allowed
//!   origins only.
//!
//! Each request spends one of the address's new-session allowance
//! (`widget.new_sessions_per_ip_per_minute`), so guessing session ids is
//! as slow as opening sockets.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use mikabot_actors::catalog::StoreProfile;
use mikabot_actors::ids::SessionId;
use mikabot_actors::log::{ConversationLog, ConversationMeta};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::catalog::{read_body, stored_profile};
use super::error::{ApiCode, ApiError};
use super::operator::client_key;
use crate::storage::erasure::ErasureScope;

const MAX_BODY_BYTES: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    session_id: String,
}

/// The request's Origin, if the store allows it; a refusal if it names a
/// site the store does not allow.
fn allowed_origin(
    req: &HttpRequest,
    profile: &StoreProfile,
) -> Result<Option<HeaderValue>, ApiError> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    if origin.is_some() && !profile.allows_origin(origin, host) {
        return Err(ApiError::new(
            ApiCode::OriginNotAllowed,
            "this site may not use the store's assistant",
        ));
    }
    Ok(origin.and_then(|o| HeaderValue::from_str(o).ok()))
}

fn with_cors(mut response: HttpResponse, origin: Option<HeaderValue>) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}

/// `OPTIONS /v1/stores/{store}/shopper/{action}`
pub async fn preflight(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let profile = stored_profile(&state, &path.0)?;
    let origin = allowed_origin(&req, &profile)?;
    let response = HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .finish();
    Ok(with_cors(response, origin))
}

/// A shopper's request: its conversation (found by the session id in the
/// body; 404 when there is none).
struct Asked {
    meta: ConversationMeta,
}

/// Checks the origin and the allowance, reads the session id and finds its
/// conversation.
async fn session_of(
    req: &HttpRequest,
    state: &AppState,
    raw_store: &str,
    body: web::Payload,
) -> Result<Asked, ApiError> {
    let profile = stored_profile(state, raw_store)?;
    allowed_origin(req, &profile)?;
    if let Some(key) = client_key(req, state)
        && state.new_sessions.check_key(&key).is_err()
    {
        return Err(ApiError::new(
            ApiCode::TooManyAttempts,
            "too many requests from this address; retry in a minute",
        )
        .retry_after(std::time::Duration::from_secs(60)));
    }
    let bytes = read_body(body, MAX_BODY_BYTES, "1 KiB").await?;
    let body: SessionBody = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            ApiCode::InvalidBody,
            format!("expected {{\"session_id\": \"…\"}}: {e}"),
        )
    })?;
    let session = SessionId::parse(&body.session_id)
        .ok_or_else(|| ApiError::new(ApiCode::InvalidBody, "session_id: expected a session id"))?;
    let store = profile.id;
    let meta = state
        .storage
        .blocking(move |storage| {
            ConversationLog::find_session(storage, &store, session)
                .map_err(|e| crate::storage::StorageError::Interrupted(e.to_string()))
        })
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                ApiCode::NotFound,
                "this session has no conversation in this store",
            )
        })?;
    Ok(Asked { meta })
}

/// `POST /v1/stores/{store}/shopper/export`
async fn export_inner(
    req: &HttpRequest,
    path: &str,
    body: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let Asked { meta } = session_of(req, state, path, body).await?;
    let now = state.privacy.clock().now_ms();
    let export = state
        .storage
        .blocking(move |storage| crate::privacy::export::export_conversation(storage, &meta, now))
        .await
        .map_err(ApiError::internal)?;
    let response = HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"conversation.json\"",
        ))
        .json(export);
    Ok(response)
}

/// `POST /v1/stores/{store}/shopper/erase`
async fn erase_inner(
    req: &HttpRequest,
    path: &str,
    body: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let Asked { meta } = session_of(req, state, path, body).await?;
    let done = state
        .privacy
        .erase(ErasureScope::Session {
            store: meta.store,
            session: meta.session,
        })
        .await
        .map_err(ApiError::internal)?;
    let response = HttpResponse::Accepted().json(json!({
        "request_id": done.id.to_string(),
        "state": "accepted",
    }));
    Ok(response)
}

/// `POST /v1/stores/{store}/shopper/object`: the shopper objects to the
/// processing of their conversation for analytics; recorded per session.
async fn object_inner(
    req: &HttpRequest,
    path: &str,
    body: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let Asked { meta } = session_of(req, state, path, body).await?;
    let now = state.privacy.clock().now_ms();
    state
        .storage
        .blocking(move |storage| storage.record_objection(&meta.store, meta.session, now))
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(json!({"objected_at_ms": now})))
}

/// Answers a shopper's request, with CORS for the store's allowed origins
/// on errors too, so the widget can tell a 404 or a 429 from a failure.
async fn answer(
    req: &HttpRequest,
    state: &AppState,
    raw_store: &str,
    inner: impl std::future::Future<Output = Result<HttpResponse, ApiError>>,
) -> HttpResponse {
    let origin = stored_profile(state, raw_store)
        .ok()
        .and_then(|profile| allowed_origin(req, &profile).ok().flatten());
    let response = match inner.await {
        Ok(response) => response,
        Err(error) => actix_web::ResponseError::error_response(&error),
    };
    with_cors(response, origin)
}

/// `POST /v1/stores/{store}/shopper/export`
pub async fn export(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    answer(&req, &state, &path, export_inner(&req, &path, body, &state)).await
}

/// `POST /v1/stores/{store}/shopper/erase`
pub async fn erase(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    answer(&req, &state, &path, erase_inner(&req, &path, body, &state)).await
}

/// `POST /v1/stores/{store}/shopper/object`
pub async fn object(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    answer(&req, &state, &path, object_inner(&req, &path, body, &state)).await
}
