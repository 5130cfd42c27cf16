//! Who is asking: the dashboard session behind a request's cookie, its CSRF
//! token, its cookie-consent state, and the cookies a response must set.
//!
//! - **Session**: `mikabot_session` holds a random secret; sled holds its
//!   SHA-256 with the account. It ends after `dashboard.session_idle_minutes`
//!   unused or `dashboard.session_absolute_hours` after sign-in, at sign-out,
//!   on "sign out everywhere", a password change or a suspension. Sign-in
//!   always makes a new one (no fixation).
//! - **CSRF**: a signed-in visitor's token is its session's synchronizer
//!   token; before sign-in it is the `mikabot_csrf` cookie's value (double
//!   submit). Every state change carries it in a `csrf` form field or an
//!   `X-CSRF-Token` header, and a cross-site `Origin` or `Sec-Fetch-Site`
//!   is refused besides.
//! - **Consent**: `mikabot_consent` says which optional cookies the visitor
//!   allowed, under which policy version and when (12 months).

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::DashError;
use crate::accounts::secret;
use crate::accounts::{Account, DashboardSession, now_secs};
use crate::http::AppState;

pub const SESSION_COOKIE: &str = "mikabot_session";
pub const CSRF_COOKIE: &str = "mikabot_csrf";
pub const CONSENT_COOKIE: &str = "mikabot_consent";
/// Functional: the language the visitor chose, for forms' defaults.
pub const LANGUAGE_COOKIE: &str = "mikabot_lang";
/// How long a consent decision lasts.
pub const CONSENT_SECS: u64 = 365 * 24 * 3600;
/// A session's last-seen time is written at most this often.
const TOUCH_SECS: u64 = 60;

/// A signed-in visitor.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub account: Account,
    pub session: DashboardSession,
    pub digest: [u8; 32],
}

/// A visitor's cookie choices, as its consent cookie says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Consent {
    /// A valid decision exists (same policy version, under 12 months old).
    pub decided: bool,
    pub functional: bool,
    pub analytics: bool,
    pub time: u64,
    pub id: Option<Uuid>,
}

impl Consent {
    /// `VERSION.FA.TIME.ID`, e.g. `1.10.1796220300.<uuid>`.
    pub fn cookie_value(
        version: u32,
        functional: bool,
        analytics: bool,
        time: u64,
        id: Uuid,
    ) -> String {
        format!(
            "{version}.{}{}.{time}.{}",
            u8::from(functional),
            u8::from(analytics),
            id.simple()
        )
    }

    fn parse(raw: &str, version: u32, now: u64) -> Self {
        let mut parts = raw.split('.');
        let (Some(v), Some(flags), Some(time), Some(id), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Self::default();
        };
        let (Ok(v), Ok(time), Ok(id)) =
            (v.parse::<u32>(), time.parse::<u64>(), Uuid::try_parse(id))
        else {
            return Self::default();
        };
        let flags = flags.as_bytes();
        if v != version
            || flags.len() != 2
            || now.saturating_sub(time) >= CONSENT_SECS
            || time > now + 60
        {
            return Self::default();
        }
        Self {
            decided: true,
            functional: flags[0] == b'1',
            analytics: flags[1] == b'1',
            time,
            id: Some(id),
        }
    }
}

/// The visitor of one request and the cookies its response sets.
pub struct Visitor {
    pub signed_in: Option<SignedIn>,
    pub consent: Consent,
    /// The request's path and query, for "back" links.
    pub path: String,
    /// The language cookie's value, when functional cookies are allowed.
    pub language: Option<String>,
    anonymous_csrf: String,
    set_csrf_cookie: bool,
    https: bool,
    cookies: Vec<Cookie<'static>>,
    pub notices: Vec<String>,
}

impl Visitor {
    /// Reads the request's cookies and finds its session, if any.
    pub fn of(req: &HttpRequest, state: &AppState) -> Result<Self, DashError> {
        let now = now_secs();
        let limits = &state.dashboard;
        let mut visitor = Visitor {
            signed_in: None,
            consent: req
                .cookie(CONSENT_COOKIE)
                .map(|c| Consent::parse(c.value(), limits.consent_policy_version, now))
                .unwrap_or_default(),
            path: req
                .uri()
                .path_and_query()
                .map_or("/dashboard".to_owned(), |p| p.as_str().to_owned()),
            language: None,
            anonymous_csrf: String::new(),
            set_csrf_cookie: false,
            https: state.https,
            cookies: Vec::new(),
            notices: Vec::new(),
        };
        if visitor.consent.functional {
            visitor.language = req.cookie(LANGUAGE_COOKIE).map(|c| c.value().to_owned());
        }
        match req.cookie(CSRF_COOKIE) {
            Some(c) if secret::well_formed(c.value()) => {
                visitor.anonymous_csrf = c.value().to_owned()
            }
            _ => {
                visitor.anonymous_csrf = secret::new_secret().map_err(DashError::internal)?;
                visitor.set_csrf_cookie = true;
            }
        }
        if let Some(cookie) = req.cookie(SESSION_COOKIE) {
            visitor.signed_in = visitor.session(cookie.value(), state, now)?;
            if visitor.signed_in.is_none() {
                // A cookie for no live session is dropped.
                visitor.cookies.push(visitor.removal(SESSION_COOKIE));
            }
        }
        Ok(visitor)
    }

