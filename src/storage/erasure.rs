//! Erasure: the journal of requests and the work they ask for.
//!
//! An erasure is **accepted** durably (a journal entry, flushed), then
//! **hidden** at once by destroying the keys of what it names (its data
//! keys, or its store's keys): from that moment nothing reads it, not the
//! API, not the dashboard, not an export, not the prompt of a later reply,
//! and nothing more is written to it. It is then **carried out** by the
//! erasure worker: the records that no longer open are removed, the
//! affected scopes' keys rotated (so the old key, the only one that opens
//! the removed data keys in old files and backups, is destroyed), and the
//! entry marked done. Every step can be repeated, so a node killed at any
//! point resumes and completes ([`Storage::pending_erasures`]).
//!
//! | tree | key | value |
//! |---|---|---|
//! | `erasures` | `request(16)`, time-ordered | [`ErasureV1`]: pending, or done (the receipt) |
//! | `erasures_pending` | `request(16)` | empty: the requests not done yet |
//!
//! A receipt holds the request id, the scope's kind, counts and times;
//! no personal data (no address, no text, no session id).

use std::collections::BTreeSet;

use sled::Transactional;

use mikabot_actors::ids::{ConversationId, SessionId, StoreId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::contacts::Contact;
use super::conversations::store_scope;
use super::keyring::Scope;
use super::vault::DataKind;
use super::{Storage, StorageError, keys};
use crate::accounts::AccountId;

/// What an erasure request names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErasureScope {
    /// One conversation.
    Conversation {
        store: StoreId,
        conversation: ConversationId,
    },
    /// Several conversations of one store.
    Selection {
        store: StoreId,
        conversations: Vec<ConversationId>,
    },
    /// Every conversation of a store (the store stays).
    StoreConversations { store: StoreId },
    /// Everything of one shopper session.
    Session { store: StoreId, session: SessionId },
    /// Every conversation in which a shopper typed this email address or
    /// phone number; in one store, or in all.
    Contact {
        store: Option<StoreId>,
        contact: Contact,
    },
    /// Conversations past their store's retention (filed by the sweeper).
    Retention {
        store: StoreId,
        conversations: Vec<ConversationId>,
    },
    /// A store and everything of it.
    Store { store: StoreId },
    /// An account and everything of it.
    Account { account: AccountId },
}

impl ErasureScope {
    /// The store it is about, if one.
    pub fn store(&self) -> Option<&StoreId> {
        match self {
            Self::Conversation { store, .. }
            | Self::Selection { store, .. }
            | Self::StoreConversations { store }
            | Self::Session { store, .. }
            | Self::Retention { store, .. }
            | Self::Store { store } => Some(store),
            Self::Contact { store, .. } => store.as_ref(),
            Self::Account { .. } => None,
        }
    }

    /// The kind, as receipts and the API name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Conversation { .. } => "conversation",
            Self::Selection { .. } => "selection",
            Self::StoreConversations { .. } => "store_conversations",
            Self::Session { .. } => "session",
            Self::Contact { .. } => "contact",
            Self::Retention { .. } => "retention",
            Self::Store { .. } => "store",
            Self::Account { .. } => "account",
        }
    }
}

/// How much an erasure removes (or would remove).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureCounts {
    pub conversations: u64,
    pub messages: u64,
    pub stores: u64,
    pub accounts: u64,
}

/// An erasure request as the journal keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureRequest {
    pub id: Uuid,
    pub kind: &'static str,
    /// The store it was made for, if one.
    pub store: Option<String>,
    pub requested_at_ms: u64,
    /// Set once it is carried out: the request is then its receipt.
    pub completed_at_ms: Option<u64>,
    pub counts: ErasureCounts,
    work: Work,
}

impl ErasureRequest {
    /// The stores whose records it removes.
    pub fn stores(&self) -> Vec<StoreId> {
        self.work
            .stores
            .iter()
            .filter_map(|s| StoreId::parse(s).ok())
            .collect()
    }
}

