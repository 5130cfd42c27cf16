//! Accounts: sign-up, email verification, sign-in and out, password reset,
//! email and password changes, deletion with a 30-day grace period and
//! restoration.
//!
//! Sign-up and "forgot password" answer the same whether or not an account
//! has the address (the mail says which), so neither tells a stranger who
//! has an account. Sign-in failures are throttled per account and per
//! client address; a locked-out key is refused before any password is
//! checked.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::pages::{
    self, AccountPage, Chrome, Errors, Forgot, Login, Message, Reset, Signup, SignupForm, render,
};
use super::visitor::{CsrfOnly, Visitor, form, safe_back};
use super::{DashError, ok};
use crate::accounts::validate::{self, FieldError};
use crate::accounts::{
    Account, AccountId, LinkPurpose, OneTimeLink, format_time, now_secs, password, secret,
};
use crate::email::Email;
use crate::http::AppState;
use crate::http::operator::client_key;

/// Refuses a request that would send more mail than its address may.
pub(super) fn mail_allowed(req: &HttpRequest, state: &AppState) -> Result<(), DashError> {
    if let Some(key) = client_key(req, state)
        && state.email_requests.check_key(&key).is_err()
    {
        return Err(DashError::TooMany(std::time::Duration::from_secs(3600)));
    }
    Ok(())
}

/// Makes a one-time link, keeps its hash, and mails it.
pub(super) async fn send_link(
    state: &AppState,
    to: &str,
    link: OneTimeLink,
    path: &str,
    subject: &str,
    text: &str,
) -> Result<(), DashError> {
    let token = secret::new_secret().map_err(DashError::internal)?;
    state
        .storage
        .put_link(&secret::digest(&token), &link)
        .map_err(DashError::internal)?;
    state.storage.flush().await.map_err(DashError::internal)?;
    let url = format!("{}{path}{token}", state.public_url);
    let body = format!("{text}\n\n{url}\n\nIf you did not ask for this, ignore this message.\n");
    state
        .postman
        .send(Email {
            to: to.to_owned(),
            subject: subject.to_owned(),
            body,
        })
        .await
        .map_err(DashError::internal)
}

fn hours(n: u64) -> u64 {
    n * 3600
}

pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let to = if visitor.signed_in.is_some() {
        "/dashboard/stores"
    } else {
        "/dashboard/login"
    };
    Ok(visitor.redirect(to))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BackQuery {
    back: String,
}

fn signup_page(visitor: &Visitor, form: SignupForm, errors: Errors) -> Result<String, DashError> {
    render(&Signup {
        chrome: Chrome::of(visitor, "Sign up"),
        form,
        errors,
        languages: pages::LANGUAGES,
    })
}

pub async fn signup_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let language = visitor.language.clone().unwrap_or_else(|| "en".into());
    let html = signup_page(
        &visitor,
        SignupForm {
            language,
            ..SignupForm::default()
        },
        Errors::default(),
    )?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignupBody {
    csrf: String,
    name: String,
    email: String,
    password: String,
    language: String,
}

pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let body: SignupBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let mut errors = Errors::default();
    let name = validate::name("name", &body.name)
        .map_err(|e| errors.push(e))
        .ok();
    let email = validate::email(&body.email)
        .map_err(|e| errors.push(e))
        .ok();
    let _ = validate::new_password("password", &body.password).map_err(|e| errors.push(e));
    let language = validate::language(&body.language)
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(name), Some(email), Some(language), true) =
        (name, email, language, errors.is_empty())
    else {
        let form = SignupForm {
            name: body.name,
            email: body.email,
            language: body.language,
        };
        let html = signup_page(&visitor, form, errors)?;
        return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
    };
    mail_allowed(&req, &state)?;
    visitor.remember_language(language.code());
    // The password is hashed whether or not the address has an account,
    // and the mail goes out after the answer: both paths take as long.
    let password = body.password;
    let hash = web::block(move || password::hash(&password))
        .await
        .map_err(DashError::internal)?
        .map_err(DashError::internal)?;
    let existing = state
        .storage
        .account_by_email(&email)
        .map_err(DashError::internal)?;
    let mail_state = state.clone();
    let to = email.clone();
    if existing.is_some() {
        // The same answer as a new sign-up; the mail tells the owner of the
        // address what happened.
        state.tasks.spawn(async move {
            let notice = Email {
                to,
                subject: "Someone tried to sign up with your address".into(),
                body: format!(
                    "Somebody (maybe you) tried to create a Mikabot account with this address, which already has one.\n\n\
                     Sign in: {0}/dashboard/login\nForgot your password? {0}/dashboard/forgot\n",
                    mail_state.public_url
                ),
            };
            if let Err(error) = mail_state.postman.send(notice).await {
                tracing::warn!(%error, "a sign-up notice was not sent");
            }
        });
    } else {
        let account = Account {
            id: AccountId::new(),
            name,
            email: email.clone(),
            password_hash: hash,
            language,
            verified: false,
            created: now_secs(),
            deleted_at: None,
            suspended: false,
            operator: false,
        };
        // Two sign-ups racing for one address: one account, the other gets
        // the same page.
        if state
            .storage
            .create_account(&account)
            .map_err(DashError::internal)?
            .is_ok()
        {
            tracing::info!(account = %account.id, "account created");
            state.tasks.spawn(async move {
                if let Err(error) = send_verification(&mail_state, &account).await {
                    tracing::warn!(%error, "a verification link was not sent");
                }
            });
        }
    }
    let html = render(&Message {
        chrome: Chrome::of(&visitor, "Check your email"),
        heading: "Check your email".into(),
        lines: vec![format!(
            "We sent a message to {email}. Follow its link to confirm your address, then sign in."
        )],
        link: Some(("/dashboard/login".into(), "Sign in".into())),
    })?;
    Ok(ok(visitor, html))
}

async fn send_verification(state: &AppState, account: &Account) -> Result<(), DashError> {
    let link = OneTimeLink {
        purpose: LinkPurpose::Verify,
        account: Some(account.id),
        expires: now_secs() + hours(state.dashboard.verify_link_hours),
    };
    send_link(
        state,
        &account.email,
        link,
        "/dashboard/verify/",
        "Confirm your email address",
        &format!(
            "Hello {}, confirm your email address for Mikabot:",
            account.name
        ),
    )
    .await
}

fn message(
    visitor: &Visitor,
    heading: &str,
    line: String,
    link: Option<(&str, &str)>,
) -> Result<String, DashError> {
    render(&Message {
        chrome: Chrome::of(visitor, heading),
        heading: heading.to_owned(),
        lines: vec![line],
        link: link.map(|(h, t)| (h.to_owned(), t.to_owned())),
    })
}

/// A link's token from the path, if it could be one.
fn token_digest(raw: &str) -> Option<[u8; 32]> {
    secret::well_formed(raw).then(|| secret::digest(raw))
}

pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let now = now_secs();
    let found = match token_digest(&path) {
        Some(digest) => state
            .storage
            .take_link_if(&digest, |l| {
                l.purpose == LinkPurpose::Verify && l.expires > now
            })
            .map_err(DashError::internal)?,
        None => None,
    };
    let account = match found {
        Some(OneTimeLink {
            account: Some(id), ..
        }) => state
            .storage
            .update_account(id, |a| a.verified = true)
            .map_err(DashError::internal)?,
        _ => None,
    };
    let Some(account) = account else {
        let html = message(
            &visitor,
            "This link does not work",
            "It was used already or has expired. Sign in to ask for a new one.".into(),
            Some(("/dashboard/login", "Sign in")),
        )?;
        return Ok(visitor.page(StatusCode::NOT_FOUND, html));
    };
    state.storage.flush().await.map_err(DashError::internal)?;
    let next = if visitor.signed_in.is_some() {
        ("/dashboard/stores", "Go to your stores")
    } else {
        ("/dashboard/login", "Sign in")
    };
    let html = message(
        &visitor,
        "Email confirmed",
        format!("{} is confirmed.", account.email),
        Some(next),
    )?;
    Ok(ok(visitor, html))
}

pub async fn resend_verification(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let me = visitor.require_active()?.account.clone();
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    if me.verified {
        visitor
            .notices
            .push(format!("{} is confirmed already.", me.email));
    } else {
        mail_allowed(&req, &state)?;
        // Only the newest verification link works.
        state
            .storage
            .remove_links_of(me.id, |p| *p == LinkPurpose::Verify)
            .map_err(DashError::internal)?;
        send_verification(&state, &me).await?;
        visitor
            .notices
            .push(format!("We sent a new link to {}.", me.email));
    }
    let html = account_page(&visitor, String::new(), Errors::default())?;
    Ok(ok(visitor, html))
}

