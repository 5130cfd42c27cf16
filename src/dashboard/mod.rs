//! The owners' dashboard at `/dashboard`: accounts, stores and their
//! settings, catalog upload, members and roles, per-store API tokens,
//! cookie consent, and the operator's account list and outbox. Pages are
//! rendered on the server from compile-time templates (`templates/`, askama)
//! with two small script modules embedded in the binary (`static/`); there
//! is no build step.
//!
//! Every route is declared once in [`ROUTES`] with who may use it; the
//! tenant-isolation test walks that table, so a route added without an
//! isolation case fails the tests. Every state change is a POST (or the
//! upload's PUT) that carries the visitor's CSRF token ([`visitor`]).

mod account;
mod assets;
mod consent;
mod conversations;
mod desk;
mod desk_wire;
mod golden;
mod knowledge;
mod members;
mod operator;
mod pages;
mod stores;
pub mod tokens;
pub mod visitor;

pub use operator::set_suspended;
pub use stores::{NewStore, create_store};

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, ResponseError, web};

use self::pages::{Chrome, Message, render};
use crate::accounts::Role;

/// Who may use a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone (sign-in, sign-up, links from email, static files).
    Public,
    /// A signed-in account.
    Account,
    /// A signed-in operator account.
    Operator,
    /// A member of the store in the path with at least this role.
    Store(Role),
}

/// One route of the dashboard.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

macro_rules! dashboard_routes {
    ($($method:ident $path:literal => $handler:path, $access:expr;)*) => {
        /// Every dashboard route, with its access rule.
        pub const ROUTES: &[Route] = &[
            $(Route { method: stringify!($method), path: $path, access: $access },)*
        ];

        /// Mounts every dashboard route.
        pub fn mount(config: &mut web::ServiceConfig) {
            $(config.route($path, web::route().method(Method::$method).to($handler));)*
        }
    };
}

use Access::{Account, Operator, Public, Store};