    fn session(
        &self,
        value: &str,
        state: &AppState,
        now: u64,
    ) -> Result<Option<SignedIn>, DashError> {
        if !secret::well_formed(value) {
            return Ok(None);
        }
        let digest = secret::digest(value);
        let storage = &state.storage;
        let Some(mut session) = storage.session(&digest).map_err(DashError::internal)? else {
            return Ok(None);
        };
        let limits = &state.dashboard;
        let idle = now.saturating_sub(session.seen) >= limits.session_idle_minutes * 60;
        let old = now.saturating_sub(session.created) >= limits.session_absolute_hours * 3600;
        let account = storage
            .account(session.account)
            .map_err(DashError::internal)?;
        let Some(account) = account.filter(|a| !a.suspended && !idle && !old) else {
            storage
                .delete_session(&digest)
                .map_err(DashError::internal)?;
            return Ok(None);
        };
        if now.saturating_sub(session.seen) >= TOUCH_SECS {
            session.seen = now;
            storage
                .touch_session(&digest, &session)
                .map_err(DashError::internal)?;
        }
        Ok(Some(SignedIn {
            account,
            session,
            digest,
        }))
    }

    /// The signed-in visitor, or a redirect to sign-in that comes back here.
    pub fn require(&self) -> Result<&SignedIn, DashError> {
        self.signed_in
            .as_ref()
            .ok_or_else(|| DashError::SignIn(self.path.clone()))
    }

    /// A signed-in visitor whose account is not deleted.
    pub fn require_active(&self) -> Result<&SignedIn, DashError> {
        let me = self.require()?;
        if me.account.deleted_at.is_some() {
            return Err(DashError::Deleted);
        }
        Ok(me)
    }

    /// The CSRF token this visitor's forms carry.
    pub fn csrf(&self) -> &str {
        match &self.signed_in {
            Some(me) => &me.session.csrf,
            None => &self.anonymous_csrf,
        }
    }

    /// Refuses a state change that does not carry this visitor's CSRF token
    /// or comes from another site.
    pub fn check_csrf(
        &self,
        req: &HttpRequest,
        state: &AppState,
        given: &str,
    ) -> Result<(), DashError> {
        let given = if given.is_empty() {
            req.headers()
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        } else {
            given
        };
        let expected = self.csrf();
        // Before sign-in the token is the cookie's own value: a request with
        // no cookie has nothing to match.
        let token_ok = !self.set_csrf_cookie || self.signed_in.is_some();
        let token_ok = token_ok
            && !expected.is_empty()
            && bool::from(given.as_bytes().ct_eq(expected.as_bytes()));
        if !token_ok || !same_origin(req, state) {
            return Err(DashError::Csrf);
        }
        Ok(())
    }

    fn cookie(&self, name: &'static str, value: String) -> Cookie<'static> {
        let mut cookie = Cookie::build(name, value)
            .path("/dashboard")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.https)
            .finish();
        if name == CONSENT_COOKIE || name == LANGUAGE_COOKIE {
            cookie.set_max_age(CookieAge::seconds(CONSENT_SECS as i64));
        }
        cookie
    }

