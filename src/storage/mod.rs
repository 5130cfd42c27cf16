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
//! - [`codec`]: records to bytes and back; records with personal data
//!   sealed under their data key, bound to their tree and key.
//! - [`crypto`], [`keyring`], [`vault`]: encryption at rest. The keyring
//!   file (outside sled, sealed by the master key) holds a key per store
//!   and one for the accounts; they wrap the data keys in sled, one per
//!   conversation and per account. Destroying a key in the keyring makes
//!   what it wrapped unreadable in old files and backups too.
//! - [`contacts`]: the keyed-hash index of email addresses and phone
//!   numbers shoppers typed, each hash keyed by its conversation's key.
//! - [`flusher`]: the storage thread: group commit, one flush answering
//!   every waiting writer.
//! - [`catalogs`]: store profiles and catalogs. A catalog is written as a
//!   new generation in bounded chunks and made current by one insert; the
//!   old generation is then deleted. A crash at any point leaves the old
//!   catalog or the new one; generations left behind are swept at start-up.
//! - [`pages`]: a store's knowledge pages (shipping, returns, FAQ…).
//! - [`golden`]: a store's golden questions and their last replay.
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
pub mod backup;
mod catalogs;
mod codec;
pub mod contacts;
mod conversations;
pub mod crypto;
pub mod erasure;
mod flusher;
mod golden;
pub mod keyring;
mod keys;
mod pages;
mod records;
pub mod retention;
mod vault;

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::sync::watch;

pub use self::accounts::{EmailTaken, PendingInvitation};
use self::flusher::{FlushRequest, Write};
pub use self::golden::GoldenRun;
use self::keyring::{KeyringFile, MasterKeySource};
pub use self::pages::PageSaved;
use self::vault::Vault;

/// The layout version this code reads and writes. Version 2 seals
/// personal data under data keys.
pub const SCHEMA_VERSION: u32 = 2;
const SCHEMA_KEY: &[u8] = b"schema_version";
/// The id of the keyring this database's data keys are wrapped by.
const KEYRING_ID_KEY: &[u8] = b"keyring_id";

/// Where the database and its keys are, and how much it may cache.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    pub data_dir: PathBuf,
    /// The keyring file: outside the data directory, so a copy of the data
    /// directory holds no key.
    pub keyring: PathBuf,
    pub master_key: MasterKeySource,
    pub cache_bytes: u64,
    pub flush_queue: usize,
}

impl StorageOptions {
    /// Everything inside `dir`: the database in `dir/db`, the keyring in
    /// `dir/keyring`, the master key in `dir/master.key` (tests and tools).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            data_dir: dir.join("db"),
            keyring: dir.join("keyring"),
            master_key: MasterKeySource::File(dir.join("master.key")),
            cache_bytes: 16 * 1024 * 1024,
            flush_queue: DEFAULT_FLUSH_QUEUE,
        }
    }

    /// The settings, as `MIKABOT__` variables, of a node that keeps
    /// everything inside `dir` as [`in_dir`](Self::in_dir) does.
    pub fn env_in(dir: &Path) -> Vec<(&'static str, String)> {
        let options = Self::in_dir(dir);
        let MasterKeySource::File(master) = options.master_key else {
            unreachable!("in_dir keeps the master key in a file")
        };
        vec![
            (
                "MIKABOT__STORAGE__DATA_DIR",
                options.data_dir.display().to_string(),
            ),
            (
                "MIKABOT__STORAGE__KEYRING_FILE",
                options.keyring.display().to_string(),
            ),
            (
                "MIKABOT__STORAGE__MASTER_KEY_FILE",
                master.display().to_string(),
            ),
        ]
    }

    /// With at most `cache_bytes` of the database cached.
    pub fn with_cache_bytes(mut self, cache_bytes: u64) -> Self {
        self.cache_bytes = cache_bytes;
        self
    }

    /// As [`in_dir`](Self::in_dir), with at most `flush_queue` durable
    /// writes waiting for the storage thread.
    pub fn with_flush_queue(mut self, flush_queue: usize) -> Self {
        self.flush_queue = flush_queue;
        self
    }
}

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
    #[error("keys: {0}")]
    Keys(String),
    #[error("the conversation was erased")]
    Erased,
}

