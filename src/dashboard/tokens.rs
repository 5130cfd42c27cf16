//! Per-store API tokens: `mkb_` + the token's id (32 hex digits) + `_` +
//! a 43-character secret. The id finds the record in one lookup; only the
//! secret's SHA-256 is stored and it is compared in constant time. A token
//! opens its own store's APIs only (catalog import, synonyms, widget
//! settings), and only while the owner who made it is an active owner of
//! that store; the operator token stays for the node's own operations.

use mikabot_actors::ids::StoreId;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::accounts::secret::{self, RandomError};
use crate::accounts::{AccountId, ApiToken, Role, now_secs};
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
    let live = storage.token(store, id).and_then(|token| {
        let Some(token) = token else {
            return Ok(false);
        };
        if !bool::from(token.hash.ct_eq(&secret::digest(secret))) {
            return Ok(false);
        }
        // A token lives while whoever made it is still an active owner of
        // the store: removing, suspending or deleting them revokes it.
        let owner = storage.member_role(store, token.created_by)? == Some(Role::Owner);
        let active = storage
            .account(token.created_by)?
            .is_some_and(|a| !a.suspended && a.deleted_at.is_none());
        Ok(owner && active)
    });
    live.unwrap_or_else(|error| {
        tracing::error!(%error, "reading an API token failed");
        false
    })
}
