//! Storage on sled: **the only module that touches the database.** It holds
//! stores, catalogs, sessions, conversations and messages, and implements
//! the actors' [`ConversationLog`](mikabot_actors::log::ConversationLog)
//! port. `Application::build` opens it; it closes when the last clone is
//! dropped.
//!
//! - [`keys`]: the key layout. Everything about a store, a conversation or
//!   a period is a range scan.
//! - [`records`]: storage's own versioned record types (schema
//!   [`SCHEMA_VERSION`]), converted at this edge; their bytes are pinned by
//!   tests.
//! - [`codec`]: records to bytes and back, told the store and key of each
//!   value (where per-store encryption goes).
//! - [`flusher`]: the storage thread: group commit, one flush answering
//!   every waiting writer.
//! - [`catalogs`]: store profiles and catalogs. A catalog is written as a
//!   new generation in bounded chunks and made current by one insert; the
//!   old generation is then deleted. A crash at any point leaves the old
//!   catalog or the new one; generations left behind are swept at start-up.
//! - [`conversations`]: conversations and messages (the conversation log).
//! - [`accounts`]: the owners' records (accounts, dashboard sessions,
//!   one-time links, memberships, API tokens, consent decisions).
//!
//! Crash story: a shopper message or a finished reply is acknowledged only
//! after the storage thread's flush covered it; a conversation record is
//! written before the session entry that points at it; nothing else needs
//! ordering.
//!
//! The calls here block on sled (reads may hit the disk, catalog writes do);
//! callers on async threads run the heavy ones on blocking threads (see
//! ARCHITECTURE.md, "Threads and blocking").

mod accounts;
mod catalogs;
mod codec;
mod conversations;
mod flusher;
mod keys;
mod records;

use std::path::Path;
use std::sync::{Arc, mpsc};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::sync::watch;

pub use self::accounts::{EmailTaken, PendingInvitation};
use self::codec::Codec;
use self::flusher::{FlushRequest, Write};

/// The layout version this code reads and writes.
pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"schema_version";

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    #[error("a record in `{tree}` is unreadable: {problem}")]
    Corrupt { tree: &'static str, problem: String },
    #[error(
        "the data directory has schema version {found}; this node reads version {SCHEMA_VERSION}"
    )]
    SchemaMismatch { found: u32 },
    #[error("flushing to disk failed: {0}")]
    Flush(String),
    #[error("storage is closed: its storage thread has stopped")]
    Closed,
    #[error("a storage task did not finish: {0}")]
    Interrupted(String),
    #[error("storage is busy: too many writes wait for the disk")]
    Busy,
}

/// How many records of each kind a database holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub stores: usize,
    pub products: usize,
    pub sessions: usize,
    pub conversations: usize,
    pub messages: usize,
}

/// Durable writes that may wait for the storage thread, unless configured.
pub const DEFAULT_FLUSH_QUEUE: usize = 4096;
/// How long a write that must not be refused waits for room at most.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// What a durable write does when the storage thread's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Refuse it at once ([`StorageError::Busy`]): a shopper message, which
    /// the shopper sends again.
    Refuse,
    /// Wait for room (within [`PATIENCE`]): a reply the shopper has seen, a
    /// flush an operator asked for.
    Wait,
}

/// The node's database. Cheap to clone; the database closes (and its lock
/// is released) when the last clone is dropped.
#[derive(Clone)]
pub struct Storage {
    flushes: mpsc::Sender<FlushRequest>,
    /// Places in the storage thread's queue: a durable write holds one
    /// until it is answered.
    room: Arc<tokio::sync::Semaphore>,
    /// The storage thread, to tell whether it still runs.
    flusher: Arc<std::thread::JoinHandle<()>>,
    /// How long the storage thread's flushes take.
    flush_seconds: Histogram,
    codec: Codec,
    db: Arc<sled::Db>,
    stores: sled::Tree,
    products: sled::Tree,
    /// Store id to its current catalog generation (u32, big-endian).
    generations: sled::Tree,
    sessions: sled::Tree,
    conversations: sled::Tree,
    messages: sled::Tree,
    accounts: sled::Tree,
    account_emails: sled::Tree,
    dashboard_sessions: sled::Tree,
    account_sessions: sled::Tree,
    links: sled::Tree,
    members: sled::Tree,
    account_stores: sled::Tree,
    api_tokens: sled::Tree,
    consents: sled::Tree,
    /// Dropped with the last clone, after the database and its trees
    /// (fields drop in order): its receivers learn that the database is
    /// closed.
    _closed: Arc<watch::Sender<()>>,
    closed_rx: watch::Receiver<()>,
}

