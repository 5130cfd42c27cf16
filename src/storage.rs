//! Storage on sled: the only module that touches the database. It holds
//! stores, catalogs, sessions, conversations and messages, and implements
//! the actors' [`ConversationLog`] port.
//!
//! Keys are laid out so that everything about a store, a conversation or a
//! period is a range scan: `store \0 conversation(16) message(16)`, with
//! time-ordered (v7) conversation and message ids.
//!
//! A catalog is written as a new generation (`store \0 generation(4) id`) in
//! bounded chunks; one insert then makes it current, and the old generation
//! is deleted. A crash at any point leaves the old catalog or the new one;
//! generations left behind are swept at start-up.

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;
use mikabot_actors::catalog::{Product, StoreProfile};
use mikabot_actors::ids::{ConversationId, SessionId, StoreId};
use mikabot_actors::log::{ConversationLog, ConversationMeta, LogError, StoredMessage};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The layout version this code reads and writes.
pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"schema_version";
/// Products written per batch: one batch for a whole large catalog costs
/// sled about ten times the catalog's size in memory.
const CATALOG_CHUNK: usize = 4096;

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
    #[error("flushing to disk failed: {0}")]
    Flush(String),
}

/// Someone waiting for their writes to be on disk.
type FlushWaiter = tokio::sync::oneshot::Sender<Result<(), String>>;

/// A request to the storage thread: make everything written so far durable,
/// after writing `write` (tree, key, value) if there is one.
struct FlushRequest {
    write: Option<(sled::Tree, Vec<u8>, Vec<u8>)>,
    waiter: FlushWaiter,
}

/// Group commit: one thread writes what the requests carry, then makes
/// everything durable with a single flush for every request that arrived
/// meanwhile. A request that arrives during a flush waits for the next one,
/// so it always covers the writes made before it. Writes that come this way
/// never make a caller's thread wait on the disk. The thread holds the
/// database weakly, so dropping the last `Storage` still closes it, and it
/// ends with the last sender.
fn spawn_flusher(db: Weak<sled::Db>) -> Result<mpsc::Sender<FlushRequest>, StorageError> {
    let (requests, incoming) = mpsc::channel::<FlushRequest>();
    std::thread::Builder::new()
        .name("mikabot-flush".into())
        .spawn(move || {
            while let Ok(first) = incoming.recv() {
                let mut batch = vec![first];
                batch.extend(incoming.try_iter());
                let mut waiters = Vec::with_capacity(batch.len());
                for request in batch {
                    let written = match request.write {
                        Some((tree, key, value)) => tree
                            .insert(key, value)
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        None => Ok(()),
                    };
                    match written {
                        Ok(()) => waiters.push(request.waiter),
                        Err(error) => {
                            let _ = request.waiter.send(Err(error));
                        }
                    }
                }
                let result = match db.upgrade() {
                    Some(db) => db.flush().map(|_| ()).map_err(|e| e.to_string()),
                    None => Err("the database is closed".to_owned()),
                };
                for waiter in waiters {
                    let _ = waiter.send(result.clone());
                }
            }
        })
        .map_err(|e| StorageError::Sled(sled::Error::Io(e)))?;
    Ok(requests)
}

