//! The store's golden questions in the dashboard: the list (a question
//! added with its expectations from a form, one removed, or the whole list
//! edited as JSON), the last replay with what changed, and the button that
//! replays them now. Owners only; every change is a CSRF-checked post.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use mikabot_actors::catalog::StoreProfile;
use mikabot_actors::golden::{self, Golden, Outcome};
use serde::Deserialize;

use mikabot_actors::language::Language;

use super::pages::{Chrome, Errors, GoldenForm, GoldenPage, GoldenRow, QuestionRow, render};
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
    let form = AddBody::default();
    page_with(visitor, state, profile, (list, run), errors, form).await
}

/// What one stored question expects, in words.
fn expects(golden: &Golden, currency: mikabot_actors::catalog::Currency) -> String {
    let e = &golden.expect;
    let amount = |minor: i64| mikabot_actors::catalog::Money { minor, currency }.decimal();
    let mut said: Vec<String> = Vec::new();
    if !e.products.is_empty() {
        said.push(format!("shows {}", e.products.join(", ")));
    }
    if let Some(language) = e.language {
        said.push(format!("answers in {}", language.english_name()));
    }
    match (e.min_price, e.max_price) {
        (Some(lo), Some(hi)) => said.push(format!("cards from {} to {}", amount(lo), amount(hi))),
        (Some(lo), None) => said.push(format!("cards from {}", amount(lo))),
        (None, Some(hi)) => said.push(format!("cards up to {}", amount(hi))),
        (None, None) => {}
    }
    if !e.mentions.is_empty() {
        said.push(format!("mentions {}", e.mentions.join(", ")));
    }
    if e.handover {
        said.push("hands over to a person".into());
    }
    if said.is_empty() {
        "answers".into()
    } else {
        said.join("; ")
    }
}

/// The page with the add form as `form` holds it.
async fn page_with(
    visitor: &Visitor,
    state: &AppState,
    profile: &StoreProfile,
    (list, run): (Option<String>, Option<crate::golden::Replay>),
    errors: Errors,
    form: AddBody,
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
    let questions = goldens
        .iter()
        .enumerate()
        .map(|(i, g)| QuestionRow {
            n: i + 1,
            question: g.question.clone(),
            expects: expects(g, profile.currency),
        })
        .collect();
    render(&GoldenPage {
        chrome: Chrome::of(visitor, format!("{}: golden questions", profile.name)),
        store: head(profile),
        questions,
        form: GoldenForm {
            question: form.question,
            language: form.language,
            products: form.products,
            min_price: form.min_price,
            max_price: form.max_price,
            mentions: form.mentions,
            handover: !form.handover.is_empty(),
        },
        languages: Language::ALL
            .iter()
            .map(|l| (l.code(), l.english_name()))
            .collect(),
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

/// The add form's fields, as typed.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct AddBody {
    csrf: String,
    question: String,
    language: String,
    products: String,
    min_price: String,
    max_price: String,
    mentions: String,
    handover: String,
}

/// Words of a comma-separated field, trimmed, empty ones left out.
fn listed(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The question the form describes, or the field it is wrong in and why.
fn from_form(
    body: &AddBody,
    currency: mikabot_actors::catalog::Currency,
) -> Result<Golden, FieldError> {
    let price = |field: &'static str, text: &str| -> Result<Option<i64>, FieldError> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        mikabot_actors::catalog::Money::parse(text, currency)
            .map(|money| Some(money.minor))
            .map_err(|e| FieldError::new(field, format!("{e}; write an amount such as 89.95")))
    };
    let language = match body.language.trim() {
        "" => None,
        tag => Some(
            Language::from_tag(tag)
                .ok_or_else(|| FieldError::new("language", "choose one of the languages listed"))?,
        ),
    };
    Ok(Golden {
        question: body.question.trim().to_owned(),
        language: None,
        expect: golden::Expect {
            products: listed(&body.products),
            language,
            min_price: price("min_price", &body.min_price)?,
            max_price: price("max_price", &body.max_price)?,
            mentions: listed(&body.mentions),
            handover: !body.handover.is_empty(),
        },
    })
}

/// The add form's field a problem is in.
fn field_of(problem: golden::QuestionProblem) -> &'static str {
    match problem {
        golden::QuestionProblem::Empty | golden::QuestionProblem::TooLong => "question",
        golden::QuestionProblem::PriceRange | golden::QuestionProblem::NegativePrice => "max_price",
        golden::QuestionProblem::Products => "products",
        golden::QuestionProblem::Mentions => "mentions",
    }
}

/// `POST /dashboard/stores/{store}/golden/add`: adds one question.
pub async fn add(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let body: AddBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let question = from_form(&body, profile.currency).and_then(|question| {
        golden::check_question(&question)
            .map(|()| question)
            .map_err(|problem| FieldError::new(field_of(problem), problem.to_string()))
    });
    let added = match question {
        Err(error) => Err(error),
        Ok(question) => {
            let id = profile.id.clone();
            // Read and written under the store-change lock: two owners
            // adding at once both keep their question.
            let changing = state.profile_changes.lock().await;
            let added = state
                .write_for_store(&changing, &profile.id, move |s| {
                    let mut goldens = s.goldens(&id)?;
                    if goldens.len() >= golden::MAX_GOLDENS {
                        return Ok(None);
                    }
                    goldens.push(question);
                    s.put_goldens(&id, &goldens)?;
                    Ok(Some(goldens.len()))
                })
                .await
                .map_err(DashError::internal)?
                .ok_or(DashError::NotFound)?;
            drop(changing);
            added.ok_or_else(|| {
                FieldError::new("", format!("at most {} questions", golden::MAX_GOLDENS))
            })
        }
    };
    match added {
        Ok(count) => {
            visitor
                .notices
                .push(format!("Question added; {count} in all."));
            let html = page_html(&visitor, &state, &profile, None, None, Errors::default()).await?;
            Ok(ok(visitor, html))
        }
        Err(error) => {
            let html =
                page_with(&visitor, &state, &profile, (None, None), error.into(), body).await?;
            Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RemoveBody {
    csrf: String,
    /// The question as the page showed it: a list changed meanwhile is not
    /// cut in the wrong place.
    question: String,
}

/// `POST /dashboard/stores/{store}/golden/{n}/delete`: removes question
/// `n` (from 1), if it is still the one the page showed.
pub async fn remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, usize)>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let (store, n) = path.into_inner();
    let (_, profile, _) = member(&visitor, &state, &store, Role::Owner)?;
    let body: RemoveBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let id = profile.id.clone();
    let changing = state.profile_changes.lock().await;
    let removed = state
        .write_for_store(&changing, &profile.id, move |s| {
            let mut goldens = s.goldens(&id)?;
            let at = n
                .checked_sub(1)
                .filter(|i| goldens.get(*i).is_some_and(|g| g.question == body.question));
            let Some(at) = at else { return Ok(false) };
            goldens.remove(at);
            s.put_goldens(&id, &goldens)?;
            Ok(true)
        })
        .await
        .map_err(DashError::internal)?
        .ok_or(DashError::NotFound)?;
    drop(changing);
    if !removed {
        return Err(DashError::NotFound);
    }
    visitor.notices.push("Question removed.".into());
    let html = page_html(&visitor, &state, &profile, None, None, Errors::default()).await?;
    Ok(ok(visitor, html))
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
    let changing = state.profile_changes.lock().await;
    state
        .write_for_store(&changing, &profile.id, move |s| {
            s.put_goldens(&id, &goldens)
        })
        .await
        .map_err(DashError::internal)?
        .ok_or(DashError::NotFound)?;
    drop(changing);
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