/// How many records of each kind a database holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub stores: usize,
    pub products: usize,
    pub sessions: usize,
    pub conversations: usize,
    pub messages: usize,
    /// Conversations whose keys no longer open: erased, or of a backup
    /// restored with a newer keyring.
    pub unreadable_conversations: usize,
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
    vault: Arc<Vault>,
    db: Arc<sled::Db>,
    stores: sled::Tree,
    products: sled::Tree,
    /// A store's golden questions and their last replay, by store id.
    goldens: sled::Tree,
    golden_runs: sled::Tree,
    /// A store's knowledge pages: `store \0 slug` → [`records::PageV1`].
    pages: sled::Tree,
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
    /// A conversation's technical data (page, referrer, device, address),
    /// under its own data key: dropped at the usage horizon on its own.
    technical: sled::Tree,
    conversation_contacts: sled::Tree,
    /// The erasure journal ([`erasure`]).
    erasures: sled::Tree,
    erasures_pending: sled::Tree,
    /// Restricted conversations: `store \0 conversation(16)` → empty.
    restrictions: sled::Tree,
    /// Shoppers' objections: `store \0 session(16)` → time (ms).
    objections: sled::Tree,
    /// Dropped with the last clone, after the database and its trees
    /// (fields drop in order): its receivers learn that the database is
    /// closed.
    _closed: Arc<watch::Sender<()>>,
    closed_rx: watch::Receiver<()>,
}

impl Storage {
    /// Opens (or creates) the database and its keyring.
    pub fn open(options: &StorageOptions) -> Result<Self, StorageError> {
        let db = sled::Config::new()
            .path(&options.data_dir)
            .cache_capacity(options.cache_bytes)
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
        let keyring_id = db
            .get(KEYRING_ID_KEY)?
            .map(|id| {
                <[u8; 16]>::try_from(id.as_ref()).map_err(|_| StorageError::Corrupt {
                    tree: "default",
                    problem: "the keyring id is not 16 bytes".into(),
                })
            })
            .transpose()?;
        let (file, ring) = KeyringFile::open(&options.keyring, &options.master_key, keyring_id)?;
        if keyring_id.is_none() {
            db.insert(KEYRING_ID_KEY, &ring.id)?;
            db.flush()?;
        }
        let vault = Arc::new(Vault::new(file, ring, db.open_tree("data_keys")?));
        vault.finish_rotations()?;
        let db = Arc::new(db);
        let (closed, closed_rx) = watch::channel(());
        let flush_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let (flushes, flusher) = flusher::spawn(Arc::downgrade(&db), flush_seconds.clone())?;
        let room = Arc::new(tokio::sync::Semaphore::new(options.flush_queue.max(1)));
        Ok(Self {
            _closed: Arc::new(closed),
            closed_rx,
            flushes,
            room,
            flusher: Arc::new(flusher),
            flush_seconds,
            vault,
            stores: db.open_tree("stores")?,
            products: db.open_tree("products")?,
            pages: db.open_tree("pages")?,
            goldens: db.open_tree("goldens")?,
            golden_runs: db.open_tree("golden_runs")?,
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
            technical: db.open_tree("technical")?,
            conversation_contacts: db.open_tree("conversation_contacts")?,
            erasures: db.open_tree("erasures")?,
            erasures_pending: db.open_tree("erasures_pending")?,
            restrictions: db.open_tree("restrictions")?,
            objections: db.open_tree("objections")?,
            db,
        })
    }