fn login_page(
    visitor: &Visitor,
    email: String,
    back: &str,
    errors: Errors,
) -> Result<String, DashError> {
    render(&Login {
        chrome: Chrome::of(visitor, "Sign in"),
        email,
        back: safe_back(back).unwrap_or("").to_owned(),
        errors,
    })
}

pub async fn login_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<BackQuery>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let html = login_page(&visitor, String::new(), &query.back, Errors::default())?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginBody {
    csrf: String,
    email: String,
    password: String,
    back: String,
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<BackQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let body: LoginBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let address = client_key(&req, &state);
    if let Some(wait) = address.and_then(|key| state.login_by_address.lockout(&key)) {
        return Err(DashError::TooMany(wait));
    }
    let email = match validate::email(&body.email) {
        Ok(email) => email,
        Err(e) => {
            let html = login_page(&visitor, body.email, &body.back, e.into())?;
            return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
        }
    };
    let account_key = secret::digest(&email);
    if let Some(wait) = state.login_by_account.lockout(&account_key) {
        return Err(DashError::TooMany(wait));
    }
    let account = state
        .storage
        .account_by_email(&email)
        .map_err(DashError::internal)?;
    let stored = account
        .as_ref()
        .map_or_else(|| password::decoy().to_owned(), |a| a.password_hash.clone());
    let given = body.password;
    let matches = web::block(move || password::verify(&given, &stored))
        .await
        .map_err(DashError::internal)?;
    let account = account.filter(|_| matches);
    let Some(account) = account else {
        state.login_by_account.failed(account_key);
        if let Some(key) = address {
            state.login_by_address.failed(key);
        }
        let html = login_page(
            &visitor,
            email,
            &body.back,
            FieldError::new("", "Wrong email or password.").into(),
        )?;
        return Ok(visitor.page(StatusCode::UNAUTHORIZED, html));
    };
    if account.suspended {
        let html = login_page(
            &visitor,
            email,
            &body.back,
            FieldError::new("", "This account is suspended by the node's operator.").into(),
        )?;
        return Ok(visitor.page(StatusCode::FORBIDDEN, html));
    }
    let deleted = account.deleted_at.is_some();
    visitor.sign_in(&state, account)?;
    state.storage.flush().await.map_err(DashError::internal)?;
    let back = if body.back.is_empty() {
        query.into_inner().back
    } else {
        body.back
    };
    let to = if deleted {
        "/dashboard/account".to_owned()
    } else {
        safe_back(&back).unwrap_or("/dashboard/stores").to_owned()
    };
    Ok(visitor.redirect(&to))
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    visitor.sign_out(&state)?;
    state.storage.flush().await.map_err(DashError::internal)?;
    Ok(visitor.redirect("/dashboard/login"))
}

pub async fn logout_everywhere(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let me = visitor.require()?.account.id;
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let ended = state
        .storage
        .delete_sessions_of(me)
        .map_err(DashError::internal)?;
    visitor.sign_out(&state)?;
    state.storage.flush().await.map_err(DashError::internal)?;
    tracing::info!(account = %me, sessions = ended, "signed out everywhere");
    Ok(visitor.redirect("/dashboard/login"))
}

pub async fn forgot_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let html = render(&Forgot {
        chrome: Chrome::of(&visitor, "Reset your password"),
        email: String::new(),
        errors: Errors::default(),
    })?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EmailBody {
    csrf: String,
    email: String,
}

pub async fn forgot(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let body: EmailBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let email = match validate::email(&body.email) {
        Ok(email) => email,
        Err(e) => {
            let html = render(&Forgot {
                chrome: Chrome::of(&visitor, "Reset your password"),
                email: body.email,
                errors: e.into(),
            })?;
            return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
        }
    };
    mail_allowed(&req, &state)?;
    // Looked up and mailed after the answer, which is the same either way
    // and as quick.
    let mail_state = state.clone();
    let address = email.clone();
    state.tasks.spawn(async move {
        if let Err(error) = send_reset(&mail_state, &address).await {
            tracing::warn!(%error, "a reset link was not sent");
        }
    });
    let html = message(
        &visitor,
        "Check your email",
        format!("If {email} has an account, we sent it a link to choose a new password."),
        None,
    )?;
    Ok(ok(visitor, html))
}

