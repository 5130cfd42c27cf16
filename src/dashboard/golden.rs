//! The store's golden questions in the dashboard: the list (edited as one
//! JSON list), the last replay with what changed, and the button that
//! replays them now. Owners only; both changes are CSRF-checked posts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use mikabot_actors::catalog::StoreProfile;
use mikabot_actors::golden::{self, Golden, Outcome};
use serde::Deserialize;

use super::pages::{Chrome, Errors, GoldenPage, GoldenRow, render};
use super::stores::{head, member};
use super::visitor::{CsrfOnly, Visitor, form};
use super::{DashError, ok};
use crate::accounts::validate::FieldError;
use crate::accounts::{Role, format_time};
use crate::golden::ReplayError;
use crate::http::AppState;

fn row(outcome: &Outcome, changes: Vec<String>) -> GoldenRow {
    let mut failed: Vec<String> = outcome
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.detail.clone())
        .collect();
    if let Some(error) = &outcome.error {
        failed.push(format!("the model failed: {error}"));
    }
    GoldenRow {
        question: outcome.question.clone(),
        passed: outcome.passed(),
        failed,
        cards: outcome.cards.join(", "),
        answer: outcome.text.clone(),
        changes,
    }
}

/// The page; `list` is what the form shows (the stored list unless a
/// refused one is shown again), `run` a replay just made.
async fn page_html(
    visitor: &Visitor,
    state: &AppState,
    profile: &StoreProfile,
    list: Option<String>,
    run: Option<crate::golden::Replay>,
    errors: Errors,
) -> Result<String, DashError> {
    let id = profile.id.clone();
    let (goldens, stored) = state
        .storage
        .blocking(move |s| Ok((s.goldens(&id)?, s.golden_run(&id)?)))
        .await
        .map_err(DashError::internal)?;
    let (rows, at_ms): (Vec<GoldenRow>, Option<u64>) = match run {
        Some(run) => (
            run.results
                .into_iter()
                .map(|r| row(&r.outcome, r.changes))
                .collect(),
            Some(run.at_ms),
        ),
        None => match stored {
            Some(run) => (
                run.outcomes.iter().map(|o| row(o, Vec::new())).collect(),
                Some(run.at_ms),
            ),
            None => (Vec::new(), None),
        },
    };
    let list = list
        .unwrap_or_else(|| serde_json::to_string_pretty(&goldens).unwrap_or_else(|_| "[]".into()));
    render(&GoldenPage {
        chrome: Chrome::of(visitor, format!("{}: golden questions", profile.name)),
        store: head(profile),
        list,
        count: goldens.len(),
        last_run: at_ms.map(|ms| format_time(ms / 1000)).unwrap_or_default(),
        passed: rows.iter().filter(|r| r.passed).count(),
        rows,
        errors,
    })
}

/// `GET /dashboard/stores/{store}/golden`.
pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let html = page_html(&visitor, &state, &profile, None, None, Errors::default()).await?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListBody {
    csrf: String,
    list: String,
}

/// `POST /dashboard/stores/{store}/golden`: replaces the list.
pub async fn save(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let body: ListBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let parsed = serde_json::from_str::<Vec<Golden>>(&body.list)
        .map_err(|e| format!("not a list of questions: {e}"))
        .and_then(|goldens| {
            golden::validate(&goldens)
                .map(|()| goldens)
                .map_err(|e| e.to_string())
        });
    let goldens = match parsed {
        Ok(goldens) => goldens,
        Err(message) => {
            let errors = FieldError::new("list", message).into();
            let html = page_html(&visitor, &state, &profile, Some(body.list), None, errors).await?;
            return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
        }
    };
    let (id, count) = (profile.id.clone(), goldens.len());
    state
        .write_for_store(&profile.id, move |s| s.put_goldens(&id, &goldens))
        .await
        .map_err(DashError::internal)?
        .ok_or(DashError::NotFound)?;
    visitor.notices.push(format!("{count} questions saved."));
    let html = page_html(&visitor, &state, &profile, None, None, Errors::default()).await?;
    Ok(ok(visitor, html))
}

/// `POST /dashboard/stores/{store}/golden/run`: replays them now.
pub async fn run(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    match crate::golden::replay(state.clone(), &profile.id).await {
        Ok(run) => {
            visitor.notices.push(format!(
                "Replayed: {} passed, {} failed.",
                run.passed, run.failed
            ));
            let html = page_html(
                &visitor,
                &state,
                &profile,
                None,
                Some(run),
                Errors::default(),
            )
            .await?;
            Ok(ok(visitor, html))
        }
        Err(error @ (ReplayError::Running | ReplayError::Busy | ReplayError::NotServed)) => {
            let error = FieldError::new(
                "",
                match error {
                    ReplayError::Running => {
                        "a replay of this store is already running; try again when it has ended"
                    }
                    ReplayError::Busy => {
                        "the node is replaying other stores' questions; try again in a minute"
                    }
                    _ => "the store is not being served right now; try again shortly",
                },
            );
            let html = page_html(&visitor, &state, &profile, None, None, error.into()).await?;
            Ok(visitor.page(StatusCode::CONFLICT, html))
        }
        Err(ReplayError::Storage(e)) => Err(DashError::internal(e)),
    }
}