/// What carrying a request out involves, kept until it is done.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Work {
    /// Stores whose unreadable conversations are removed and whose key is
    /// rotated.
    stores: BTreeSet<String>,
    /// Conversations whose data keys go (`store \0 conversation` keys).
    conversations: Vec<Vec<u8>>,
    /// Store keys destroyed up to this id, per store (every conversation
    /// of the store at the time of the request).
    destroy_store_keys: Vec<(String, u32)>,
    /// Stores removed whole.
    remove_stores: Vec<String>,
    /// Accounts removed whole.
    remove_accounts: Vec<Uuid>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ErasureV1 {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store: Option<String>,
    requested_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    completed_at_ms: Option<u64>,
    counts: ErasureCounts,
    /// Emptied when done.
    #[serde(default)]
    work: Work,
}

/// What accepting a request did, for the caller to reach memory too.
#[derive(Debug, Default)]
pub struct Accepted {
    pub id: Uuid,
    /// Shopper sessions whose conversations are now erased: their live
    /// sessions are closed and their replies stopped.
    pub sessions: Vec<SessionId>,
    /// What it will remove.
    pub counts: ErasureCounts,
}

const KINDS: [&str; 8] = [
    "conversation",
    "selection",
    "store_conversations",
    "session",
    "contact",
    "retention",
    "store",
    "account",
];

fn kind_of(raw: &str) -> Option<&'static str> {
    KINDS.into_iter().find(|k| *k == raw)
}

impl Storage {
    /// The conversations of `store` that still open, with their shopper
    /// sessions (kept inside the sealed record; the session tree holds
    /// only keyed hashes).
    fn sessions_of_store(
        &self,
        store: &StoreId,
    ) -> Result<Vec<(SessionId, ConversationId)>, StorageError> {
        let mut found = Vec::new();
        for key in self
            .conversations
            .scan_prefix(keys::store_prefix(store))
            .keys()
        {
            let Some(conversation) = keys::conversation_of(&key?) else {
                continue;
            };
            if let Some(meta) = self.conversation_meta(store, conversation)? {
                found.push((meta.session, conversation));
            }
        }
        Ok(found)
    }

    fn message_count(&self, store: &StoreId, conversation: ConversationId) -> u64 {
        self.messages
            .scan_prefix(keys::messages(store, conversation))
            .keys()
            .count() as u64
    }

    /// The conversations a scope names that are still readable, with their
    /// sessions: what it would erase.
    fn resolve(
        &self,
        scope: &ErasureScope,
    ) -> Result<Vec<(StoreId, ConversationId, SessionId)>, StorageError> {
        let mut found = Vec::new();
        let mut add = |store: &StoreId, conversation: ConversationId| -> Result<(), StorageError> {
            if let Some(meta) = self.conversation_meta(store, conversation)? {
                found.push((store.clone(), conversation, meta.session));
            }
            Ok(())
        };
        match scope {
            ErasureScope::Conversation {
                store,
                conversation,
            } => add(store, *conversation)?,
            ErasureScope::Selection {
                store,
                conversations,
            }
            | ErasureScope::Retention {
                store,
                conversations,
            } => {
                for conversation in conversations {
                    add(store, *conversation)?;
                }
            }
            ErasureScope::Session { store, session } => {
                if let Some(conversation) = self.sessions.get(self.session_key(store, *session))?
                    && let Ok(bytes) = <[u8; 16]>::try_from(conversation.as_ref())
                {
                    add(store, ConversationId::from_bytes(bytes))?;
                }
            }
            ErasureScope::Contact { store, contact } => {
                // Each conversation's entries are keyed by its own data key:
                // the request is hashed again for each conversation.
                let stores = match store {
                    Some(store) => vec![store.clone()],
                    None => self.stores()?.into_iter().map(|p| p.id).collect(),
                };
                for at in stores {
                    for entry in self
                        .conversations
                        .scan_prefix(keys::store_prefix(&at))
                        .keys()
                    {
                        let key = entry?;
                        let Some(conversation) = keys::conversation_of(&key) else {
                            continue;
                        };
                        let Some(data_key) = self.conversation_key(&at, conversation)? else {
                            continue;
                        };
                        let mut wanted = key.to_vec();
                        wanted.extend_from_slice(&contact.hash(&data_key));
                        if self.conversation_contacts.contains_key(wanted)? {
                            add(&at, conversation)?;
                        }
                    }
                }
            }
            ErasureScope::StoreConversations { store } | ErasureScope::Store { store } => {
                for (_, conversation) in self.sessions_of_store(store)? {
                    add(store, conversation)?;
                }
            }
            ErasureScope::Account { account } => {
                for (store, _) in self.sole_owned_stores(*account)? {
                    for (_, conversation) in self.sessions_of_store(&store)? {
                        add(&store, conversation)?;
                    }
                }
            }
        }
        found.sort_by_key(|(s, c, _)| (s.as_str().to_owned(), *c));
        found.dedup_by_key(|(s, c, _)| (s.as_str().to_owned(), *c));
        Ok(found)
    }