/// Mails a reset link to `email`'s account, if it has one and is not
/// suspended; only the newest reset link works.
async fn send_reset(state: &AppState, email: &str) -> Result<(), DashError> {
    let Some(account) = state
        .storage
        .account_by_email(email)
        .map_err(DashError::internal)?
        .filter(|a| !a.suspended)
    else {
        return Ok(());
    };
    state
        .storage
        .remove_links_of(account.id, |p| *p == LinkPurpose::Reset)
        .map_err(DashError::internal)?;
    let link = OneTimeLink {
        purpose: LinkPurpose::Reset,
        account: Some(account.id),
        expires: now_secs() + state.dashboard.reset_link_minutes * 60,
    };
    send_link(
        state,
        &account.email,
        link,
        "/dashboard/reset/",
        "Reset your Mikabot password",
        "Choose a new password for Mikabot:",
    )
    .await
}

/// The reset link's account, if the link is live.
fn reset_link(state: &AppState, raw: &str) -> Result<Option<AccountId>, DashError> {
    let Some(digest) = token_digest(raw) else {
        return Ok(None);
    };
    Ok(
        match state.storage.link(&digest).map_err(DashError::internal)? {
            Some(OneTimeLink {
                purpose: LinkPurpose::Reset,
                account: Some(id),
                expires,
            }) if expires > now_secs() => Some(id),
            _ => None,
        },
    )
}

fn dead_link(visitor: Visitor) -> Result<HttpResponse, DashError> {
    let html = message(
        &visitor,
        "This link does not work",
        "It was used already or has expired. Ask for a new one.".into(),
        Some(("/dashboard/forgot", "Reset your password")),
    )?;
    Ok(visitor.page(StatusCode::NOT_FOUND, html))
}

pub async fn reset_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    if reset_link(&state, &path)?.is_none() {
        return dead_link(visitor);
    }
    let html = render(&Reset {
        chrome: Chrome::of(&visitor, "Choose a new password"),
        token: path.into_inner(),
        errors: Errors::default(),
    })?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordBody {
    csrf: String,
    password: String,
}

pub async fn reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let body: PasswordBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    if reset_link(&state, &path)?.is_none() {
        return dead_link(visitor);
    }
    if let Err(e) = validate::new_password("password", &body.password) {
        let html = render(&Reset {
            chrome: Chrome::of(&visitor, "Choose a new password"),
            token: path.into_inner(),
            errors: e.into(),
        })?;
        return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
    }
    // Taken now: of two requests with one link, one sets the password.
    let Some(digest) = token_digest(&path) else {
        return dead_link(visitor);
    };
    let link = state
        .storage
        .take_link_if(&digest, |l| l.purpose == LinkPurpose::Reset)
        .map_err(DashError::internal)?;
    let Some(OneTimeLink {
        account: Some(id), ..
    }) = link
    else {
        return dead_link(visitor);
    };
    let password = body.password;
    let hash = web::block(move || password::hash(&password))
        .await
        .map_err(DashError::internal)?
        .map_err(DashError::internal)?;
    // Following the link proves the address too.
    let Some(account) = state
        .storage
        .update_account(id, |a| {
            a.password_hash = hash.clone();
            a.verified = true;
        })
        .map_err(DashError::internal)?
    else {
        return dead_link(visitor);
    };
    // Whatever else was pending (an email change asked for by whoever knew
    // the old password) dies with it.
    state
        .storage
        .remove_links_of(account.id, |_| true)
        .map_err(DashError::internal)?;
    state
        .storage
        .delete_sessions_of(account.id)
        .map_err(DashError::internal)?;
    visitor.sign_out(&state)?;
    state.storage.flush().await.map_err(DashError::internal)?;
    tracing::info!(account = %account.id, "password reset; every session ended");
    let html = message(
        &visitor,
        "Password changed",
        "Every session of your account was signed out. Sign in with the new password.".into(),
        Some(("/dashboard/login", "Sign in")),
    )?;
    Ok(ok(visitor, html))
}

