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
//!
//! Crash story: a shopper message or a finished reply is acknowledged only
//! after the storage thread's flush covered it; a conversation record is
//! written before the session entry that points at it; nothing else needs
//! ordering.
//!
//! The calls here block on sled (reads may hit the disk, catalog writes do);
//! callers on async threads run the heavy ones on blocking threads (see
//! ARCHITECTURE.md, "Threads and blocking").

mod catalogs;
mod codec;
mod conversations;
mod flusher;
mod keys;
mod records;

use std::path::Path;
use std::sync::{Arc, mpsc};

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
}

/// The node's database. Cheap to clone.
#[derive(Clone)]
pub struct Storage {
    /// Counts the clones alive, so a stopping node can wait for every other
    /// user to let go before the database's lock is released.
    handles: Arc<()>,
    flushes: mpsc::Sender<FlushRequest>,
    codec: Codec,
    db: Arc<sled::Db>,
    stores: sled::Tree,
    products: sled::Tree,
    /// Store id to its current catalog generation (u32, big-endian).
    generations: sled::Tree,
    sessions: sled::Tree,
    conversations: sled::Tree,
    messages: sled::Tree,
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
            flushes: flusher::spawn(Arc::downgrade(&db))?,
            codec: Codec,
            stores: db.open_tree("stores")?,
            products: db.open_tree("products")?,
            generations: db.open_tree("catalog_generations")?,
            sessions: db.open_tree("sessions")?,
            conversations: db.open_tree("conversations")?,
            messages: db.open_tree("messages")?,
            db,
        })
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
    async fn request_flush(&self, write: Option<Write>) -> Result<(), StorageError> {
        let (waiter, wait) = tokio::sync::oneshot::channel();
        self.flushes
            .send(FlushRequest { write, waiter })
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