impl Storage {
    /// Opens (or creates) the database in `dir`, keeping at most
    /// `cache_bytes` of it cached in memory.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StorageError> {
        Self::open_with(dir, cache_bytes, DEFAULT_FLUSH_QUEUE)
    }

    /// As [`open`](Self::open), with at most `flush_queue` durable writes
    /// waiting for the storage thread.
    pub fn open_with(
        dir: &Path,
        cache_bytes: u64,
        flush_queue: usize,
    ) -> Result<Self, StorageError> {
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
        let (closed, closed_rx) = watch::channel(());
        let flush_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let (flushes, flusher) = flusher::spawn(Arc::downgrade(&db), flush_seconds.clone())?;
        let room = Arc::new(tokio::sync::Semaphore::new(flush_queue.max(1)));
        Ok(Self {
            _closed: Arc::new(closed),
            closed_rx,
            flushes,
            room,
            flusher: Arc::new(flusher),
            flush_seconds,
            codec: Codec,
            stores: db.open_tree("stores")?,
            products: db.open_tree("products")?,
            generations: db.open_tree("catalog_generations")?,
            sessions: db.open_tree("sessions")?,
            conversations: db.open_tree("conversations")?,
            messages: db.open_tree("messages")?,
            accounts: db.open_tree("accounts")?,
            account_emails: db.open_tree("account_emails")?,
            dashboard_sessions: db.open_tree("dashboard_sessions")?,
            account_sessions: db.open_tree("account_sessions")?,
            links: db.open_tree("links")?,
            members: db.open_tree("members")?,
            account_stores: db.open_tree("account_stores")?,
            api_tokens: db.open_tree("api_tokens")?,
            consents: db.open_tree("consents")?,
            db,
        })
    }

    /// Resolves once every clone of this storage is dropped (this one must
    /// be dropped too): the database is closed.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut closed = self.closed_rx.clone();
        async move {
            // Nothing is ever sent: the only change is the sender's drop.
            while closed.changed().await.is_ok() {}
        }
    }

    /// The durations of the storage thread's flushes, for `/metrics`.
    pub fn flush_histogram(&self) -> Histogram {
        self.flush_seconds.clone()
    }

    /// Whether the storage thread is running (a stopped one fails every
    /// durable write).
    pub fn is_open(&self) -> bool {
        !self.flusher.is_finished()
    }

    /// Reads every record of every tree and decodes it, as the node would:
    /// how many there are of each kind, or the first one that does not
    /// decode (a crash test's check, and an operator's after a restore).
    pub fn check_all(&self) -> Result<RecordCounts, StorageError> {
        let mut counts = RecordCounts::default();
        for profile in self.stores()? {
            counts.stores += 1;
            counts.products += self.catalog(&profile.id)?.len();
        }
        for entry in self.conversations.iter() {
            let (key, value) = entry?;
            let store = keys::store_of(&key).ok_or_else(|| StorageError::Corrupt {
                tree: "conversations",
                problem: "a key names no store".into(),
            })?;
            let meta: mikabot_actors::log::ConversationMeta = self
                .codec
                .open::<records::ConversationV1, _>(&store, &key, "conversations", &value)?;
            counts.conversations += 1;
            counts.messages += mikabot_actors::log::ConversationLog::history(
                self,
                &store,
                meta.conversation,
                usize::MAX,
            )
            .map_err(|e| StorageError::Corrupt {
                tree: "messages",
                problem: e.to_string(),
            })?
            .len();
        }
        for entry in self.sessions.iter() {
            let (_, value) = entry?;
            if value.len() != 16 {
                return Err(StorageError::Corrupt {
                    tree: "sessions",
                    problem: "an entry does not hold a conversation id".into(),
                });
            }
            counts.sessions += 1;
        }
        Ok(counts)
    }

    /// Runs `work` on a blocking thread: the way async code calls what
    /// scans or writes many keys, or flushes (see "Threads and blocking" in
    /// ARCHITECTURE.md).
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Storage) -> Result<T, StorageError> + Send + 'static,
    {
        let storage = self.clone();
        tokio::task::spawn_blocking(move || work(&storage))
            .await
            .map_err(|e| StorageError::Interrupted(e.to_string()))?
    }

    /// Waits until everything written so far is on disk. Concurrent
    /// callers share one flush.
    pub async fn flush(&self) -> Result<(), StorageError> {
        self.request_flush(None, WhenFull::Wait).await
    }

    /// Asks the storage thread to write `write` (if any) and flush; done
    /// when both are on disk.
    pub(crate) async fn request_flush(
        &self,
        write: Option<Write>,
        when_full: WhenFull,
    ) -> Result<(), StorageError> {
        let room = Arc::clone(&self.room);
        let place = match when_full {
            WhenFull::Refuse => room.try_acquire_owned().map_err(|_| StorageError::Busy)?,
            WhenFull::Wait => tokio::time::timeout(PATIENCE, room.acquire_owned())
                .await
                .map_err(|_| StorageError::Busy)?
                .map_err(|_| StorageError::Closed)?,
        };
        let (waiter, wait) = tokio::sync::oneshot::channel();
        self.flushes
            .send(FlushRequest {
                write,
                waiter,
                _place: place,
            })
            .map_err(|_| StorageError::Closed)?;
        wait.await
            .map_err(|_| StorageError::Closed)?
            .map_err(StorageError::Flush)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const TEST_CACHE_BYTES: u64 = 16 * 1024 * 1024;

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