/// The node's database. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    /// Counts the clones alive, so a stopping node can wait for every other
    /// user to let go before the database's lock is released.
    handles: Arc<()>,
    flushes: mpsc::Sender<FlushRequest>,
    db: Arc<sled::Db>,
    stores: sled::Tree,
    products: sled::Tree,
    /// Store id to its current catalog generation (u32, big-endian).
    generations: sled::Tree,
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
    /// Opens (or creates) the database in `dir`, keeping at most
    /// `cache_bytes` of it cached in memory.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StorageError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()?;
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
        let db = Arc::new(db);
        Ok(Self {
            handles: Arc::new(()),
            flushes: spawn_flusher(Arc::downgrade(&db))?,
            stores: db.open_tree("stores")?,
            products: db.open_tree("products")?,
            generations: db.open_tree("catalog_generations")?,
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

    fn generation(&self, store: &StoreId) -> Result<u32, StorageError> {
        Ok(self
            .generations
            .get(store.as_str().as_bytes())?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map_or(0, u32::from_be_bytes))
    }

    /// Replaces a store's whole catalog. Written as a new generation in
    /// chunks and made current in one step: a crash leaves the old catalog
    /// or the new one, never a mix.
    pub fn replace_catalog(
        &self,
        store: &StoreId,
        products: &[Product],
    ) -> Result<(), StorageError> {
        let old = self.generation(store)?;
        let new = old.wrapping_add(1);
        self.delete_generation(store, new)?;
        for chunk in products.chunks(CATALOG_CHUNK) {
            let mut batch = sled::Batch::default();
            for product in chunk {
                batch.insert(
                    key(store, &[&new.to_be_bytes(), product.id.0.as_bytes()]),
                    encode(product),
                );
            }
            self.products.apply_batch(batch)?;
        }
        // The new generation must be on disk before it becomes current.
        self.db.flush()?;
        self.generations
            .insert(store.as_str().as_bytes(), &new.to_be_bytes())?;
        self.delete_generation(store, old)?;
        Ok(())
    }

    /// Adds or updates products by id, keeping the others; as atomic as
    /// [`replace_catalog`](Self::replace_catalog). Returns the catalog now
    /// stored.
    pub fn upsert_products(
        &self,
        store: &StoreId,
        products: &[Product],
    ) -> Result<Vec<Product>, StorageError> {
        let mut merged: std::collections::BTreeMap<String, Product> = self
            .catalog(store)?
            .into_iter()
            .map(|p| (p.id.0.clone(), p))
            .collect();
        for product in products {
            merged.insert(product.id.0.clone(), product.clone());
        }
        let merged: Vec<Product> = merged.into_values().collect();
        self.replace_catalog(store, &merged)?;
        Ok(merged)
    }

    fn delete_generation(&self, store: &StoreId, generation: u32) -> Result<(), StorageError> {
        let prefix = key(store, &[&generation.to_be_bytes()]);
        loop {
            let keys: Vec<sled::IVec> = self
                .products
                .scan_prefix(&prefix)
                .keys()
                .take(CATALOG_CHUNK)
                .collect::<Result<_, _>>()?;
            if keys.is_empty() {
                return Ok(());
            }
            self.remove_products(&keys)?;
        }
    }

    /// Removes product rows in batches of [`CATALOG_CHUNK`].
    fn remove_products(&self, keys: &[sled::IVec]) -> Result<(), StorageError> {
        for chunk in keys.chunks(CATALOG_CHUNK) {
            let mut batch = sled::Batch::default();
            for key in chunk {
                batch.remove(key.clone());
            }
            self.products.apply_batch(batch)?;
        }
        Ok(())
    }

    /// Deletes catalog generations a crash left behind; returns how many
    /// products were removed.
    pub fn sweep_catalogs(&self) -> Result<usize, StorageError> {
        let current: std::collections::HashMap<Vec<u8>, u32> = self
            .generations
            .iter()
            .map(|entry| {
                let (store, generation) = entry?;
                let generation =
                    <[u8; 4]>::try_from(generation.as_ref()).map_or(0, u32::from_be_bytes);
                Ok((store.to_vec(), generation))
            })
            .collect::<Result<_, sled::Error>>()?;
        let mut stale: Vec<sled::IVec> = Vec::new();
        for entry in self.products.iter().keys() {
            let key = entry?;
            let Some(separator) = key.iter().position(|b| *b == 0) else {
                continue;
            };
            let generation = key
                .get(separator + 1..separator + 5)
                .and_then(|g| <[u8; 4]>::try_from(g).ok())
                .map(u32::from_be_bytes);
            let expected = current.get(&key[..separator]).copied().unwrap_or(0);
            if generation != Some(expected) {
                stale.push(key);
            }
        }
        self.remove_products(&stale)?;
        Ok(stale.len())
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
        let generation = self.generation(store)?;
        self.products
            .scan_prefix(key(store, &[&generation.to_be_bytes()]))
            .values()
            .map(|v| decode("products", &v?))
            .collect()
    }

    /// How many clones of this storage are alive, this one included.
    pub fn open_handles(&self) -> usize {
        Arc::strong_count(&self.handles)
    }

    /// Waits until everything written so far is on disk. Concurrent
    /// callers share one flush.
    pub async fn flush(&self) -> Result<(), StorageError> {
        self.request_flush(None).await
    }

    /// Asks the storage thread to write `write` (if any) and flush; done
    /// when both are on disk.
    async fn request_flush(
        &self,
        write: Option<(sled::Tree, Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StorageError> {
        let (waiter, wait) = tokio::sync::oneshot::channel();
        let closed = || StorageError::Flush("the flush thread stopped".into());
        self.flushes
            .send(FlushRequest { write, waiter })
            .map_err(|_| closed())?;
        wait.await
            .map_err(|_| closed())?
            .map_err(StorageError::Flush)
    }

    fn message_key(store: &StoreId, message: &StoredMessage) -> Vec<u8> {
        key(
            store,
            &[message.conversation.as_bytes(), message.id.as_bytes()],
        )
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
            .insert(Self::message_key(store, message), encode(message))
            .map_err(log_error)?;
        Ok(())
    }

    fn append_durable(
        &self,
        store: &StoreId,
        message: &StoredMessage,
    ) -> BoxFuture<'static, Result<(), LogError>> {
        let storage = self.clone();
        let write = (
            self.messages.clone(),
            Self::message_key(store, message),
            encode(message),
        );
        Box::pin(async move { storage.request_flush(Some(write)).await.map_err(log_error) })
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

    const TEST_CACHE_BYTES: u64 = 16 * 1024 * 1024;

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
        let storage = Storage::open(dir.path(), TEST_CACHE_BYTES).expect("open");
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

    fn product(id: &str) -> Product {
        Product {
            id: mikabot_actors::ids::ProductId(id.into()),
            name: format!("Product {id}"),
            brand: String::new(),
            category: String::new(),
            description: String::new(),
            tags: Vec::new(),
            price: mikabot_actors::catalog::Money {
                minor: 100,
                currency: mikabot_actors::catalog::Currency::parse("EUR").expect("EUR"),
            },
            price_max: None,
            image_url: String::new(),
            url: format!("https://shop.example/{id}"),
            in_stock: true,
        }
    }

    #[test]
    fn catalogs_replace_upsert_and_sweep_by_generation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path(), TEST_CACHE_BYTES).expect("open");
        let shop = StoreId::parse("shop").expect("valid");
        let many: Vec<Product> = (0..CATALOG_CHUNK + 10)
            .map(|i| product(&format!("p{i:05}")))
            .collect();
        storage.replace_catalog(&shop, &many).expect("replace");
        assert_eq!(
            storage.catalog(&shop).expect("catalog").len(),
            CATALOG_CHUNK + 10
        );
        storage
            .replace_catalog(&shop, &many[..3])
            .expect("replace again");
        assert_eq!(storage.catalog(&shop).expect("catalog").len(), 3);
        storage
            .upsert_products(&shop, &[product("p00001"), product("new")])
            .expect("upsert");
        let ids: Vec<_> = storage
            .catalog(&shop)
            .expect("catalog")
            .into_iter()
            .map(|p| p.id.0)
            .collect();
        assert_eq!(ids, ["new", "p00000", "p00001", "p00002"]);
        // A crash between writing a generation and making it current leaves
        // rows that the sweep removes, while the current catalog stays.
        let orphan = key(&shop, &[&99_u32.to_be_bytes(), b"ghost"]);
        storage
            .products
            .insert(orphan, encode(&product("ghost")))
            .expect("insert");
        assert_eq!(storage.sweep_catalogs().expect("sweep"), 1);
        assert_eq!(storage.catalog(&shop).expect("catalog").len(), 4);
        assert_eq!(storage.products.len(), 4, "old generations are gone");
    }

    #[tokio::test]
    async fn many_concurrent_writers_all_get_their_flush_either_way() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path(), TEST_CACHE_BYTES).expect("open");
        let shop = StoreId::parse("shop").expect("valid");
        let conversation = meta(&shop);
        storage
            .open_conversation(&conversation)
            .expect("open conversation");
        let local = tokio::task::LocalSet::new();
        let writers: Vec<_> = (0..64)
            .map(|w| {
                let storage = storage.clone();
                let shop = shop.clone();
                let conversation = conversation.clone();
                local.spawn_local(async move {
                    for n in 0..20 {
                        let text = format!("writer {w} message {n}");
                        let message = message(&conversation, &text);
                        // Half write on their own thread and ask for a
                        // flush; half let the storage thread do both.
                        if w % 2 == 0 {
                            storage.append(&shop, &message).expect("append");
                            ConversationLog::flush(&storage).await.expect("flush");
                        } else {
                            storage
                                .append_durable(&shop, &message)
                                .await
                                .expect("append durably");
                        }
                    }
                })
            })
            .collect();
        // A liveness bound, not a speed target: group commit must answer
        // every waiter, also those that asked during another flush.
        let all = local.run_until(async {
            for writer in writers {
                writer.await.expect("writer");
            }
        });
        tokio::time::timeout(std::time::Duration::from_secs(60), all)
            .await
            .expect("every writer's flush completes");
        let stored = storage
            .history(&shop, conversation.conversation, usize::MAX)
            .expect("history");
        assert_eq!(stored.len(), 64 * 20);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let db = sled::open(dir.path()).expect("open raw");
            db.insert(SCHEMA_KEY, &99_u32.to_be_bytes()).expect("write");
            db.flush().expect("flush");
        }
        match Storage::open(dir.path(), TEST_CACHE_BYTES) {
            Err(StorageError::SchemaMismatch { found: 99 }) => {}
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a newer schema must be refused"),
        }
    }
}
