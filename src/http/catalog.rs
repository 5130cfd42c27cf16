//! The operator's catalog API: `PUT /v1/stores/{store}/catalog` replaces a
//! store's catalog with the uploaded feed, `POST` adds or updates products
//! by id. `?mode=partial` imports the valid rows and reports the rest; the
//! default changes nothing if any row is bad. `PUT
//! /v1/stores/{store}/synonyms` sets the store's synonym groups.
//! Authenticated with the operator API token from configuration, compared in
//! constant time.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use mikabot_actors::catalog::StoreProfile;
use mikabot_actors::ids::StoreId;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::http::AppState;
use crate::import::{self, ImportError, Mode, Scope};

#[derive(Deserialize)]
pub struct ImportQuery {
    #[serde(default)]
    mode: Mode,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": {"code": code, "message": message.into()}}))
}

fn storage_failed(e: impl std::fmt::Display) -> HttpResponse {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage_failed",
        e.to_string(),
    )
}

/// The profile of the store named in the path, or the refusal to send.
fn stored_profile(state: &AppState, raw: &str) -> Result<StoreProfile, HttpResponse> {
    let unknown = || {
        error(
            StatusCode::NOT_FOUND,
            "unknown_store",
            "no such store on this node",
        )
    };
    let store = StoreId::parse(raw).map_err(|_| unknown())?;
    match state.storage.store(&store) {
        Ok(Some(profile)) => Ok(profile),
        Ok(None) => Err(unknown()),
        Err(e) => Err(storage_failed(e)),
    }
}

/// Checks `Authorization: Bearer TOKEN` against the operator token.
fn authorised(req: &HttpRequest, state: &AppState) -> Result<(), HttpResponse> {
    let Some(expected) = state.operator_token.as_deref() else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "catalog_api_disabled",
            "the catalog API is off: set operator.api_token",
        ));
    };
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid operator token is required (Authorization: Bearer ...)",
        ))
    }
}

/// Most bytes a synonyms body may have.
const MAX_SYNONYMS_BODY_BYTES: usize = 1024 * 1024;

/// Reads a request body, refusing it once it passes `limit` bytes.
async fn read_body(
    mut body: web::Payload,
    limit: usize,
    setting: &str,
) -> Result<Vec<u8>, HttpResponse> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| error(StatusCode::BAD_REQUEST, "upload_failed", e.to_string()))?;
        if bytes.len() + chunk.len() > limit {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("a body is at most {limit} bytes ({setting})"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// `PUT` replaces the catalog, `POST` adds or updates products by id.
pub async fn import(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let scope = if req.method() == actix_web::http::Method::POST {
        Scope::Upsert
    } else {
        Scope::Replace
    };
    let query = web::Query::<ImportQuery>::from_query(req.query_string());
    let Ok(query) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_mode",
            "mode is all_or_nothing (the default) or partial",
        );
    };
    import_feed(req, path.into_inner(), query.mode, scope, body, state).await
}

async fn import_feed(
    req: HttpRequest,
    store: String,
    mode: Mode,
    scope: Scope,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Err(refusal) = authorised(&req, &state) {
        return refusal;
    }
    let profile = match stored_profile(&state, &store) {
        Ok(profile) => profile,
        Err(refusal) => return refusal,
    };
    let store = profile.id.clone();
    // The upload is read once into memory, never copied; the parser streams
    // over it.
    let bytes = match read_body(body, state.max_upload_bytes, "import.max_upload_bytes").await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    let store_url = profile.url.clone();
    let currency = profile.currency;
    let parsed = web::block(move || import::parse(bytes.as_slice(), &store_url, currency)).await;
    let parsed = match parsed {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(e @ (ImportError::UnknownFormat | ImportError::Empty))) => {
            let code = if matches!(e, ImportError::Empty) {
                "empty_feed"
            } else {
                "unknown_format"
            };
            return error(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string());
        }
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, "malformed_feed", e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    };
    let catalog = state.stores.get(&store);
    match import::apply(
        &state.storage,
        &profile,
        catalog.as_ref(),
        parsed,
        mode,
        scope,
    )
    .await
    {
        Ok(report) => {
            tracing::info!(store = %store, imported = report.imported, rejected = report.rejected_count, "catalog imported");
            HttpResponse::Ok().json(report)
        }
        Err(refusal) => match refusal.report() {
            Some(report) => {
                let mut body = serde_json::to_value(report).unwrap_or_default();
                body["error"] = json!({"code": refusal.code(), "message": refusal.to_string()});
                HttpResponse::UnprocessableEntity().json(body)
            }
            None => storage_failed(refusal),
        },
    }
}

/// Most synonym groups a store may have, words in a group, and bytes a word.
const MAX_SYNONYM_GROUPS: usize = 1000;
const MAX_GROUP_WORDS: usize = 20;
const MAX_SYNONYM_BYTES: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynonymsBody {
    synonyms: Vec<Vec<String>>,
}

/// `PUT /v1/stores/{store}/synonyms` with `{"synonyms": [["hoodie", "sweatshirt"], ...]}`.
pub async fn synonyms(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Err(refusal) = authorised(&req, &state) {
        return refusal;
    }
    let body = match read_body(body, MAX_SYNONYMS_BODY_BYTES, "1 MiB").await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    let body: SynonymsBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("expected {{\"synonyms\": [[\"word\", \"word\"], ...]}}: {e}"),
            );
        }
    };
    let groups: Vec<Vec<String>> = body
        .synonyms
        .into_iter()
        .map(|group| group.into_iter().map(|w| w.trim().to_owned()).collect())
        .collect();
    let bad_group = groups.iter().position(|g: &Vec<String>| {
        g.len() < 2
            || g.len() > MAX_GROUP_WORDS
            || g.iter()
                .any(|w| w.is_empty() || w.len() > MAX_SYNONYM_BYTES)
    });
    if groups.len() > MAX_SYNONYM_GROUPS || bad_group.is_some() {
        let message = match bad_group {
            Some(i) => format!(
                "group {i}: a group has 2 to {MAX_GROUP_WORDS} words of 1 to {MAX_SYNONYM_BYTES} bytes"
            ),
            None => format!("at most {MAX_SYNONYM_GROUPS} groups"),
        };
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_synonyms",
            message,
        );
    }
    let mut profile = match stored_profile(&state, &path.into_inner()) {
        Ok(profile) => profile,
        Err(refusal) => return refusal,
    };
    profile.synonyms = groups;
    let products = match state
        .storage
        .put_store(&profile)
        .and_then(|()| state.storage.catalog(&profile.id))
    {
        Ok(products) => products,
        Err(e) => return storage_failed(e),
    };
    if let Err(e) = state.storage.flush().await {
        return storage_failed(e);
    }
    let groups = profile.synonyms.len();
    if let Some(catalog) = state.stores.get(&profile.id) {
        import::install(&catalog, profile, products).await;
    }
    HttpResponse::Ok().json(json!({"synonym_groups": groups}))
}