dashboard_routes! {
    GET "/dashboard" => account::home, Public;
    GET "/dashboard/static/{file}" => assets::file, Public;
    GET "/dashboard/signup" => account::signup_form, Public;
    POST "/dashboard/signup" => account::signup, Public;
    GET "/dashboard/verify/{token}" => account::verify, Public;
    POST "/dashboard/verify/resend" => account::resend_verification, Account;
    GET "/dashboard/login" => account::login_form, Public;
    POST "/dashboard/login" => account::login, Public;
    POST "/dashboard/logout" => account::logout, Public;
    POST "/dashboard/logout-everywhere" => account::logout_everywhere, Account;
    GET "/dashboard/forgot" => account::forgot_form, Public;
    POST "/dashboard/forgot" => account::forgot, Public;
    GET "/dashboard/reset/{token}" => account::reset_form, Public;
    POST "/dashboard/reset/{token}" => account::reset, Public;
    GET "/dashboard/email/{token}" => account::confirm_email, Public;
    GET "/dashboard/account" => account::page, Account;
    POST "/dashboard/account/email" => account::change_email, Account;
    POST "/dashboard/account/password" => account::change_password, Account;
    POST "/dashboard/account/delete" => account::delete, Account;
    POST "/dashboard/account/restore" => account::restore, Account;
    GET "/dashboard/account/export" => conversations::account_export, Account;
    GET "/dashboard/consent" => consent::page, Public;
    POST "/dashboard/consent" => consent::decide, Public;
    GET "/dashboard/stores" => stores::list, Account;
    GET "/dashboard/stores/new" => stores::new_form, Account;
    POST "/dashboard/stores/new" => stores::create, Account;
    GET "/dashboard/stores/{store}" => stores::overview, Store(Role::Viewer);
    GET "/dashboard/stores/{store}/preview" => stores::preview, Store(Role::Viewer);
    GET "/dashboard/stores/{store}/live" => desk::page, Store(Role::Agent);
    GET "/dashboard/stores/{store}/desk/socket" => desk::socket, Store(Role::Agent);
    GET "/dashboard/stores/{store}/conversations" => conversations::list, Store(Role::Agent);
    POST "/dashboard/stores/{store}/conversations/delete" => conversations::delete_selection, Store(Role::Owner);
    GET "/dashboard/stores/{store}/conversations/{conversation}" => conversations::show, Store(Role::Agent);
    POST "/dashboard/stores/{store}/conversations/{conversation}/delete" => conversations::delete, Store(Role::Owner);
    POST "/dashboard/stores/{store}/conversations/{conversation}/restrict" => conversations::restrict, Store(Role::Owner);
    GET "/dashboard/stores/{store}/privacy" => conversations::privacy, Store(Role::Owner);
    POST "/dashboard/stores/{store}/privacy/erase" => conversations::erase, Store(Role::Owner);
    GET "/dashboard/stores/{store}/export" => conversations::export, Store(Role::Owner);
    GET "/dashboard/stores/{store}/knowledge" => knowledge::list, Store(Role::Owner);
    POST "/dashboard/stores/{store}/knowledge" => knowledge::save, Store(Role::Owner);
    GET "/dashboard/stores/{store}/knowledge/{slug}" => knowledge::edit, Store(Role::Owner);
    POST "/dashboard/stores/{store}/knowledge/{slug}/delete" => knowledge::delete, Store(Role::Owner);
    GET "/dashboard/stores/{store}/golden" => golden::page, Store(Role::Owner);
    POST "/dashboard/stores/{store}/golden" => golden::save, Store(Role::Owner);
    POST "/dashboard/stores/{store}/golden/run" => golden::run, Store(Role::Owner);
    POST "/dashboard/stores/{store}/golden/add" => golden::add, Store(Role::Owner);
    POST "/dashboard/stores/{store}/golden/{n}/delete" => golden::remove, Store(Role::Owner);
    GET "/dashboard/stores/{store}/settings" => stores::settings_form, Store(Role::Owner);
    POST "/dashboard/stores/{store}/settings" => stores::save_settings, Store(Role::Owner);
    POST "/dashboard/stores/{store}/delete" => stores::delete, Store(Role::Owner);
    PUT "/dashboard/stores/{store}/catalog" => stores::upload, Store(Role::Owner);
    GET "/dashboard/stores/{store}/tokens" => stores::tokens, Store(Role::Owner);
    POST "/dashboard/stores/{store}/tokens" => stores::create_token, Store(Role::Owner);
    POST "/dashboard/stores/{store}/tokens/{token}/revoke" => stores::revoke_token, Store(Role::Owner);
    GET "/dashboard/stores/{store}/members" => members::list, Store(Role::Owner);
    POST "/dashboard/stores/{store}/members/invite" => members::invite, Store(Role::Owner);
    POST "/dashboard/stores/{store}/members/{account}/remove" => members::remove, Store(Role::Owner);
    POST "/dashboard/stores/{store}/members/{account}/role" => members::change_role, Store(Role::Owner);
    POST "/dashboard/stores/{store}/invitations/{invitation}/revoke" => members::revoke_invitation, Store(Role::Owner);
    GET "/dashboard/invites/{token}" => members::invitation, Public;
    POST "/dashboard/invites/{token}" => members::accept, Account;
    GET "/dashboard/operator" => operator::accounts, Operator;
    POST "/dashboard/operator/accounts/{account}/suspend" => operator::suspend, Operator;
    POST "/dashboard/operator/accounts/{account}/unsuspend" => operator::unsuspend, Operator;
    GET "/dashboard/outbox" => operator::outbox, Public;
}

/// Why a dashboard request was refused, as a page.
#[derive(Debug, thiserror::Error)]
pub enum DashError {
    #[error("sign in first")]
    SignIn(String),
    #[error("the account is deleted")]
    Deleted,
    #[error("not found")]
    NotFound,
    #[error("not allowed")]
    Forbidden,
    #[error("the form's protection token is missing or wrong")]
    Csrf,
    #[error("the form was not understood")]
    BadForm,
    #[error("too many attempts")]
    TooMany(std::time::Duration),
    #[error("internal error {0}")]
    Internal(String),
}

impl DashError {
    /// The node failed: the cause is logged under a request id the page
    /// shows, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(request_id = %request_id, error = %cause, "dashboard request failed");
        Self::Internal(request_id)
    }

    /// The stable code of this refusal (also in the page, for support).
    pub fn code(&self) -> &'static str {
        match self {
            Self::SignIn(_) => "sign_in_required",
            Self::Deleted => "account_deleted",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Csrf => "csrf_failed",
            Self::BadForm => "bad_form",
            Self::TooMany(_) => "too_many_attempts",
            Self::Internal(_) => "internal",
        }
    }
}