    /// The stores `account` owns alone: they go with it.
    fn sole_owned_stores(
        &self,
        account: AccountId,
    ) -> Result<Vec<(StoreId, crate::accounts::Role)>, StorageError> {
        let mut sole = Vec::new();
        for (store, role) in self.stores_of(account)? {
            if role != crate::accounts::Role::Owner {
                continue;
            }
            let others = self
                .members(&store)?
                .into_iter()
                .any(|(a, r)| a != account && r == crate::accounts::Role::Owner);
            if !others {
                sole.push((store, role));
            }
        }
        Ok(sole)
    }

    /// What `scope` would remove now, as counts: the dry run.
    pub fn erasure_preview(&self, scope: &ErasureScope) -> Result<ErasureCounts, StorageError> {
        let found = self.resolve(scope)?;
        self.counts_of(scope, &found)
    }

    /// The counts of what `scope` names, `found` being what it resolved to.
    fn counts_of(
        &self,
        scope: &ErasureScope,
        found: &[(StoreId, ConversationId, SessionId)],
    ) -> Result<ErasureCounts, StorageError> {
        let mut counts = ErasureCounts {
            conversations: found.len() as u64,
            messages: found
                .iter()
                .map(|(s, c, _)| self.message_count(s, *c))
                .sum(),
            ..ErasureCounts::default()
        };
        match scope {
            ErasureScope::Store { store } => {
                counts.stores = u64::from(self.store(store)?.is_some());
            }
            ErasureScope::Account { account } => {
                counts.accounts = u64::from(self.accounts.contains_key(account.as_bytes())?);
                counts.stores = self.sole_owned_stores(*account)?.len() as u64;
            }
            _ => {}
        }
        Ok(counts)
    }

    /// Accepts an erasure: journaled durably, then hidden at once. What
    /// the caller must still reach in memory is in [`Accepted`].
    pub async fn request_erasure(
        &self,
        scope: ErasureScope,
        now_ms: u64,
    ) -> Result<Accepted, StorageError> {
        let storage = self.clone();
        let (request, sessions) = self
            .blocking(move |storage| storage.journal(&scope, now_ms))
            .await?;
        // Durable before it is acted on: a crash from here on resumes.
        storage.flush().await?;
        let (id, counts) = (request.id, request.counts);
        let hidden = request;
        storage
            .blocking(move |storage| {
                storage.hide(&hidden)?;
                storage.remove_named_stores(&hidden)
            })
            .await?;
        storage.flush().await?;
        Ok(Accepted {
            id,
            sessions,
            counts,
        })
    }

