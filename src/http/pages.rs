//! The store API for knowledge pages (shipping, returns, FAQ, opening
//! hours): `GET /v1/stores/{store}/pages` lists them, `GET …/pages/{slug}`
//! reads one, `PUT …/pages/{slug}` with `{"title", "body", "url"}` creates
//! or replaces one, `DELETE …/pages/{slug}` deletes one. Authenticated as
//! the catalog API is ([`super::operator`]).

use actix_web::{HttpRequest, HttpResponse, web};
use mikabot_actors::knowledge::{MAX_PAGE_BYTES, Page, PageProblem, passages, valid_slug};
use serde::Deserialize;
use serde_json::json;

use crate::http::AppState;
use crate::http::catalog::{operator_json, stored_profile};
use crate::http::error::{ApiCode, ApiError};
use crate::http::operator::authorised_for_store;
use crate::knowledge::{self, SaveError};
use crate::storage::PageSaved;

/// A page body as JSON (the body text escaped) plus its title and URL.
const MAX_PAGE_REQUEST_BYTES: usize = 2 * MAX_PAGE_BYTES + 16 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageBody {
    title: String,
    body: String,
    #[serde(default)]
    url: String,
}

/// A refused page, with its stable problem code beside the error code.
pub(crate) fn refused(problem: &PageProblem) -> ApiError {
    let code = match problem {
        PageProblem::TooManyPages => ApiCode::TooManyPages,
        _ => ApiCode::InvalidPage,
    };
    ApiError::new(code, problem.to_string()).detail("problem", problem.code())
}

fn page_json(page: &Page) -> serde_json::Value {
    json!({
        "slug": page.slug,
        "title": page.title,
        "url": page.url,
        "updated_ms": page.updated_ms,
        "bytes": page.body.len(),
        "passages": passages(page).len(),
    })
}

/// `GET /v1/stores/{store}/pages`: every page, without its body.
pub async fn list(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorised_for_store(&req, &state, &path)?;
    let profile = stored_profile(&state, &path)?;
    let pages = state
        .storage
        .blocking(move |storage| storage.pages(&profile.id))
        .await
        .map_err(ApiError::internal)?;
    let pages: Vec<_> = pages.iter().map(page_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "pages": pages })))
}

fn unknown_page() -> ApiError {
    ApiError::new(ApiCode::NotFound, "no such page in this store")
}

/// `GET /v1/stores/{store}/pages/{slug}`: one page with its body.
pub async fn show(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (store, slug) = path.into_inner();
    authorised_for_store(&req, &state, &store)?;
    let profile = stored_profile(&state, &store)?;
    if !valid_slug(&slug) {
        return Err(unknown_page());
    }
    let page = state
        .storage
        .blocking(move |storage| storage.page(&profile.id, &slug))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(unknown_page)?;
    let mut body = page_json(&page);
    body["body"] = json!(page.body);
    Ok(HttpResponse::Ok().json(body))
}

/// `PUT /v1/stores/{store}/pages/{slug}`: creates (201) or replaces (200).
pub async fn put(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (store, slug) = path.into_inner();
    let expected = "{\"title\": \"…\", \"body\": \"text or Markdown\", \"url\": \"https://…\"}";
    let body: PageBody =
        operator_json(&req, &state, body, MAX_PAGE_REQUEST_BYTES, expected, &store).await?;
    let profile = stored_profile(&state, &store)?;
    let page = Page {
        slug,
        title: body.title.trim().to_owned(),
        body: body.body,
        url: body.url.trim().to_owned(),
        updated_ms: mikabot_actors::log::now_ms(),
    };
    let json = page_json(&page);
    match knowledge::save(&state, &profile.id, profile.default_language, page).await {
        Ok(PageSaved::Created) => Ok(HttpResponse::Created().json(json)),
        Ok(_) => Ok(HttpResponse::Ok().json(json)),
        Err(SaveError::Invalid(problem)) => Err(refused(&problem)),
        Err(SaveError::StoreGone) => Err(ApiError::new(
            ApiCode::UnknownStore,
            format!("no store {}", profile.id),
        )),
        Err(SaveError::Storage(e)) => Err(ApiError::internal(e)),
    }
}

/// `DELETE /v1/stores/{store}/pages/{slug}`: 204, or 404 if there was none.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (store, slug) = path.into_inner();
    authorised_for_store(&req, &state, &store)?;
    let profile = stored_profile(&state, &store)?;
    if !valid_slug(&slug) {
        return Err(unknown_page());
    }
    let existed = knowledge::delete(&state, &profile.id, profile.default_language, &slug)
        .await
        .map_err(ApiError::internal)?;
    if existed {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(unknown_page())
    }
}
