//! The store API for golden conversations: `GET /v1/stores/{store}/golden`
//! (the questions and the last run), `PUT` with `{"goldens": [...]}`
//! (replaces the list), `POST …/golden/run` (replays every question now and
//! answers the results with what changed since the last run).
//! Authenticated as the catalog API is ([`super::operator`]).

use actix_web::{HttpRequest, HttpResponse, web};
use mikabot_actors::golden::{self, Golden};
use serde::Deserialize;
use serde_json::json;

use crate::golden::ReplayError;
use crate::http::AppState;
use crate::http::catalog::{operator_json, stored_profile};
use crate::http::error::{ApiCode, ApiError};
use crate::http::operator::authorised_for_store;

const MAX_GOLDEN_BODY_BYTES: usize = 256 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldensBody {
    goldens: Vec<Golden>,
}

/// `GET /v1/stores/{store}/golden`.
pub async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorised_for_store(&req, &state, &path)?;
    let profile = stored_profile(&state, &path)?;
    let (goldens, run) = state
        .storage
        .blocking(move |s| Ok((s.goldens(&profile.id)?, s.golden_run(&profile.id)?)))
        .await
        .map_err(ApiError::internal)?;
    let last_run = run.map(|run| json!({"at_ms": run.at_ms, "outcomes": run.outcomes}));
    Ok(HttpResponse::Ok().json(json!({"goldens": goldens, "last_run": last_run})))
}

/// `PUT /v1/stores/{store}/golden`.
pub async fn put(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let expected = "{\"goldens\": [{\"question\": \"…\", \"expect\": {…}}, …]}";
    let body: GoldensBody =
        operator_json(&req, &state, body, MAX_GOLDEN_BODY_BYTES, expected, &path).await?;
    golden::validate(&body.goldens)
        .map_err(|problem| ApiError::new(ApiCode::InvalidGoldens, problem.to_string()))?;
    let profile = stored_profile(&state, &path)?;
    let count = body.goldens.len();
    let id = profile.id.clone();
    let changing = state.profile_changes.lock().await;
    state
        .write_for_store(&changing, &profile.id, move |s| {
            s.put_goldens(&id, &body.goldens)
        })
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(ApiCode::UnknownStore, format!("no store {}", profile.id)))?;
    drop(changing);
    Ok(HttpResponse::Ok().json(json!({ "goldens": count })))
}

/// `POST /v1/stores/{store}/golden/run`.
pub async fn run(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorised_for_store(&req, &state, &path)?;
    let profile = stored_profile(&state, &path)?;
    match crate::golden::replay(state, &profile.id).await {
        Ok(replay) => Ok(HttpResponse::Ok().json(replay)),
        Err(ReplayError::Running) => Err(ApiError::new(
            ApiCode::GoldenRunning,
            "a replay of this store is already running; ask again when it has ended",
        )),
        Err(ReplayError::Busy) => Err(ApiError::new(
            ApiCode::GoldenRunsBusy,
            format!(
                "the node is replaying {} stores' questions, as many as it runs at once; ask again shortly",
                crate::golden::MAX_RUNS
            ),
        )),
        Err(ReplayError::NotServed) => Err(ApiError::new(
            ApiCode::StoreNotServed,
            "the store is not being served on this node now; ask again shortly",
        )),
        Err(ReplayError::Storage(e)) => Err(ApiError::internal(e)),
    }
}