fn account_page(visitor: &Visitor, new_email: String, errors: Errors) -> Result<String, DashError> {
    let me = visitor.require()?;
    render(&AccountPage {
        chrome: Chrome::of(visitor, "Your account"),
        email: me.account.email.clone(),
        verified: me.account.verified,
        new_email,
        restorable_until: me.account.restorable_until().map(format_time),
        errors,
    })
}

pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let html = account_page(&visitor, String::new(), Errors::default())?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ChangeEmailBody {
    csrf: String,
    email: String,
    password: String,
}

/// Whether `given` is the account's password (checked on a blocking
/// thread). Failures count against the account's sign-in throttle, so a
/// stolen session cannot guess the password faster than sign-in can.
async fn password_matches(
    state: &AppState,
    account: &Account,
    given: String,
) -> Result<bool, DashError> {
    let key = secret::digest(&account.email);
    if let Some(wait) = state.login_by_account.lockout(&key) {
        return Err(DashError::TooMany(wait));
    }
    let stored = account.password_hash.clone();
    let matches = web::block(move || password::verify(&given, &stored))
        .await
        .map_err(DashError::internal)?;
    if !matches {
        state.login_by_account.failed(key);
    }
    Ok(matches)
}

pub async fn change_email(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let me = visitor.require_active()?.account.clone();
    let body: ChangeEmailBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let refuse = |visitor: Visitor,
                  email: String,
                  error: FieldError,
                  status: StatusCode|
     -> Result<HttpResponse, DashError> {
        let html = account_page(&visitor, email, error.into())?;
        Ok(visitor.page(status, html))
    };
    let email = match validate::email(&body.email) {
        Ok(email) => email,
        Err(e) => return refuse(visitor, body.email, e, StatusCode::UNPROCESSABLE_ENTITY),
    };
    if !password_matches(&state, &me, body.password).await? {
        return refuse(
            visitor,
            email,
            FieldError::new("email_password", "Wrong password."),
            StatusCode::UNAUTHORIZED,
        );
    }
    mail_allowed(&req, &state)?;
    let link = OneTimeLink {
        purpose: LinkPurpose::ChangeEmail {
            email: email.clone(),
        },
        account: Some(me.id),
        expires: now_secs() + hours(state.dashboard.verify_link_hours),
    };
    send_link(
        &state,
        &email,
        link,
        "/dashboard/email/",
        "Confirm your new email address",
        "Confirm this address for your Mikabot account:",
    )
    .await?;
    visitor.notices.push(format!(
        "We sent a link to {email}; your address changes when you follow it."
    ));
    let html = account_page(&visitor, String::new(), Errors::default())?;
    Ok(ok(visitor, html))
}

