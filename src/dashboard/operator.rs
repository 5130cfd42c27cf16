//! The node operator's pages: every account with its state and number of
//! stores, suspension (which ends the account's sessions and stops serving
//! stores with no other active owner), and the outbox of a node with no
//! SMTP server. An operator sees no store page and no conversation.

use actix_web::{HttpRequest, HttpResponse, web};

use super::pages::{AccountRow, Chrome, MailRow, Operator, Outbox, render};
use super::visitor::{CsrfOnly, Visitor, form};
use super::{DashError, ok};
use crate::accounts::{AccountId, format_time};
use crate::email::OUTBOX_CAPACITY;
use crate::http::AppState;

fn require_operator(visitor: &Visitor) -> Result<AccountId, DashError> {
    let me = visitor.require_active()?;
    if !me.account.operator {
        return Err(DashError::Forbidden);
    }
    Ok(me.account.id)
}

pub async fn accounts(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let me = require_operator(&visitor)?;
    let mut rows = Vec::new();
    for account in state.storage.accounts().map_err(DashError::internal)? {
        let stores = state
            .storage
            .stores_of(account.id)
            .map_err(DashError::internal)?
            .len();
        let state_label = if account.suspended {
            "suspended"
        } else if account.deleted_at.is_some() {
            "deleted (grace period)"
        } else if !account.verified {
            "unverified"
        } else {
            "active"
        };
        rows.push(AccountRow {
            id: account.id.to_string(),
            name: account.name,
            email: account.email,
            created: format_time(account.created),
            stores,
            state: state_label,
            suspended: account.suspended,
            is_me: account.id == me,
        });
    }
    let html = render(&Operator {
        chrome: Chrome::of(&visitor, "Accounts"),
        accounts: rows,
    })?;
    Ok(ok(visitor, html))
}

/// Suspends or unsuspends an account (not the operator's own).
pub async fn set_suspended(
    state: &AppState,
    id: AccountId,
    suspended: bool,
) -> Result<bool, DashError> {
    let changed = state
        .storage
        .update_account(id, |a| a.suspended = suspended)
        .map_err(DashError::internal)?;
    if changed.is_none() {
        return Ok(false);
    }
    if suspended {
        state
            .storage
            .delete_sessions_of(id)
            .map_err(DashError::internal)?;
    }
    state.storage.flush().await.map_err(DashError::internal)?;
    super::stores::account_changed(state, id).await?;
    tracing::info!(account = %id, suspended, "account suspension changed");
    Ok(true)
}

async fn change(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
    suspended: bool,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let me = require_operator(&visitor)?;
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let id = AccountId::parse(&path).ok_or(DashError::NotFound)?;
    if id == me {
        return Err(DashError::Forbidden);
    }
    if !set_suspended(&state, id, suspended).await? {
        return Err(DashError::NotFound);
    }
    Ok(visitor.redirect("/dashboard/operator"))
}

pub async fn suspend(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    change(req, state, path, body, true).await
}

pub async fn unsuspend(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    change(req, state, path, body, false).await
}

/// The outbox: only while no SMTP server is configured, and only to an
/// operator account or a browser on the node's own machine (a loopback
/// peer with no forwarding proxy in between), which is where a fresh
/// node's first owner signs up.
pub async fn outbox(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    if !state.postman.uses_outbox() {
        return Err(DashError::NotFound);
    }
    let operator = visitor
        .signed_in
        .as_ref()
        .is_some_and(|me| me.account.operator && me.account.deleted_at.is_none());
    let forwarded =
        req.headers().contains_key("x-forwarded-for") || req.headers().contains_key("forwarded");
    // The Host must be the public URL's own: a page on a rebound DNS name
    // that points at 127.0.0.1 does not get in.
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let own_host = state
        .public_origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host));
    let local = req.peer_addr().is_some_and(|a| a.ip().is_loopback()) && !forwarded && own_host;
    if !operator && !local {
        return Err(DashError::NotFound);
    }
    let messages = state
        .postman
        .outbox()
        .into_iter()
        .map(|entry| MailRow {
            to: entry.email.to,
            subject: entry.email.subject,
            body: entry.email.body,
            time: format_time(entry.time),
        })
        .collect();
    let html = render(&Outbox {
        chrome: Chrome::of(&visitor, "Outbox"),
        messages,
        capacity: OUTBOX_CAPACITY,
    })?;
    Ok(ok(visitor, html))
}