    /// Writes the journal entry of `scope`.
    fn journal(
        &self,
        scope: &ErasureScope,
        now_ms: u64,
    ) -> Result<(ErasureRequest, Vec<SessionId>), StorageError> {
        let found = self.resolve(scope)?;
        let counts = self.counts_of(scope, &found)?;
        let mut work = Work::default();
        for (store, conversation, _) in &found {
            work.stores.insert(store.as_str().to_owned());
            work.conversations
                .push(keys::conversation(store, *conversation));
        }
        match scope {
            ErasureScope::StoreConversations { store } => {
                work.stores.insert(store.as_str().to_owned());
                if let Some(last) = self.vault.current_id(&store_scope(store)) {
                    work.destroy_store_keys
                        .push((store.as_str().to_owned(), last));
                }
            }
            ErasureScope::Store { store } => {
                work.remove_stores.push(store.as_str().to_owned());
            }
            ErasureScope::Account { account } => {
                work.remove_accounts.push(account.0);
                for (store, _) in self.sole_owned_stores(*account)? {
                    work.remove_stores.push(store.as_str().to_owned());
                }
            }
            _ => {}
        }
        for store in work.remove_stores.clone() {
            if let Some(last) = self.vault.current_id(&Scope::Store(store.clone())) {
                work.destroy_store_keys.push((store, last));
            }
        }
        let request = ErasureRequest {
            id: Uuid::now_v7(),
            kind: scope.kind(),
            store: scope.store().map(|s| s.as_str().to_owned()),
            requested_at_ms: now_ms,
            completed_at_ms: None,
            counts,
            work,
        };
        self.write_erasure(&request)?;
        let sessions = found.into_iter().map(|(_, _, session)| session).collect();
        Ok((request, sessions))
    }