    fn removal(&self, name: &'static str) -> Cookie<'static> {
        let mut cookie = self.cookie(name, String::new());
        cookie.make_removal();
        cookie
    }

    /// Starts a new session for `account` (after a sign-in), ending the
    /// visitor's old one.
    pub fn sign_in(&mut self, state: &AppState, account: Account) -> Result<(), DashError> {
        if let Some(old) = self.signed_in.take() {
            state
                .storage
                .delete_session(&old.digest)
                .map_err(DashError::internal)?;
        }
        let value = secret::new_secret().map_err(DashError::internal)?;
        let digest = secret::digest(&value);
        let now = now_secs();
        let session = DashboardSession {
            account: account.id,
            csrf: secret::new_secret().map_err(DashError::internal)?,
            created: now,
            seen: now,
        };
        state
            .storage
            .create_session(&digest, &session)
            .map_err(DashError::internal)?;
        self.cookies.push(self.cookie(SESSION_COOKIE, value));
        self.signed_in = Some(SignedIn {
            account,
            session,
            digest,
        });
        Ok(())
    }

    /// Ends the visitor's session.
    pub fn sign_out(&mut self, state: &AppState) -> Result<(), DashError> {
        if let Some(me) = self.signed_in.take() {
            state
                .storage
                .delete_session(&me.digest)
                .map_err(DashError::internal)?;
        }
        self.cookies.push(self.removal(SESSION_COOKIE));
        Ok(())
    }

    /// Records a consent decision's cookies; without functional consent the
    /// functional cookies are removed.
    pub fn set_consent(&mut self, value: String, functional: bool) {
        self.cookies.push(self.cookie(CONSENT_COOKIE, value));
        if !functional {
            self.cookies.push(self.removal(LANGUAGE_COOKIE));
            self.language = None;
        }
    }

    /// Remembers a language choice, if functional cookies are allowed.
    pub fn remember_language(&mut self, code: &str) {
        if self.consent.functional {
            self.cookies
                .push(self.cookie(LANGUAGE_COOKIE, code.to_owned()));
        }
    }

    fn finish(mut self, mut response: HttpResponse) -> HttpResponse {
        if self.set_csrf_cookie {
            let csrf = self.anonymous_csrf.clone();
            self.cookies.push(self.cookie(CSRF_COOKIE, csrf));
        }
        for cookie in self.cookies {
            // A cookie built here always has a valid header value.
            let _ = response.add_cookie(&cookie);
        }
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        response
    }

    /// An HTML page.
    pub fn page(self, status: actix_web::http::StatusCode, html: String) -> HttpResponse {
        let response = HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html);
        self.finish(response)
    }

    /// A 303 to `to` (after a form).
    pub fn redirect(self, to: &str) -> HttpResponse {
        let response = HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to.to_owned()))
            .finish();
        self.finish(response)
    }

    /// Any other response (a download), with the visitor's cookies.
    pub fn respond(self, response: HttpResponse) -> HttpResponse {
        self.finish(response)
    }

    /// A JSON answer (for the dashboard's scripts).
    pub fn json(
        self,
        status: actix_web::http::StatusCode,
        body: &serde_json::Value,
    ) -> HttpResponse {
        let response = HttpResponse::build(status).json(body);
        self.finish(response)
    }
}

/// Whether a state change comes from the node's own pages: a browser's
/// `Sec-Fetch-Site` must not say another site, and an `Origin`, when sent,
/// must be `server.public_url`'s.
fn same_origin(req: &HttpRequest, state: &AppState) -> bool {
    let site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return false;
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    // Only the public URL's origin: a Host-derived one would let a page on
    // a rebound DNS name pass as the node's own.
    origin.eq_ignore_ascii_case(&state.public_origin)
}

/// A form with nothing but its CSRF token (a button).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct CsrfOnly {
    pub csrf: String,
}

/// A form body: parsed from `application/x-www-form-urlencoded`, or 400.
pub fn form<T: serde::de::DeserializeOwned>(body: &web::Bytes) -> Result<T, DashError> {
    serde_urlencoded::from_bytes(body).map_err(|_| DashError::BadForm)
}

/// A `back` target that stays on the dashboard (no open redirect).
pub fn safe_back(back: &str) -> Option<&str> {
    let ok = back.starts_with("/dashboard")
        && !back.starts_with("//")
        && !back.contains(['\\', '\r', '\n'])
        && !back.contains("://");
    ok.then_some(back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_cookies_hold_for_a_year_and_one_policy_version() {
        let id = Uuid::new_v4();
        let value = Consent::cookie_value(1, true, false, 1000, id);
        let read = Consent::parse(&value, 1, 1000 + 10);
        assert!(read.decided && read.functional && !read.analytics);
        assert_eq!(read.id, Some(id));
        assert!(
            !Consent::parse(&value, 2, 1010).decided,
            "a new policy asks again"
        );
        assert!(
            !Consent::parse(&value, 1, 1000 + CONSENT_SECS).decided,
            "expired"
        );
        assert!(Consent::parse(&value, 1, 1000 + CONSENT_SECS - 1).decided);
        for bad in [
            "",
            "1.10.1000",
            "1.1.1000.x",
            "x.10.1000.00",
            &format!("{value}.extra"),
        ] {
            assert!(!Consent::parse(bad, 1, 1010).decided, "{bad}");
        }
    }

    #[test]
    fn back_links_stay_on_the_dashboard() {
        assert_eq!(
            safe_back("/dashboard/stores/x"),
            Some("/dashboard/stores/x")
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/dashboard\\@evil",
            "/other",
            "/dashboard?u=https://x",
        ] {
            assert_eq!(safe_back(bad), None, "{bad}");
        }
    }
}
