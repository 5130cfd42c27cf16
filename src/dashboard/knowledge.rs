//! The store's knowledge pages in the dashboard: the list, a form to add or
//! edit a page (text or Markdown), and deletion. Owners only; every change
//! is a CSRF-checked form post that saves through [`crate::knowledge`], the
//! same path as the store API.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use mikabot_actors::catalog::StoreProfile;
use mikabot_actors::knowledge::{
    MAX_PAGE_BYTES, MAX_PAGES, Page, PageProblem, passages, slug_from_title, valid_slug,
};
use serde::Deserialize;

use super::pages::{Chrome, Errors, KnowledgeForm, KnowledgePage, KnowledgeRow, render};
use super::stores::{head, member};
use super::visitor::{CsrfOnly, Visitor, form};
use super::{DashError, ok};
use crate::accounts::validate::FieldError;
use crate::accounts::{Role, format_time};
use crate::http::AppState;
use crate::knowledge::{self, SaveError};
use crate::storage::PageSaved;

impl KnowledgeForm {
    /// The form shown again with the error that refused it.
    fn with(self, error: FieldError) -> (Self, Errors) {
        (self, error.into())
    }
}

fn size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

async fn page_html(
    visitor: &Visitor,
    state: &AppState,
    profile: &StoreProfile,
    form: KnowledgeForm,
    errors: Errors,
) -> Result<String, DashError> {
    let id = profile.id.clone();
    let stored = state
        .storage
        .blocking(move |storage| storage.pages(&id))
        .await
        .map_err(DashError::internal)?;
    let pages = stored
        .iter()
        .map(|page| KnowledgeRow {
            slug: page.slug.clone(),
            title: page.title.clone(),
            url: page.url.clone(),
            updated: format_time(page.updated_ms / 1000),
            size: size(page.body.len()),
            passages: passages(page).len(),
        })
        .collect();
    render(&KnowledgePage {
        chrome: Chrome::of(visitor, format!("{}: knowledge", profile.name)),
        store: head(profile),
        pages,
        form,
        errors,
        max_pages: MAX_PAGES,
        max_kib: MAX_PAGE_BYTES / 1024,
    })
}

/// `GET /dashboard/stores/{store}/knowledge`: the pages and a new one.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let html = page_html(
        &visitor,
        &state,
        &profile,
        KnowledgeForm::default(),
        Errors::default(),
    )
    .await?;
    Ok(ok(visitor, html))
}

/// `GET /dashboard/stores/{store}/knowledge/{slug}`: one page to edit.
pub async fn edit(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (store, slug) = path.into_inner();
    let (_, profile, _) = member(&visitor, &state, &store, Role::Owner)?;
    if !valid_slug(&slug) {
        return Err(DashError::NotFound);
    }
    let id = profile.id.clone();
    let page = state
        .storage
        .blocking(move |storage| storage.page(&id, &slug))
        .await
        .map_err(DashError::internal)?
        .ok_or(DashError::NotFound)?;
    let form = KnowledgeForm {
        slug: page.slug,
        title: page.title,
        url: page.url,
        body: page.body,
        editing: true,
    };
    let html = page_html(&visitor, &state, &profile, form, Errors::default()).await?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PageBody {
    csrf: String,
    slug: String,
    title: String,
    url: String,
    body: String,
    /// "1" when the form edits an existing page.
    editing: String,
}

/// The form field a page problem belongs to.
fn field_of(problem: &PageProblem) -> &'static str {
    match problem {
        PageProblem::Slug => "slug",
        PageProblem::TitleEmpty | PageProblem::TitleTooLong => "title",
        PageProblem::BodyEmpty | PageProblem::BodyTooLarge { .. } => "body",
        PageProblem::Url => "url",
        PageProblem::TooManyPages => "",
    }
}

/// `POST /dashboard/stores/{store}/knowledge`: saves a new or edited page.
pub async fn save(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let body: PageBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let slug = match body.slug.trim() {
        "" => slug_from_title(&body.title),
        given => given.to_owned(),
    };
    let editing = body.editing == "1";
    let refuse = |problem: FieldError, body: PageBody| {
        KnowledgeForm {
            slug: body.slug,
            title: body.title,
            url: body.url,
            body: body.body,
            editing,
        }
        .with(problem)
    };
    // A new page never replaces one that exists under the same address.
    let exists = valid_slug(&slug)
        && state
            .storage
            .page(&profile.id, &slug)
            .map_err(DashError::internal)?
            .is_some();
    if exists && !editing {
        let error = FieldError::new(
            if body.slug.trim().is_empty() {
                "title"
            } else {
                "slug"
            },
            format!(
                "a page with the address \u{201c}{slug}\u{201d} exists: edit it, or choose another address"
            ),
        );
        let (form, errors) = refuse(error, body);
        let html = page_html(&visitor, &state, &profile, form, errors).await?;
        return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
    }
    let page = Page {
        slug,
        title: body.title.trim().to_owned(),
        // Browsers send CR LF line ends from a textarea.
        body: body.body.replace("\r\n", "\n"),
        url: body.url.trim().to_owned(),
        updated_ms: mikabot_actors::log::now_ms(),
    };
    match knowledge::save(&state, &profile.id, profile.default_language, page.clone()).await {
        Ok(saved) => {
            tracing::info!(store = %profile.id, created = saved == PageSaved::Created, "knowledge page saved");
            visitor.notices.push(format!("“{}” saved.", page.title));
            let form = KnowledgeForm {
                slug: page.slug,
                title: page.title,
                url: page.url,
                body: page.body,
                editing: true,
            };
            let html = page_html(&visitor, &state, &profile, form, Errors::default()).await?;
            Ok(ok(visitor, html))
        }
        Err(SaveError::Invalid(problem)) => {
            let error = FieldError::new(field_of(&problem), problem.to_string());
            let (form, errors) = refuse(error, body);
            let html = page_html(&visitor, &state, &profile, form, errors).await?;
            Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html))
        }
        Err(SaveError::StoreGone) => Err(DashError::NotFound),
        Err(SaveError::Storage(e)) => Err(DashError::internal(e)),
    }
}

/// `POST /dashboard/stores/{store}/knowledge/{slug}/delete`.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let (store, slug) = path.into_inner();
    let (_, profile, _) = member(&visitor, &state, &store, Role::Owner)?;
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    if !valid_slug(&slug) {
        return Err(DashError::NotFound);
    }
    let existed = knowledge::delete(&state, &profile.id, profile.default_language, &slug)
        .await
        .map_err(DashError::internal)?;
    if !existed {
        return Err(DashError::NotFound);
    }
    tracing::info!(store = %profile.id, "knowledge page deleted");
    visitor.notices.push("Page deleted.".into());
    let html = page_html(
        &visitor,
        &state,
        &profile,
        KnowledgeForm::default(),
        Errors::default(),
    )
    .await?;
    Ok(ok(visitor, html))
}
