//! Cookie consent (the cookie policy): until a choice is made only the
//! strictly necessary cookies exist (session, CSRF, consent). The banner
//! offers accept all, reject all and customise; every page links here to
//! change or withdraw the choice. A decision lasts 12 months and is asked
//! again after them or when `dashboard.consent_policy_version` changes.
//! Each decision is kept (time, policy version, choices, account) as the
//! record of consent. Withdrawing functional consent removes the language
//! cookie at once and the page's script removes the stored theme.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::pages::{Chrome, ConsentPage, render};
use super::visitor::{Consent, Visitor, form, safe_back};
use super::{DashError, ok};
use crate::accounts::{ConsentRecord, format_time, now_secs};
use crate::http::AppState;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BackQuery {
    back: String,
}

pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<BackQuery>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let consent = visitor.consent;
    let html = render(&ConsentPage {
        chrome: Chrome::of(&visitor, "Cookie settings"),
        back: safe_back(&query.back).unwrap_or("/dashboard").to_owned(),
        functional: consent.functional,
        analytics: consent.analytics,
        decided: consent.decided.then(|| format_time(consent.time)),
        version: state.dashboard.consent_policy_version,
    })?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DecisionBody {
    csrf: String,
    choice: String,
    functional: String,
    analytics: String,
    back: String,
}

pub async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let body: DecisionBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let (functional, analytics) = match body.choice.as_str() {
        "accept" => (true, true),
        "reject" => (false, false),
        "custom" => (body.functional == "on", body.analytics == "on"),
        _ => return Err(DashError::BadForm),
    };
    if let Some(key) = crate::http::operator::client_key(&req, &state)
        && state.consent_decisions.check_key(&key).is_err()
    {
        return Err(DashError::TooMany(std::time::Duration::from_secs(3600)));
    }
    let record = ConsentRecord {
        id: Uuid::new_v4(),
        time: now_secs(),
        policy_version: state.dashboard.consent_policy_version,
        functional,
        analytics,
        account: visitor.signed_in.as_ref().map(|me| me.account.id),
    };
    state
        .storage
        .put_consent(&record)
        .map_err(DashError::internal)?;
    state.storage.flush().await.map_err(DashError::internal)?;
    let value = Consent::cookie_value(
        record.policy_version,
        functional,
        analytics,
        record.time,
        record.id,
    );
    visitor.set_consent(value, functional);
    let back = safe_back(&body.back).unwrap_or("/dashboard").to_owned();
    Ok(visitor.redirect(&back))
}
