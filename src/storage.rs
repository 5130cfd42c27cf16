//! Storage on sled: the only module that touches the database. It holds
//! stores, catalogs, sessions, conversations and messages, and implements
//! the actors' [`ConversationLog`] port.
//!
//! Keys are laid out so that everything about a store, a conversation or a
//! period is a range scan: `store \0 conversation(16) message(16)`, with
//! time-ordered (v7) conversation and message ids.

use std::path::Path;

use futures_util::future::BoxFuture;
use mikabot_actors::catalog::{Product, StoreProfile};
use mikabot_actors::ids::{ConversationId, SessionId, StoreId};
use mikabot_actors::log::{ConversationLog, ConversationMeta, LogError, StoredMessage};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The layout version this code reads and writes.
pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"schema_version";

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    #[error("record in `{tree}` is unreadable: {source}")]
    Corrupt {
        tree: &'static str,
        source: serde_json::Error,
    },
    #[error(
        "the data directory has schema version {found}; this node reads version {SCHEMA_VERSION}"
    )]
    SchemaMismatch { found: u32 },
}

/// The node's database. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    db: sled::Db,
    stores: sled::Tree,
    products: sled::Tree,
    sessions: sled::Tree,
    conversations: sled::Tree,
    messages: sled::Tree,
}

fn store_prefix(store: &StoreId) -> Vec<u8> {
    let mut key = Vec::with_capacity(store.as_str().len() + 1 + 32);
    key.extend_from_slice(store.as_str().as_bytes());
    // Store ids never contain NUL, so the separator keeps prefixes apart
    // ("shop" never matches "shop-2").
    key.push(0);
    key
}

fn key(store: &StoreId, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = store_prefix(store);
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain data types to JSON cannot fail: no maps with
    // non-string keys, no failing Serialize impls.
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|source| StorageError::Corrupt { tree, source })
}

impl Storage {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let db = sled::Config::new().path(dir).open()?;
        match db.get(SCHEMA_KEY)? {
            None => {
                db.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(found) => {
                let found = <[u8; 4]>::try_from(found.as_ref())
                    .map(u32::from_be_bytes)
                    .unwrap_or(0);
                if found != SCHEMA_VERSION {
                    return Err(StorageError::SchemaMismatch { found });
                }
            }
        }
        Ok(Self {
            stores: db.open_tree("stores")?,
            products: db.open_tree("products")?,
            sessions: db.open_tree("sessions")?,
            conversations: db.open_tree("conversations")?,
            messages: db.open_tree("messages")?,
            db,
        })
    }

    /// Creates or updates a store's profile.
    pub fn put_store(&self, profile: &StoreProfile) -> Result<(), StorageError> {
        self.stores
            .insert(profile.id.as_str().as_bytes(), encode(profile))?;
        Ok(())
    }

    /// Every store's profile.
    pub fn stores(&self) -> Result<Vec<StoreProfile>, StorageError> {
        self.stores
            .iter()
            .values()
            .map(|v| decode("stores", &v?))
            .collect()
    }

    /// Replaces a store's whole catalog in one atomic batch.
    pub fn replace_catalog(
        &self,
        store: &StoreId,
        products: &[Product],
    ) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for old in self.products.scan_prefix(store_prefix(store)).keys() {
            batch.remove(old?);
        }
        for product in products {
            batch.insert(key(store, &[product.id.0.as_bytes()]), encode(product));
        }
        self.products.apply_batch(batch)?;
        Ok(())
    }

    /// Adds or updates products by id in one atomic batch.
    pub fn upsert_products(
        &self,
        store: &StoreId,
        products: &[Product],
    ) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for product in products {
            batch.insert(key(store, &[product.id.0.as_bytes()]), encode(product));
        }
        self.products.apply_batch(batch)?;
        Ok(())
    }

    /// One store's profile.
    pub fn store(&self, id: &StoreId) -> Result<Option<StoreProfile>, StorageError> {
        self.stores
            .get(id.as_str().as_bytes())?
            .map(|v| decode("stores", &v))
            .transpose()
    }

    /// A store's catalog, in product-id order.
    pub fn catalog(&self, store: &StoreId) -> Result<Vec<Product>, StorageError> {
        self.products
            .scan_prefix(store_prefix(store))
            .values()
            .map(|v| decode("products", &v?))
            .collect()
    }

    /// Waits until everything written so far is on disk.
    pub async fn flush(&self) -> Result<(), StorageError> {
        self.db.flush_async().await?;
        Ok(())
    }
}

