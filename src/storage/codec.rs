//! Records to bytes and back. A record is its schema JSON; a record that
//! holds personal data is that JSON sealed ([`super::crypto`]) under its
//! data key, with its tree and key as additional authenticated data, so a
//! value copied under another key, or into another tree, does not open.
//! Catalog records (stores, products) stay in the clear.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StorageError;
use super::crypto::{self, SecretKey};
use super::records::Invalid;

/// The bytes stored for a record kept in the clear.
pub fn plain<R: Serialize>(record: &R) -> Vec<u8> {
    // Serialising the plain record types to JSON cannot fail: they hold
    // no maps with non-string keys and no failing Serialize impls.
    serde_json::to_vec(record).unwrap_or_default()
}

/// The record kept in the clear in `bytes`, in `tree`, as its domain value.
pub fn open_plain<R, T>(tree: &'static str, bytes: &[u8]) -> Result<T, StorageError>
where
    R: DeserializeOwned,
    T: TryFrom<R, Error = Invalid>,
{
    let record: R = serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        tree,
        problem: e.to_string(),
    })?;
    T::try_from(record).map_err(|e| StorageError::Corrupt {
        tree,
        problem: e.to_string(),
    })
}

/// What binds a sealed value to its place: `tree \0 key`.
pub fn binding(tree: &str, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(tree.len() + 1 + key.len());
    aad.extend_from_slice(tree.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key);
    aad
}

/// The bytes stored for `record` under `key` in `tree`, sealed with
/// `data_key`.
pub fn sealed<R: Serialize>(data_key: &SecretKey, tree: &str, key: &[u8], record: &R) -> Vec<u8> {
    crypto::seal(data_key, &binding(tree, key), &plain(record))
}

/// The record sealed in `bytes` under `key` in `tree`, as its domain value.
pub fn open_sealed<R, T>(
    data_key: &SecretKey,
    tree: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StorageError>
where
    R: DeserializeOwned,
    T: TryFrom<R, Error = Invalid>,
{
    T::try_from(open_record::<R>(data_key, tree, key, bytes)?).map_err(|e| StorageError::Corrupt {
        tree,
        problem: format!("a sealed record has an invalid {}", e.field()),
    })
}

/// The record type sealed in `bytes` under `key` in `tree`.
pub fn open_record<R: DeserializeOwned>(
    data_key: &SecretKey,
    tree: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<R, StorageError> {
    let plain =
        crypto::open(data_key, &binding(tree, key), bytes).map_err(|e| StorageError::Corrupt {
            tree,
            problem: e.to_string(),
        })?;
    // The parser's message may quote what it read, which here is
    // plaintext: it stays out of errors (and so of logs).
    serde_json::from_slice(&plain).map_err(|_| StorageError::Corrupt {
        tree,
        problem: "a sealed record opens but does not parse".into(),
    })
}