    /// Writes a request's journal entry, and keeps the pending index in
    /// step: a sweep reads the pending requests only, never every receipt.
    fn write_erasure(&self, request: &ErasureRequest) -> Result<(), StorageError> {
        let record = ErasureV1 {
            kind: request.kind.to_owned(),
            store: request.store.clone(),
            requested_at_ms: request.requested_at_ms,
            completed_at_ms: request.completed_at_ms,
            counts: request.counts,
            work: request.work.clone(),
        };
        let id = request.id.as_bytes();
        (&self.erasures, &self.erasures_pending)
            .transaction(|(erasures, pending)| {
                erasures.insert(&id[..], super::codec::plain(&record))?;
                if request.completed_at_ms.is_some() {
                    pending.remove(&id[..])?;
                } else {
                    pending.insert(&id[..], &[][..])?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StorageError::from(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StorageError::Interrupted("a transaction aborted".into())
                }
            })
    }

    fn decode_erasure(id: &[u8], bytes: &[u8]) -> Result<ErasureRequest, StorageError> {
        let corrupt = |problem: String| StorageError::Corrupt {
            tree: "erasures",
            problem,
        };
        let record: ErasureV1 =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        let id = <[u8; 16]>::try_from(id)
            .map(Uuid::from_bytes)
            .map_err(|_| corrupt("a request id is not 16 bytes".into()))?;
        Ok(ErasureRequest {
            id,
            kind: kind_of(&record.kind).ok_or_else(|| corrupt("an unknown kind".into()))?,
            store: record.store,
            requested_at_ms: record.requested_at_ms,
            completed_at_ms: record.completed_at_ms,
            counts: record.counts,
            work: record.work,
        })
    }

    /// One request, pending or done.
    pub fn erasure(&self, id: Uuid) -> Result<Option<ErasureRequest>, StorageError> {
        self.erasures
            .get(id.as_bytes())?
            .map(|v| Self::decode_erasure(id.as_bytes(), &v))
            .transpose()
    }

    /// Requests accepted and not carried out yet, oldest first.
    pub fn pending_erasures(&self) -> Result<Vec<ErasureRequest>, StorageError> {
        let mut pending = Vec::new();
        for id in self.erasures_pending.iter().keys() {
            let id = id?;
            if let Some(value) = self.erasures.get(&id)? {
                pending.push(Self::decode_erasure(&id, &value)?);
            }
        }
        Ok(pending)
    }

    /// Completed requests, newest first, at most `limit`: the audit log.
    pub fn erasure_receipts(&self, limit: usize) -> Result<Vec<ErasureRequest>, StorageError> {
        let mut receipts = Vec::new();
        for entry in self.erasures.iter().rev() {
            let (id, value) = entry?;
            let request = Self::decode_erasure(&id, &value)?;
            if request.completed_at_ms.is_some() {
                receipts.push(request);
                if receipts.len() == limit {
                    break;
                }
            }
        }
        Ok(receipts)
    }

    /// A store's requests, pending and done, newest first, at most `limit`.
    pub fn erasure_requests_of(
        &self,
        store: &StoreId,
        limit: usize,
    ) -> Result<Vec<ErasureRequest>, StorageError> {
        let mut found = Vec::new();
        for entry in self.erasures.iter().rev() {
            let (id, value) = entry?;
            let request = Self::decode_erasure(&id, &value)?;
            if request.store.as_deref() == Some(store.as_str()) {
                found.push(request);
                if found.len() == limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Removes the stores a request names at once (a store is hidden by
    /// being gone), then notes that in its journal entry: the worker never
    /// removes a store by its id later, when the id may name a new store.
    fn remove_named_stores(&self, request: &ErasureRequest) -> Result<(), StorageError> {
        if request.work.remove_stores.is_empty() {
            return Ok(());
        }
        for store in &request.work.remove_stores {
            if let Ok(store) = StoreId::parse(store) {
                self.delete_store(&store)?;
            }
        }
        let mut noted = request.clone();
        noted.work.remove_stores.clear();
        self.write_erasure(&noted)
    }

    /// Hides what a request names: its data keys removed, its stores'
    /// keys destroyed, its accounts' keys removed. Repeatable.
    fn hide(&self, request: &ErasureRequest) -> Result<(), StorageError> {
        for key in &request.work.conversations {
            self.vault.remove(DataKind::Conversation, key)?;
            self.vault.remove(DataKind::Technical, key)?;
        }
        for (store, last) in &request.work.destroy_store_keys {
            self.vault
                .destroy_upto(&Scope::Store(store.clone()), *last)?;
        }
        for account in &request.work.remove_accounts {
            self.vault.remove(DataKind::Account, account.as_bytes())?;
        }
        Ok(())
    }

    /// Carries a request out and marks it done: hidden again (a crash may
    /// have come between accepting and hiding), the records that no longer
    /// open removed, the affected scopes' keys rotated. Returns the
    /// receipt.
    pub fn carry_out(&self, id: Uuid, now_ms: u64) -> Result<ErasureRequest, StorageError> {
        self.carry_out_all(&[id], now_ms)?
            .pop()
            .ok_or_else(|| StorageError::Interrupted("no such erasure request".into()))
    }

    /// Carries several requests out as one batch: each store's unreadable
    /// conversations removed once and its key rotated once, however many
    /// requests named it. Their receipts, in the order given.
    pub fn carry_out_all(
        &self,
        ids: &[Uuid],
        now_ms: u64,
    ) -> Result<Vec<ErasureRequest>, StorageError> {
        let mut requests = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(request) = self.erasure(*id)? else {
                return Err(StorageError::Interrupted("no such erasure request".into()));
            };
            requests.push(request);
        }
        let pending: Vec<&ErasureRequest> = requests
            .iter()
            .filter(|r| r.completed_at_ms.is_none())
            .collect();
        let mut stores = BTreeSet::new();
        let mut accounts = BTreeSet::new();
        for request in &pending {
            self.hide(request)?;
            // Only if a crash came between accepting it and removing them.
            self.remove_named_stores(request)?;
            stores.extend(request.work.stores.iter().cloned());
            stores.extend(request.work.remove_stores.iter().cloned());
            accounts.extend(request.work.remove_accounts.iter().copied());
        }
        for store in &stores {
            if let Ok(store) = StoreId::parse(store) {
                self.remove_unreadable_conversations(&store)?;
                self.vault.rotate(&store_scope(&store))?;
            }
        }
        for account in &accounts {
            self.purge_account(AccountId(*account))?;
        }
        if !accounts.is_empty() {
            self.vault.rotate(&Scope::Accounts)?;
        }
        for request in &pending {
            self.write_erasure(&ErasureRequest {
                completed_at_ms: Some(now_ms),
                work: Work::default(),
                ..(*request).clone()
            })?;
        }
        self.db.flush()?;
        ids.iter()
            .map(|id| {
                self.erasure(*id)?
                    .ok_or_else(|| StorageError::Interrupted("a done erasure is gone".into()))
            })
            .collect()
    }

    /// Removes every record of `store`'s conversations that no longer open
    /// (their data key removed, or its store key destroyed): messages,
    /// technical data, contact index entries, session entries, data keys,
    /// the record. How many conversations went.
    pub(crate) fn remove_unreadable_conversations(
        &self,
        store: &StoreId,
    ) -> Result<usize, StorageError> {
        let prefix = keys::store_prefix(store);
        let mut removed = 0;
        let mut gone = BTreeSet::new();
        for key in self.conversations.scan_prefix(&prefix).keys() {
            let key = key?;
            let Some(conversation) = keys::conversation_of(&key) else {
                continue;
            };
            let readable = match self.conversation_key(store, conversation) {
                Ok(found) => found.is_some(),
                // A data key that does not open is as gone as a missing one.
                Err(StorageError::Corrupt { .. }) => false,
                Err(other) => return Err(other),
            };
            if readable {
                continue;
            }
            for message in self
                .messages
                .scan_prefix(keys::messages(store, conversation))
                .keys()
            {
                self.messages.remove(message?)?;
            }
            for entry in self.conversation_contacts.scan_prefix(&key).keys() {
                self.conversation_contacts.remove(entry?)?;
            }
            self.technical.remove(&key)?;
            self.restrictions.remove(&key)?;
            self.vault.remove(DataKind::Conversation, &key)?;
            self.vault.remove(DataKind::Technical, &key)?;
            self.conversations.remove(&key)?;
            gone.insert(conversation);
            removed += 1;
        }
        for entry in self.sessions.scan_prefix(&prefix) {
            let (key, value) = entry?;
            let points_at_gone = <[u8; 16]>::try_from(value.as_ref())
                .map(ConversationId::from_bytes)
                .map_or(true, |c| {
                    gone.contains(&c)
                        || !self
                            .conversations
                            .contains_key(keys::conversation(store, c))
                            .unwrap_or(true)
                });
            if points_at_gone {
                self.objections.remove(&key)?;
                self.sessions.remove(key)?;
            }
        }
        Ok(removed)
    }

    /// Removes an account and everything of it: its record, email index
    /// entry, data key, sessions, links, memberships.
    fn purge_account(&self, account: AccountId) -> Result<(), StorageError> {
        for entry in self.account_emails.iter() {
            let (email, holder) = entry?;
            if holder.as_ref() == account.as_bytes() {
                self.account_emails.remove(email)?;
            }
        }
        self.delete_sessions_of(account)?;
        self.remove_links_of(account, |_| true)?;
        for (store, _) in self.stores_of(account)? {
            self.remove_member(&store, account)?;
        }
        self.accounts.remove(account.as_bytes())?;
        self.vault.remove(DataKind::Account, account.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mikabot_actors::ids::MessageId;
    use mikabot_actors::language::Language;
    use mikabot_actors::log::{ClientClass, ConversationLog, ConversationMeta, StoredMessage};
    use mikabot_actors::prompt::Role;

    use super::*;
    use crate::storage::StorageOptions;

    /// Journals `scope` (without hiding it), as a crash right after would
    /// leave it: its id, the sessions it names, its counts.
    fn journaled(
        storage: &Storage,
        scope: &ErasureScope,
        now: u64,
    ) -> (Uuid, Vec<SessionId>, ErasureCounts) {
        let (request, sessions) = storage.journal(scope, now).expect("journaled");
        (request.id, sessions, request.counts)
    }

    fn conversation(storage: &Storage, store: &StoreId, text: &str) -> ConversationMeta {
        let meta = ConversationMeta {
            store: store.clone(),
            conversation: ConversationId::new(),
            session: SessionId::new(),
            started_at_ms: 1,
            language: Language::En,
            page_url: None,
            referrer: None,
            client: ClientClass::default(),
            ip: None,
        };
        storage.open_conversation(&meta).expect("open");
        storage
            .append(
                store,
                &StoredMessage {
                    author: None,
                    id: MessageId::new(),
                    conversation: meta.conversation,
                    role: Role::Shopper,
                    text: text.into(),
                    at_ms: 2,
                    client_id: None,
                    reply: None,
                },
            )
            .expect("append");
        meta
    }

    #[test]
    fn a_request_cut_short_at_any_step_resumes_and_completes_after_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = StorageOptions::in_dir(dir.path());
        let store = StoreId::parse("shop").expect("valid");
        let (erased, kept, id) = {
            let storage = Storage::open(&options).expect("open");
            let erased = conversation(&storage, &store, "call me on 0470 12 34 56");
            let kept = conversation(&storage, &store, "a tent");
            // Journaled, and the node stops before hiding anything.
            let scope = ErasureScope::Contact {
                store: Some(store.clone()),
                contact: Contact::phone("+32 470 12 34 56").expect("a number"),
            };
            let (id, sessions, counts) = journaled(&storage, &scope, 10);
            assert_eq!(sessions, vec![erased.session]);
            assert_eq!((counts.conversations, counts.messages), (1, 1));
            storage.db.flush().expect("flush");
            (erased, kept, id)
        };
        let storage = crate::storage::tests::reopen(&options);
        let pending = storage.pending_erasures().expect("pending");
        assert_eq!(pending.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id]);
        let receipt = storage.carry_out(id, 20).expect("carried out");
        assert_eq!(receipt.completed_at_ms, Some(20));
        assert_eq!(receipt.counts.conversations, 1);
        assert!(storage.pending_erasures().expect("pending").is_empty());
        assert_eq!(
            storage.find_session(&store, erased.session).expect("read"),
            None
        );
        assert!(
            storage
                .history(&store, erased.conversation, 10)
                .expect("read")
                .is_empty()
        );
        assert_eq!(
            storage
                .history(&store, kept.conversation, 10)
                .expect("read")
                .len(),
            1
        );
        // Every record of it is gone, its contact entries too.
        assert!(
            !storage
                .conversations
                .contains_key(keys::conversation(&store, erased.conversation))
                .expect("read")
        );
        assert_eq!(
            storage
                .messages
                .scan_prefix(keys::messages(&store, erased.conversation))
                .count(),
            0
        );
        assert_eq!(
            storage.conversation_contacts.len(),
            0,
            "its contact entries are gone"
        );
        // Done twice is done once.
        assert_eq!(
            storage.carry_out(id, 30).expect("again").completed_at_ms,
            Some(20)
        );
        assert_eq!(storage.erasure_receipts(10).expect("receipts").len(), 1);
    }

    #[test]
    fn erasing_all_of_a_stores_conversations_spares_those_started_after() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
        let store = StoreId::parse("shop").expect("valid");
        let other = StoreId::parse("other").expect("valid");
        let old = conversation(&storage, &store, "one");
        let elsewhere = conversation(&storage, &other, "two");
        let (id, _, counts) = journaled(
            &storage,
            &ErasureScope::StoreConversations {
                store: store.clone(),
            },
            1,
        );
        assert_eq!(counts.conversations, 1);
        let request = storage.erasure(id).expect("read").expect("there");
        storage.hide(&request).expect("hidden");
        // Hidden at once; a conversation started now lives on.
        assert_eq!(
            storage.find_session(&store, old.session).expect("read"),
            None
        );
        let new = conversation(&storage, &store, "three");
        storage.carry_out(id, 2).expect("done");
        assert_eq!(
            storage
                .history(&store, new.conversation, 10)
                .expect("read")
                .len(),
            1
        );
        assert_eq!(
            storage
                .history(&other, elsewhere.conversation, 10)
                .expect("read")
                .len(),
            1
        );
        assert!(
            storage
                .history(&store, old.conversation, 10)
                .expect("read")
                .is_empty()
        );
        // Resumed after the carry-out, hiding again destroys nothing new.
        storage.hide(&request).expect("hidden again");
        assert_eq!(
            storage
                .history(&store, new.conversation, 10)
                .expect("read")
                .len(),
            1
        );
    }

    #[test]
    fn an_erased_account_goes_with_the_stores_only_it_owns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
        let account = crate::accounts::Account {
            id: AccountId::new(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            password_hash: "$argon2id$x".into(),
            language: Language::En,
            verified: true,
            created: 1,
            deleted_at: Some(1),
            suspended: false,
            operator: false,
        };
        storage
            .create_account(&account)
            .expect("write")
            .expect("new");
        let store = StoreId::parse("shop").expect("valid");
        storage
            .put_store(&crate::storage::tests::shop_profile(&store, None))
            .expect("store");
        storage
            .set_member(&store, account.id, crate::accounts::Role::Owner)
            .expect("member");
        let chat = conversation(&storage, &store, "hello");
        let scope = ErasureScope::Account {
            account: account.id,
        };
        let counts = storage.erasure_preview(&scope).expect("preview");
        assert_eq!(
            (counts.accounts, counts.stores, counts.conversations),
            (1, 1, 1)
        );
        let (id, _, _) = journaled(&storage, &scope, 1);
        let request = storage.erasure(id).expect("read").expect("there");
        storage.hide(&request).expect("hidden");
        assert_eq!(
            storage.account(account.id).expect("read"),
            None,
            "hidden at once"
        );
        storage.carry_out(id, 2).expect("done");
        assert_eq!(
            storage.account_by_email("ada@example.com").expect("read"),
            None
        );
        assert_eq!(storage.store(&store).expect("read"), None);
        assert!(
            storage
                .history(&store, chat.conversation, 10)
                .expect("read")
                .is_empty()
        );
        assert_eq!(storage.accounts.len(), 0);
        assert_eq!(storage.account_emails.len(), 0);
    }

    #[test]
    fn a_batch_of_requests_rotates_each_store_key_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
        let store = StoreId::parse("shop").expect("valid");
        let a = conversation(&storage, &store, "one");
        let b = conversation(&storage, &store, "two");
        let kept = conversation(&storage, &store, "three");
        let before = storage
            .vault
            .current_id(&store_scope(&store))
            .expect("a key");
        let ids: Vec<Uuid> = [a.conversation, b.conversation]
            .into_iter()
            .map(|conversation| {
                journaled(
                    &storage,
                    &ErasureScope::Conversation {
                        store: store.clone(),
                        conversation,
                    },
                    1,
                )
                .0
            })
            .collect();
        let receipts = storage.carry_out_all(&ids, 2).expect("done");
        assert!(receipts.iter().all(|r| r.completed_at_ms == Some(2)));
        assert_eq!(
            storage.vault.current_id(&store_scope(&store)),
            Some(before + 1),
            "one rotation for the batch"
        );
        assert_eq!(
            storage
                .history(&store, kept.conversation, 10)
                .expect("read")
                .len(),
            1
        );
        assert!(
            storage
                .history(&store, a.conversation, 10)
                .expect("read")
                .is_empty()
        );
        assert!(
            storage
                .history(&store, b.conversation, 10)
                .expect("read")
                .is_empty()
        );
    }

    #[test]
    fn a_store_made_again_under_an_erased_stores_id_is_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
        let store = StoreId::parse("shop").expect("valid");
        let profile = crate::storage::tests::shop_profile(&store, None);
        storage.put_store(&profile).expect("store");
        let old = conversation(&storage, &store, "old");
        let (id, _, _) = journaled(
            &storage,
            &ErasureScope::Store {
                store: store.clone(),
            },
            1,
        );
        let request = storage.erasure(id).expect("read").expect("there");
        storage.hide(&request).expect("hidden");
        storage.remove_named_stores(&request).expect("removed");
        assert_eq!(storage.store(&store).expect("read"), None, "gone at once");
        // Made again before the worker runs.
        storage.put_store(&profile).expect("store again");
        let new = conversation(&storage, &store, "new");
        storage.carry_out(id, 2).expect("done");
        assert!(
            storage.store(&store).expect("read").is_some(),
            "the new store stays"
        );
        assert_eq!(
            storage
                .history(&store, new.conversation, 10)
                .expect("read")
                .len(),
            1
        );
        assert!(
            storage
                .history(&store, old.conversation, 10)
                .expect("read")
                .is_empty()
        );
    }
}
