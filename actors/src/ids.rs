//! Domain identifiers. Every id is a newtype so a store id can never be passed
//! where a conversation id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest store id accepted anywhere (they appear in script tags and URLs).
pub const MAX_STORE_ID_LEN: usize = 64;

/// A store's public id: lowercase ASCII letters, digits and dashes, 1 to 64
/// characters. It is public (it sits in the shop's script tag), so it needs to
/// be readable rather than unguessable.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StoreId(String);

/// Why a string is not a valid [`StoreId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a store id is 1 to {MAX_STORE_ID_LEN} characters of a-z, 0-9 and '-'")]
pub struct InvalidStoreId;

impl StoreId {
    /// Parses and validates a store id.
    pub fn parse(raw: &str) -> Result<Self, InvalidStoreId> {
        let valid = !raw.is_empty()
            && raw.len() <= MAX_STORE_ID_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidStoreId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StoreId {
    type Error = InvalidStoreId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<StoreId> for String {
    fn from(value: StoreId) -> Self {
        value.0
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $make:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id.
            pub fn new() -> Self {
                Self(Uuid::$make())
            }

            /// Parses the hyphenated text form.
            pub fn parse(raw: &str) -> Option<Self> {
                Uuid::try_parse(raw).ok().map(Self)
            }

            /// The 16 bytes used in storage keys.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// Rebuilds an id from storage key bytes.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

uuid_id!(
    /// A shopper's widget session. Random (v4): it is the bearer credential
    /// that lets a returning shopper resume a conversation, so it must be
    /// unguessable.
    SessionId,
    new_v4
);
uuid_id!(
    /// One conversation. Time-ordered (v7), so conversations sort by creation
    /// time inside a store and retention is a range scan.
    ConversationId,
    now_v7
);
uuid_id!(
    /// One stored message, shopper's or assistant's. Time-ordered (v7), so a
    /// conversation's messages sort chronologically in storage.
    MessageId,
    now_v7
);

/// A product id as the store's own catalog spells it (SKU, handle, feed id).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProductId(pub String);

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_accept_slugs_and_reject_everything_else() {
        assert!(StoreId::parse("demo").is_ok());
        assert!(StoreId::parse("shop-42").is_ok());
        for bad in ["", "Demo", "a b", "a/b", "ü", &"x".repeat(65)] {
            assert_eq!(StoreId::parse(bad), Err(InvalidStoreId), "{bad:?}");
        }
    }

    #[test]
    fn conversation_ids_sort_by_creation_time() {
        let first = ConversationId::new();
        let second = ConversationId::new();
        assert!(first.as_bytes() < second.as_bytes());
    }
}