fn log_error(error: impl std::fmt::Display) -> LogError {
    LogError(error.to_string())
}

impl ConversationLog for Storage {
    fn find_session(
        &self,
        store: &StoreId,
        session: SessionId,
    ) -> Result<Option<ConversationMeta>, LogError> {
        let Some(conversation) = self
            .sessions
            .get(key(store, &[session.as_bytes()]))
            .map_err(log_error)?
        else {
            return Ok(None);
        };
        let record = self
            .conversations
            .get(key(store, &[conversation.as_ref()]))
            .map_err(log_error)?;
        record
            .map(|bytes| decode("conversations", &bytes).map_err(log_error))
            .transpose()
    }

    fn open_conversation(&self, meta: &ConversationMeta) -> Result<(), LogError> {
        // Conversation first: a session entry never points at nothing.
        self.conversations
            .insert(
                key(&meta.store, &[meta.conversation.as_bytes()]),
                encode(meta),
            )
            .map_err(log_error)?;
        self.sessions
            .insert(
                key(&meta.store, &[meta.session.as_bytes()]),
                meta.conversation.as_bytes(),
            )
            .map_err(log_error)?;
        Ok(())
    }

    fn append(&self, store: &StoreId, message: &StoredMessage) -> Result<(), LogError> {
        self.messages
            .insert(
                key(
                    store,
                    &[message.conversation.as_bytes(), message.id.as_bytes()],
                ),
                encode(message),
            )
            .map_err(log_error)?;
        Ok(())
    }

    fn history(
        &self,
        store: &StoreId,
        conversation: ConversationId,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, LogError> {
        let mut newest_first = self
            .messages
            .scan_prefix(key(store, &[conversation.as_bytes()]))
            .values()
            .rev()
            .take(limit)
            .map(|v| {
                v.map_err(log_error)
                    .and_then(|bytes| decode("messages", &bytes).map_err(log_error))
            })
            .collect::<Result<Vec<StoredMessage>, LogError>>()?;
        newest_first.reverse();
        Ok(newest_first)
    }

    fn flush(&self) -> BoxFuture<'static, Result<(), LogError>> {
        let storage = self.clone();
        Box::pin(async move { storage.flush().await.map_err(log_error) })
    }
}

#[cfg(test)]
mod tests {
    use mikabot_actors::ids::MessageId;
    use mikabot_actors::language::Language;
    use mikabot_actors::log::ClientClass;
    use mikabot_actors::prompt::Role;

    use super::*;

    fn meta(store: &StoreId) -> ConversationMeta {
        ConversationMeta {
            store: store.clone(),
            conversation: ConversationId::new(),
            session: SessionId::new(),
            started_at_ms: 1,
            language: Language::En,
            page_url: None,
            referrer: None,
            client: ClientClass::default(),
            ip: Some("192.0.2.0".into()),
        }
    }

    fn message(meta: &ConversationMeta, text: &str) -> StoredMessage {
        StoredMessage {
            id: MessageId::new(),
            conversation: meta.conversation,
            role: Role::Shopper,
            text: text.into(),
            at_ms: 2,
            client_id: None,
            reply: None,
        }
    }

    #[test]
    fn history_is_per_store_and_chronological() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path()).expect("open");
        let shop = StoreId::parse("shop").expect("valid");
        let shop2 = StoreId::parse("shop-2").expect("valid");
        let a = meta(&shop);
        storage.open_conversation(&a).expect("open conversation");
        for text in ["one", "two", "three"] {
            storage.append(&shop, &message(&a, text)).expect("append");
        }
        let texts: Vec<_> = storage
            .history(&shop, a.conversation, 2)
            .expect("history")
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["two", "three"]);
        assert!(
            storage
                .history(&shop2, a.conversation, 10)
                .expect("history")
                .is_empty()
        );
        assert_eq!(
            storage.find_session(&shop, a.session).expect("find"),
            Some(a.clone())
        );
        assert_eq!(storage.find_session(&shop2, a.session).expect("find"), None);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let db = sled::open(dir.path()).expect("open raw");
            db.insert(SCHEMA_KEY, &99_u32.to_be_bytes()).expect("write");
            db.flush().expect("flush");
        }
        match Storage::open(dir.path()) {
            Err(StorageError::SchemaMismatch { found: 99 }) => {}
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a newer schema must be refused"),
        }
    }
}