impl ResponseError for DashError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn(_) | Self::Deleted => StatusCode::SEE_OTHER,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::BadForm => StatusCode::BAD_REQUEST,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let location = match self {
            Self::SignIn(back) => Some(format!("/dashboard/login?back={}", percent_encode(back))),
            Self::Deleted => Some("/dashboard/account".to_owned()),
            _ => None,
        };
        if let Some(location) = location {
            return HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, location))
                .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
                .finish();
        }
        let (heading, line) = match self {
            Self::NotFound => ("Not found", "There is nothing here, or it is not yours to see.".to_owned()),
            Self::Forbidden => ("Not allowed", "Your role on this store does not allow this.".to_owned()),
            Self::Csrf => (
                "This form has expired",
                "Reload the page and try again. (The form's protection token was missing or wrong, or it came from another site.)".to_owned(),
            ),
            Self::BadForm => ("The form was not understood", "Reload the page and try again.".to_owned()),
            Self::TooMany(wait) => (
                "Too many attempts",
                format!("Try again in {} minutes.", wait.as_secs() / 60 + 1),
            ),
            Self::Internal(id) => (
                "Something went wrong",
                format!("The node could not handle this request. Its operator can look up request id {id}."),
            ),
            Self::SignIn(_) | Self::Deleted => ("", String::new()),
        };
        let page = Message {
            chrome: Chrome::bare(heading),
            heading: heading.to_owned(),
            lines: vec![line, format!("Code: {}", self.code())],
            link: Some(("/dashboard".into(), "Back to the dashboard".into())),
        };
        let mut response = HttpResponse::build(self.status_code());
        if let Self::TooMany(wait) = self {
            response.insert_header((
                actix_web::http::header::RETRY_AFTER,
                (wait.as_secs() + 1).to_string(),
            ));
        }
        response
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
            .content_type("text/html; charset=utf-8")
            .body(render(&page).unwrap_or_else(|_| self.to_string()))
    }
}

/// Percent-encodes a path and query for a `back=` parameter.
fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A page with status 200.
fn ok(visitor: visitor::Visitor, html: String) -> HttpResponse {
    visitor.page(StatusCode::OK, html)
}

/// Whether a store is served: it has an owner whose account is active, or
/// no members at all (a store made through the operator API before
/// accounts existed).
pub fn served(
    storage: &crate::storage::Storage,
    store: &mikabot_actors::ids::StoreId,
) -> Result<bool, crate::storage::StorageError> {
    let members = storage.members(store)?;
    if members.is_empty() {
        return Ok(true);
    }
    for (account, role) in members {
        if role == Role::Owner
            && let Some(a) = storage.account(account)?
            && a.deleted_at.is_none()
            && !a.suspended
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Cookie-consent decisions one client address may record an hour (each is
/// a record on disk).
pub const CONSENT_DECISIONS_PER_HOUR: u32 = 30;

/// Periodic upkeep: forgets idle throttle entries, removes expired sessions
/// and links. The scans run on a blocking thread and are awaited, so the
/// tracked task that calls this holds no storage handle once it returns (a
/// stopping node waits for it, then closes the database).
pub async fn housekeeping(state: &web::Data<crate::http::AppState>) {
    state.consent_decisions.retain_recent();
    state.login_by_account.sweep();
    state.login_by_address.sweep();
    state.email_requests.retain_recent();
    let idle = state.dashboard.session_idle_minutes * 60;
    let unverified = state.dashboard.unverified_account_days * 24 * 3600;
    let absolute = state.dashboard.session_absolute_hours * 3600;
    let swept = state.storage.blocking(move |storage| {
        let now = crate::accounts::now_secs();
        let swept = storage.sweep_sessions(|created, seen| {
            now.saturating_sub(seen) >= idle || now.saturating_sub(created) >= absolute
        });
        let links = storage.sweep_links(now);
        // Sign-ups never confirmed are dropped after a while, so that
        // addresses cannot be squatted and the accounts tree does not grow
        // with abandoned sign-ups.
        let stale = storage.accounts().and_then(|accounts| {
            let mut removed = 0;
            for account in accounts {
                if !account.verified && now.saturating_sub(account.created) >= unverified {
                    removed += usize::from(storage.remove_unverified(account.id)?);
                }
            }
            Ok(removed)
        });
        if let Ok(removed) = stale
            && removed > 0
        {
            tracing::info!(accounts = removed, "unconfirmed sign-ups removed");
        }
        swept.and(links).and(stale.map(|_| ()))
    });
    if let Err(error) = swept.await {
        tracing::warn!(%error, "sweeping expired sessions and links failed");
    }
}
