//! The operator's bearer token, on every operator route: compared in
//! constant time, and throttled per client address. An address that fails
//! `operator.failed_attempts_per_minute` times is refused (429
//! `too_many_attempts`) before its token is even compared, until its
//! failures age out, so guessing is as slow as the limit and a correct
//! guess during the lock-out teaches nothing.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use subtle::ConstantTimeEq;

use crate::http::AppState;
use crate::http::address::ClientKey;
use crate::http::error::{ApiCode, ApiError};

/// Addresses locked out at once, at most: beyond it failures are still
/// counted, but no more lock-outs are remembered until old ones expire.
const MAX_LOCKED_ADDRESSES: usize = 65_536;

/// Failed authentications by address, and the addresses locked out.
pub struct FailureThrottle {
    failures: DefaultKeyedRateLimiter<ClientKey>,
    locked: Mutex<HashMap<ClientKey, Instant>>,
}

impl FailureThrottle {
    pub fn new(per_minute: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Self {
            failures: RateLimiter::keyed(quota),
            locked: Mutex::new(HashMap::new()),
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Instant>> {
        self.locked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long `key` is still locked out, if it is.
    fn lockout(&self, key: ClientKey) -> Option<Duration> {
        let until = *self.locked().get(&key)?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failure of `key`; past the limit, locks it out.
    fn failed(&self, key: ClientKey) {
        if let Err(not_until) = self.failures.check_key(&key) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let mut locked = self.locked();
            if locked.len() < MAX_LOCKED_ADDRESSES {
                locked.insert(key, Instant::now() + wait);
            }
        }
    }

    /// Forgets expired lock-outs and idle counters (housekeeping).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.locked().retain(|_, until| *until > now);
        self.failures.retain_recent();
    }
}

/// Checks `Authorization: Bearer TOKEN` against the operator token.
pub(crate) fn authorised(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = state.operator_token.as_deref() else {
        return Err(ApiError::new(
            ApiCode::CatalogApiDisabled,
            "the catalog API is off: set operator.api_token",
        ));
    };
    let key = state
        .addressing
        .client(req.peer_addr().map(|a| a.ip()), req.headers())
        .map(|address| state.addressing.key(address));
    if let Some(wait) = key.and_then(|key| state.operator_failures.lockout(key)) {
        return Err(ApiError::new(
            ApiCode::TooManyAttempts,
            format!(
                "too many failed attempts from this address; retry in {} s",
                wait.as_secs() + 1
            ),
        )
        .retry_after(wait));
    }
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        if let Some(key) = key {
            state.operator_failures.failed(key);
        }
        Err(ApiError::new(
            ApiCode::Unauthorized,
            "a valid operator token is required (Authorization: Bearer ...)",
        ))
    }
}