    /// Replaces the master key that seals the keyring. With a key file,
    /// the new key is written beside it first (`KEY.new`, mode 0600), the
    /// keyring sealed under it, and only then the new key file renamed into
    /// place: a crash in between is finished at the next open. With a key
    /// given whole, the caller must then give the new key instead.
    pub fn rotate_master_key(
        &self,
        source: &MasterKeySource,
        new_master: crypto::SecretKey,
    ) -> Result<(), StorageError> {
        match source {
            MasterKeySource::File(path) => {
                let mut pending = path.as_os_str().to_os_string();
                pending.push(".new");
                let pending = PathBuf::from(pending);
                keyring::write_whole(
                    &pending,
                    format!("{}\n", keyring::key_to_text(&new_master)).as_bytes(),
                )?;
                self.vault.rewrap_keyring(new_master)?;
                std::fs::rename(&pending, path).map_err(|e| {
                    StorageError::Keys(format!(
                        "the keyring is sealed by the new key in {}, which could not replace {}: {e}",
                        pending.display(),
                        path.display()
                    ))
                })?;
                Ok(())
            }
            MasterKeySource::Inline(_) => self.vault.rewrap_keyring(new_master),
        }
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
            let (key, _) = entry?;
            let corrupt = || StorageError::Corrupt {
                tree: "conversations",
                problem: "a key names no store and conversation".into(),
            };
            let store = keys::store_of(&key).ok_or_else(corrupt)?;
            let conversation = keys::conversation_of(&key).ok_or_else(corrupt)?;
            // An erased conversation whose records are not removed yet is
            // not counted: it no longer opens.
            if self.conversation_meta(&store, conversation)?.is_none() {
                counts.unreadable_conversations += 1;
                continue;
            }
            counts.conversations += 1;
            counts.messages += mikabot_actors::log::ConversationLog::history(
                self,
                &store,
                conversation,
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
        self.request_flush(Vec::new(), WhenFull::Wait).await
    }

    /// Asks the storage thread to make `writes` and flush; done when both
    /// are on disk.
    pub(crate) async fn request_flush(
        &self,
        writes: Vec<Write>,
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
                writes,
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
pub(crate) mod tests {
    use super::*;

    /// Opens a database just closed in this process: sled's own threads
    /// may hold its lock a moment after the last handle went.
    pub(crate) fn reopen(options: &StorageOptions) -> Storage {
        open_when_unlocked(options).unwrap_or_else(|e| panic!("reopen: {e}"))
    }

    /// `Storage::open`, tried again while sled's lock is still held (for
    /// at most 10 s); any other outcome is answered as it is.
    fn open_when_unlocked(options: &StorageOptions) -> Result<Storage, StorageError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Storage::open(options) {
                Err(e)
                    if std::time::Instant::now() < deadline && e.to_string().contains("lock") =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                opened => return opened,
            }
        }
    }

    /// A store's profile for storage tests.
    pub(crate) fn shop_profile(
        id: &mikabot_actors::ids::StoreId,
        retention_days: Option<u32>,
    ) -> mikabot_actors::catalog::StoreProfile {
        use mikabot_actors::catalog::{Branding, Currency, StoreProfile};
        StoreProfile {
            id: id.clone(),
            name: "Shop".into(),
            url: "https://shop.example".into(),
            instructions: String::new(),
            default_language: mikabot_actors::language::Language::En,
            currency: Currency::parse("EUR").expect("EUR"),
            allowed_origins: Vec::new(),
            synonyms: Vec::new(),
            branding: Branding::default(),
            retention_days,
        }
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = StorageOptions::in_dir(dir.path());
        {
            // No flusher thread: the lock goes with the handle, so the
            // open below meets the schema, not sled's lock.
            let db = sled::Config::new()
                .path(&options.data_dir)
                .flush_every_ms(None)
                .open()
                .expect("open raw");
            db.insert(SCHEMA_KEY, &99_u32.to_be_bytes()).expect("write");
            db.flush().expect("flush");
        }
        match open_when_unlocked(&options) {
            Err(StorageError::SchemaMismatch { found: 99 }) => {}
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a newer schema must be refused"),
        }
    }
}
