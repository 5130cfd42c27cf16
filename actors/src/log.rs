//! The conversation log port: where sessions and replies persist what
//! shoppers and the assistant said. The sled implementation lives in the
//! `mikabot` crate's storage module, the only code that touches sled.

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::catalog::ProductCard;
use crate::ids::{ConversationId, MessageId, SessionId, StoreId};
use crate::language::Language;
use crate::model::FinishReason;
use crate::prompt::Role;

/// A coarse description of the shopper's client; never the raw user agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientClass {
    /// `chrome`, `firefox`, `safari`, `edge`, `other`.
    pub browser: String,
    /// `desktop`, `mobile`, `tablet`, `bot`, `other`.
    pub device: String,
}

/// One conversation's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationMeta {
    pub store: StoreId,
    pub conversation: ConversationId,
    pub session: SessionId,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub language: Language,
    pub page_url: Option<String>,
    pub referrer: Option<String>,
    pub client: ClientClass,
    /// Anonymised at ingestion (IPv4 /24, IPv6 /48); the raw address is never stored.
    pub ip: Option<String>,
}

/// How an assistant message ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyOutcome {
    /// `None` when the reply was cut short.
    pub finish: Option<FinishReason>,
    /// True when generation failed or the node stopped part-way.
    pub incomplete: bool,
    /// The cards sent with the reply.
    pub cards: Vec<ProductCard>,
}

/// One stored message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub id: MessageId,
    pub conversation: ConversationId,
    pub role: Role,
    pub text: String,
    pub at_ms: u64,
    /// The shopper client's own id for the message, for idempotent resends.
    pub client_id: Option<String>,
    /// Set on assistant messages.
    pub reply: Option<ReplyOutcome>,
    /// The display name of the person from the store who wrote an agent
    /// message.
    pub author: Option<String>,
}

/// A storage failure, as the behaviour sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LogError {
    /// The disk or the database failed; the same call may succeed later.
    #[error("conversation storage failed: {0}")]
    Failed(String),
    /// A stored record could not be read; asking again will not help.
    #[error("a stored conversation record is unreadable: {0}")]
    Corrupt(String),
    /// Storage has closed (the node is stopping).
    #[error("conversation storage is closed")]
    Closed,
    /// Too many writes wait for the disk; nothing was written. Ask again
    /// in a moment.
    #[error("conversation storage is busy")]
    Busy,
    /// The conversation was erased: nothing more is kept of it, and
    /// nothing more may be written to it.
    #[error("the conversation was erased")]
    Erased,
}

/// Durable storage for conversations.
pub trait ConversationLog: Send + Sync + 'static {
    /// The conversation a session belongs to, if the session is known in
    /// this store.
    fn find_session(
        &self,
        store: &StoreId,
        session: SessionId,
    ) -> Result<Option<ConversationMeta>, LogError>;

    /// Records a new conversation and its session.
    fn open_conversation(&self, meta: &ConversationMeta) -> Result<(), LogError>;

    /// Appends a message. Not durable until a later [`flush`](Self::flush) completes.
    fn append(&self, store: &StoreId, message: &StoredMessage) -> Result<(), LogError>;

    /// The newest `limit` messages of a conversation, oldest first.
    fn history(
        &self,
        store: &StoreId,
        conversation: ConversationId,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, LogError>;

    /// Completes when everything appended before the call is on disk.
    fn flush(&self) -> BoxFuture<'static, Result<(), LogError>>;

    /// Whether the conversation is restricted: kept, but its earlier
    /// messages are never sent to a model again.
    fn restricted(
        &self,
        _store: &StoreId,
        _conversation: ConversationId,
    ) -> Result<bool, LogError> {
        Ok(false)
    }

    /// Records a finished or interrupted reply and completes when it is on
    /// disk. Unlike [`append_durable`](Self::append_durable) it waits for
    /// room when the storage is busy: a reply the shopper has seen is not
    /// dropped.
    fn record_durably(
        &self,
        store: &StoreId,
        message: &StoredMessage,
    ) -> BoxFuture<'static, Result<(), LogError>> {
        self.append_durable(store, message)
    }

    /// Appends a message and completes when it is on disk. A storage may do
    /// both away from the caller's thread, grouped with other writers, and
    /// may refuse with [`LogError::Busy`] when too many writes wait.
    fn append_durable(
        &self,
        store: &StoreId,
        message: &StoredMessage,
    ) -> BoxFuture<'static, Result<(), LogError>> {
        match self.append(store, message) {
            Ok(()) => self.flush(),
            Err(error) => Box::pin(futures_util::future::ready(Err(error))),
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
