//! Records to bytes and back. Every value written to the database passes
//! through here with the store it belongs to and the key it is written
//! under, so per-store encryption (a key per store, the record key as
//! authenticated data) is added in this one place. Today a record is its
//! schema-1 JSON.

use mikabot_actors::ids::StoreId;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StorageError;
use super::records::Invalid;

/// Encodes and decodes the records of one database.
#[derive(Clone, Debug, Default)]
pub struct Codec;

impl Codec {
    /// The bytes stored for `record`, a record of `store` under `key`.
    pub fn seal<R: Serialize>(&self, _store: &StoreId, _key: &[u8], record: &R) -> Vec<u8> {
        // Serialising the plain record types to JSON cannot fail: they hold
        // no maps with non-string keys and no failing Serialize impls.
        serde_json::to_vec(record).unwrap_or_default()
    }

    /// The record stored in `bytes` under `key` in `tree`, converted to its
    /// domain value.
    pub fn open<R, T>(
        &self,
        _store: &StoreId,
        _key: &[u8],
        tree: &'static str,
        bytes: &[u8],
    ) -> Result<T, StorageError>
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
}
