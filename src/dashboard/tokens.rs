//! Per-store API tokens: `mkb_` + the token's id (32 hex digits) + `_` +
//! a 43-character secret. The id finds the record in one lookup; only the
//! secret's SHA-256 is stored and it is compared in constant time. A token
//! opens its own store's APIs only (catalog import, synonyms, widget
//! settings); the operator token stays for the node's own operations.

use mikabot_actors::ids::StoreId;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::accounts::secret::{self, RandomError};
use crate::accounts::{AccountId, ApiToken, now_secs};
use crate::storage::Storage;

/// How every store token starts (and how it is told from the operator
/// token).
pub const PREFIX: &str = "mkb_";

/// A new token for `store`: the record to keep and the text shown once.
pub fn issue(
    store: &StoreId,
    name: String,
    by: AccountId,
) -> Result<(ApiToken, String), RandomError> {
    let id = Uuid::new_v4();
    let secret = secret::new_secret()?;
    let text = format!("{PREFIX}{}_{secret}", id.simple());
    let token = ApiToken {
        id,
        store: store.clone(),
        name,
        hash: secret::digest(&secret),
        created: now_secs(),
        created_by: by,
    };
    Ok((token, text))
}

/// Whether `given` is a live token of `store`.
pub fn verify(storage: &Storage, store: &StoreId, given: &str) -> bool {
    let Some((id, secret)) = given
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
    else {
        return false;
    };
    let Ok(id) = Uuid::try_parse(id) else {
        return false;
    };
    if !secret::well_formed(secret) {
        return false;
    }
    match storage.token(store, id) {
        Ok(Some(token)) => bool::from(token.hash.ct_eq(&secret::digest(secret))),
        Ok(None) => false,
        Err(error) => {
            tracing::error!(%error, "reading an API token failed");
            false
        }
    }
}