pub async fn confirm_email(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    // Confirmed only by the account's own signed-in browser: a link mailed
    // to a victim cannot bind their address to somebody else's account.
    let me = visitor.require_active()?.account.id;
    let now = now_secs();
    let link = match token_digest(&path) {
        Some(digest) => state
            .storage
            .take_link_if(&digest, |l| {
                matches!(l.purpose, LinkPurpose::ChangeEmail { .. })
                    && l.account == Some(me)
                    && l.expires > now
            })
            .map_err(DashError::internal)?,
        None => None,
    };
    let (account, email) = match link {
        Some(OneTimeLink {
            purpose: LinkPurpose::ChangeEmail { email },
            account: Some(id),
            expires,
        }) if expires > now_secs() => (
            state.storage.account(id).map_err(DashError::internal)?,
            email,
        ),
        _ => (None, String::new()),
    };
    let Some(account) = account else {
        let html = message(
            &visitor,
            "This link does not work",
            "It was used already or has expired.".into(),
            Some(("/dashboard/account", "Your account")),
        )?;
        return Ok(visitor.page(StatusCode::NOT_FOUND, html));
    };
    if state
        .storage
        .change_email(&account, &email)
        .map_err(DashError::internal)?
        .is_err()
    {
        let html = message(
            &visitor,
            "Address in use",
            format!("{email} belongs to another account now."),
            Some(("/dashboard/account", "Your account")),
        )?;
        return Ok(visitor.page(StatusCode::CONFLICT, html));
    }
    state.storage.flush().await.map_err(DashError::internal)?;
    // The old address hears of it, in case it was not its owner's doing.
    let notice = Email {
        to: account.email.clone(),
        subject: "Your Mikabot address was changed".into(),
        body: format!(
            "The address of your Mikabot account was changed to {email}.\n\nIf you did not do this, reset your password: {}/dashboard/forgot\n",
            state.public_url
        ),
    };
    if let Err(error) = state.postman.send(notice).await {
        tracing::warn!(%error, "the old address could not be told of the change");
    }
    let html = message(
        &visitor,
        "Email changed",
        format!("Your account's address is now {email}."),
        Some(("/dashboard/account", "Your account")),
    )?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ChangePasswordBody {
    csrf: String,
    current: String,
    password: String,
}

pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let me = visitor.require_active()?.account.clone();
    let body: ChangePasswordBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    if let Err(e) = validate::new_password("password", &body.password) {
        let html = account_page(&visitor, String::new(), e.into())?;
        return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
    }
    if !password_matches(&state, &me, body.current).await? {
        let html = account_page(
            &visitor,
            String::new(),
            FieldError::new("current", "Wrong password.").into(),
        )?;
        return Ok(visitor.page(StatusCode::UNAUTHORIZED, html));
    }
    let password = body.password;
    let hash = web::block(move || password::hash(&password))
        .await
        .map_err(DashError::internal)?
        .map_err(DashError::internal)?;
    let Some(me) = state
        .storage
        .update_account(me.id, |a| a.password_hash = hash.clone())
        .map_err(DashError::internal)?
    else {
        return Err(DashError::SignIn("/dashboard/account".into()));
    };
    state
        .storage
        .remove_links_of(me.id, |_| true)
        .map_err(DashError::internal)?;
    // Every other browser is signed out; this one gets a new session,
    // unless the account was suspended meanwhile.
    state
        .storage
        .delete_sessions_of(me.id)
        .map_err(DashError::internal)?;
    if me.suspended || me.deleted_at.is_some() {
        visitor.sign_out(&state)?;
        state.storage.flush().await.map_err(DashError::internal)?;
        return Ok(visitor.redirect("/dashboard/login"));
    }
    visitor.sign_in(&state, me)?;
    state.storage.flush().await.map_err(DashError::internal)?;
    visitor
        .notices
        .push("Password changed. Every other session was signed out.".into());
    let html = account_page(&visitor, String::new(), Errors::default())?;
    Ok(ok(visitor, html))
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let me = visitor.require_active()?.account.clone();
    let body: PasswordBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    if !password_matches(&state, &me, body.password).await? {
        let html = account_page(
            &visitor,
            String::new(),
            FieldError::new("delete_password", "Wrong password.").into(),
        )?;
        return Ok(visitor.page(StatusCode::UNAUTHORIZED, html));
    }
    let now = now_secs();
    let Some(me) = state
        .storage
        .update_account(me.id, |a| a.deleted_at = Some(now))
        .map_err(DashError::internal)?
    else {
        return Err(DashError::SignIn("/dashboard/account".into()));
    };
    state.storage.flush().await.map_err(DashError::internal)?;
    super::stores::account_changed(&state, me.id).await?;
    tracing::info!(account = %me.id, "account deleted; restorable for 30 days");
    if let Some(signed_in) = visitor.signed_in.as_mut() {
        signed_in.account = me;
    }
    Ok(visitor.redirect("/dashboard/account"))
}

pub async fn restore(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let me = visitor.require()?.account.clone();
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let restorable = me
        .restorable_until()
        .is_some_and(|until| now_secs() < until);
    if restorable {
        let Some(me) = state
            .storage
            .update_account(me.id, |a| a.deleted_at = None)
            .map_err(DashError::internal)?
        else {
            return Err(DashError::SignIn("/dashboard/account".into()));
        };
        state.storage.flush().await.map_err(DashError::internal)?;
        super::stores::account_changed(&state, me.id).await?;
        tracing::info!(account = %me.id, "account restored");
        if let Some(signed_in) = visitor.signed_in.as_mut() {
            signed_in.account = me;
        }
        visitor.notices.push("Your account is restored.".into());
        let html = account_page(&visitor, String::new(), Errors::default())?;
        return Ok(ok(visitor, html));
    }
    Ok(visitor.redirect("/dashboard/stores"))
}
