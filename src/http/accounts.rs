//! The operator's account API, authenticated with the operator token: `GET
//! /v1/operator/accounts` lists every account (no conversation, no store
//! content), `POST /v1/operator/accounts/{account}/suspend` and
//! `.../unsuspend` suspend one (its sessions end and its stores stop serving
//! when no other active owner remains) or lift it.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::accounts::AccountId;
use crate::http::AppState;
use crate::http::error::{ApiCode, ApiError};
use crate::http::operator::authorised;

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    authorised(&req, &state)?;
    let storage = state.storage.clone();
    let accounts = storage
        .blocking(|storage| {
            let mut rows = Vec::new();
            for account in storage.accounts()? {
                let stores = storage.stores_of(account.id)?.len();
                rows.push(json!({
                    "id": account.id.to_string(),
                    "name": account.name,
                    "email": account.email,
                    "created": account.created,
                    "verified": account.verified,
                    "suspended": account.suspended,
                    "deleted_at": account.deleted_at,
                    "operator": account.operator,
                    "stores": stores,
                }));
            }
            Ok(rows)
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(json!({ "accounts": accounts })))
}

async fn change(
    req: HttpRequest,
    state: web::Data<AppState>,
    raw: &str,
    suspended: bool,
) -> Result<HttpResponse, ApiError> {
    authorised(&req, &state)?;
    let unknown = || ApiError::new(ApiCode::NotFound, "no such account on this node");
    let id = AccountId::parse(raw).ok_or_else(unknown)?;
    let found = crate::dashboard::set_suspended(&state, id, suspended)
        .await
        .map_err(ApiError::internal)?;
    if !found {
        return Err(unknown());
    }
    Ok(HttpResponse::Ok().json(json!({ "account": id.to_string(), "suspended": suspended })))
}

pub async fn suspend(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change(req, state, &path, true).await
}

pub async fn unsuspend(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    change(req, state, &path, false).await
}
