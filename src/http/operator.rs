//! The operator's bearer token (or a store's own API token), on every
//! operator route: compared in constant time, and throttled per client
//! address. An address that has failed `operator.failed_attempts_per_minute`
//! times in the last minute is refused (429 `too_many_attempts`) before its
//! token is even compared, until its oldest failure ages out, so guessing
//! is as slow as the limit and a correct guess during the lock-out teaches
//! nothing. [`FailureThrottle`] also throttles dashboard sign-ins.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use mikabot_actors::ids::StoreId;
use subtle::ConstantTimeEq;

use crate::http::AppState;
use crate::http::address::ClientKey;
use crate::http::error::{ApiCode, ApiError};

/// Keys whose failures are remembered at once, at most; when full, a key
/// that is not locked out (the one with the fewest failures) is forgotten to
/// make room, so the map cannot be grown without bound by rotating keys and
/// no locked-out key is ever unlocked by it.
const MAX_TRACKED_KEYS: usize = 65_536;

/// Failed authentications by key (a client address, an account): at most
/// `limit` failures count within a sliding `window`; a key with `limit`
/// failures in it is refused until its oldest failure is older than the
/// window.
pub struct FailureThrottle<K: Hash + Eq + Clone = ClientKey> {
    limit: usize,
    window: Duration,
    failures: Mutex<HashMap<K, VecDeque<Instant>>>,
}

impl FailureThrottle<ClientKey> {
    /// `per_minute` failures allowed a minute.
    pub fn new(per_minute: u32) -> Self {
        Self::per_window(per_minute, Duration::from_secs(60))
    }
}

impl<K: Hash + Eq + Clone> FailureThrottle<K> {
    /// `failures` failures allowed per `window`.
    pub fn per_window(failures: u32, window: Duration) -> Self {
        Self {
            limit: failures.max(1) as usize,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<K, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long `key` is still locked out, if it is.
    pub fn lockout(&self, key: &K) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = self.failures();
        let times = failures.get_mut(key)?;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() < self.limit {
            return None;
        }
        let oldest = *times.front()?;
        (oldest + self.window).checked_duration_since(now)
    }

    /// Counts a failure of `key`.
    pub fn failed(&self, key: K) {
        let now = Instant::now();
        let mut failures = self.failures();
        if failures.len() >= MAX_TRACKED_KEYS && !failures.contains_key(&key) {
            // Full: the key whose last failure is oldest makes room, so a
            // flood of new keys cannot stop failures from being counted.
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
            if failures.len() >= MAX_TRACKED_KEYS {
                // Never a locked-out key: evicting one would unlock it.
                let limit = self.limit;
                let evictable = failures
                    .iter()
                    .filter(|(_, times)| times.len() < limit)
                    .min_by_key(|(_, times)| (times.len(), times.back().copied()))
                    .map(|(k, _)| k.clone());
                match evictable {
                    Some(key) => {
                        failures.remove(&key);
                    }
                    // Every tracked key is locked out: the new one waits
                    // for room (reaching this takes more failures than
                    // password hashing can check in a window).
                    None => return,
                }
            }
        }
        let times = failures.entry(key).or_default();
        times.push_back(now);
        while times.len() > self.limit {
            times.pop_front();
        }
    }

    /// Forgets failures older than the window (housekeeping).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.failures().retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.duration_since(*t) < self.window)
        });
    }
}

/// The bearer token of a request (empty if none).
fn bearer(req: &HttpRequest) -> &str {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// Checks `Authorization: Bearer TOKEN` on a store's API: the operator
/// token, or one of that store's own API tokens
/// ([`crate::dashboard::tokens`]).
pub(crate) fn authorised_for_store(
    req: &HttpRequest,
    state: &AppState,
    store: &str,
) -> Result<(), ApiError> {
    let given = bearer(req);
    if !given.starts_with(crate::dashboard::tokens::PREFIX) {
        return authorised(req, state);
    }
    let key = client_key(req, state);
    refuse_if_locked(state, key)?;
    let valid = StoreId::parse(store)
        .ok()
        .is_some_and(|store| crate::dashboard::tokens::verify(&state.storage, &store, given));
    if valid {
        Ok(())
    } else {
        if let Some(key) = key {
            state.operator_failures.failed(key);
        }
        Err(ApiError::new(
            ApiCode::Unauthorized,
            "a valid token for this store is required (Authorization: Bearer ...)",
        ))
    }
}

/// The client a request comes from, as limits count it.
pub(crate) fn client_key(req: &HttpRequest, state: &AppState) -> Option<ClientKey> {
    state
        .addressing
        .client(req.peer_addr().map(|a| a.ip()), req.headers())
        .map(|address| state.addressing.key(address))
}

fn refuse_if_locked(state: &AppState, key: Option<ClientKey>) -> Result<(), ApiError> {
    if let Some(wait) = key.and_then(|key| state.operator_failures.lockout(&key)) {
        return Err(ApiError::new(
            ApiCode::TooManyAttempts,
            format!(
                "too many failed attempts from this address; retry in {} s",
                wait.as_secs() + 1
            ),
        )
        .retry_after(wait));
    }
    Ok(())
}

/// Checks `Authorization: Bearer TOKEN` against the operator token.
pub(crate) fn authorised(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = state.operator_token.as_deref() else {
        return Err(ApiError::new(
            ApiCode::CatalogApiDisabled,
            "the catalog API is off: set operator.api_token",
        ));
    };
    let key = client_key(req, state);
    refuse_if_locked(state, key)?;
    let given = bearer(req);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_throttle_makes_room_without_unlocking_a_locked_key() {
        let throttle = FailureThrottle::<u32>::per_window(2, Duration::from_secs(600));
        throttle.failed(0);
        assert!(throttle.lockout(&0).is_none(), "one failure of two");
        throttle.failed(0);
        assert!(throttle.lockout(&0).is_some(), "at the limit");
        for key in 1..MAX_TRACKED_KEYS as u32 {
            throttle.failed(key);
        }
        assert_eq!(throttle.failures().len(), MAX_TRACKED_KEYS);
        throttle.failed(u32::MAX);
        throttle.failed(u32::MAX);
        assert_eq!(throttle.failures().len(), MAX_TRACKED_KEYS, "bounded");
        assert!(
            throttle.lockout(&0).is_some(),
            "the locked key stays locked"
        );
        assert!(
            throttle.lockout(&u32::MAX).is_some(),
            "the new key is counted"
        );
    }
}
