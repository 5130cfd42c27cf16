//! Conversations and their messages: the actors' [`ConversationLog`].
//! A conversation's record is written before the session entry that points
//! at it, so a session never resolves to nothing. Messages made durable go
//! through the storage thread ([`super::flusher`]), which writes them and
//! answers after the flush that covers them.

use futures_util::future::BoxFuture;
use mikabot_actors::ids::{ConversationId, SessionId, StoreId};
use mikabot_actors::log::{
    ClientClass, ConversationLog, ConversationMeta, LogError, StoredMessage,
};
use mikabot_actors::prompt::Role;

use super::crypto::SecretKey;
use super::keyring::Scope;
use super::records::{ConversationV1, MessageV1, TechnicalV1};
use super::vault::DataKind;
use super::{Storage, StorageError, WhenFull, codec, contacts, keys};

impl From<StorageError> for LogError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Corrupt { .. } => LogError::Corrupt(error.to_string()),
            StorageError::Closed => LogError::Closed,
            StorageError::Busy => LogError::Busy,
            StorageError::Erased => LogError::Erased,
            StorageError::Sled(_)
            | StorageError::SchemaMismatch { .. }
            | StorageError::Flush(_)
            | StorageError::Interrupted(_)
            | StorageError::Keys(_) => LogError::Failed(error.to_string()),
        }
    }
}

/// The key scope of a store's conversations.
pub(crate) fn store_scope(store: &StoreId) -> Scope {
    Scope::Store(store.as_str().to_owned())
}

impl Storage {
    /// Where a shopper session is found: its keyed hash, never the id
    /// itself, which is the shopper's bearer secret. A backup or an old
    /// file holds no session id that would open a conversation on a live
    /// node.
    pub(crate) fn session_key(&self, store: &StoreId, session: SessionId) -> Vec<u8> {
        let mut key = keys::store_prefix(store);
        key.extend_from_slice(&super::crypto::keyed_hash(
            &self.vault.index_key(),
            b"session",
            session.as_bytes(),
        ));
        key
    }

    /// A conversation's data key; `None` once it is erased (or never was).
    pub(crate) fn conversation_key(
        &self,
        store: &StoreId,
        conversation: ConversationId,
    ) -> Result<Option<SecretKey>, StorageError> {
        self.vault.get(
            DataKind::Conversation,
            &store_scope(store),
            &keys::conversation(store, conversation),
        )
    }

    /// A conversation's record with its technical data (if not dropped);
    /// `None` when it does not exist or is erased.
    pub(crate) fn conversation_meta(
        &self,
        store: &StoreId,
        conversation: ConversationId,
    ) -> Result<Option<ConversationMeta>, StorageError> {
        let key = keys::conversation(store, conversation);
        let Some(data_key) = self.conversation_key(store, conversation)? else {
            return Ok(None);
        };
        let Some(record) = self.conversations.get(&key)? else {
            return Ok(None);
        };
        let mut meta: ConversationMeta =
            codec::open_sealed::<ConversationV1, _>(&data_key, "conversations", &key, &record)?;
        if let Some(technical) = self.technical.get(&key)?
            && let Some(technical_key) =
                self.vault
                    .get(DataKind::Technical, &store_scope(store), &key)?
        {
            let technical: TechnicalV1 =
                codec::open_record(&technical_key, "technical", &key, &technical)?;
            meta.page_url = technical.page_url;
            meta.referrer = technical.referrer;
            meta.client = ClientClass {
                browser: technical.client.browser,
                device: technical.client.device,
            };
            meta.ip = technical.ip;
        }
        Ok(Some(meta))
    }

    /// Restricts a conversation (kept, but out of every prompt and any
    /// analytics) or lifts it. False, and nothing written, when the
    /// conversation does not exist or is erased.
    pub fn set_restricted(
        &self,
        store: &StoreId,
        conversation: ConversationId,
        restricted: bool,
    ) -> Result<bool, StorageError> {
        if self.conversation_key(store, conversation)?.is_none() {
            return Ok(false);
        }
        let key = keys::conversation(store, conversation);
        if restricted {
            self.restrictions.insert(key, &[][..])?;
        } else {
            self.restrictions.remove(key)?;
        }
        Ok(true)
    }

    /// Records a shopper session's objection to the processing of its
    /// conversation for analytics (none runs on objected sessions).
    pub fn record_objection(
        &self,
        store: &StoreId,
        session: SessionId,
        at_ms: u64,
    ) -> Result<(), StorageError> {
        self.objections
            .insert(self.session_key(store, session), &at_ms.to_be_bytes())?;
        Ok(())
    }

    /// When a shopper session objected, if it did.
    pub fn objection(
        &self,
        store: &StoreId,
        session: SessionId,
    ) -> Result<Option<u64>, StorageError> {
        Ok(self
            .objections
            .get(self.session_key(store, session))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    /// Whether a conversation is restricted.
    pub fn is_restricted(
        &self,
        store: &StoreId,
        conversation: ConversationId,
    ) -> Result<bool, StorageError> {
        Ok(self
            .restrictions
            .contains_key(keys::conversation(store, conversation))?)
    }

    /// A store's conversations that still open, newest first: at most
    /// `limit`, started before `before` when given.
    pub fn conversations_of_store(
        &self,
        store: &StoreId,
        before: Option<ConversationId>,
        limit: usize,
    ) -> Result<Vec<ConversationMeta>, StorageError> {
        let prefix = keys::store_prefix(store);
        let end = match before {
            Some(before) => keys::conversation(store, before),
            // `store \1`: just past every key of the store.
            None => {
                let mut end = prefix.clone();
                end.pop();
                end.push(1);
                end
            }
        };
        let mut found = Vec::new();
        for entry in self.conversations.range(prefix.clone()..end).rev() {
            let (key, _) = entry?;
            let Some(conversation) = keys::conversation_of(&key) else {
                continue;
            };
            if let Some(meta) = self.conversation_meta(store, conversation)? {
                found.push(meta);
                if found.len() == limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// The writes that store `message`: the message sealed under its
    /// conversation's key and, for a shopper's message, the contact index
    /// entries of what it holds. Refused once the conversation is erased.
    fn message_writes(
        &self,
        store: &StoreId,
        message: &StoredMessage,
    ) -> Result<Vec<super::flusher::Write>, StorageError> {
        let Some(data_key) = self.conversation_key(store, message.conversation)? else {
            return Err(StorageError::Erased);
        };
        let key = keys::message(store, message.conversation, message.id);
        let value = codec::sealed(&data_key, "messages", &key, &MessageV1::from(message));
        let mut writes = vec![(self.messages.clone(), key, value)];
        if message.role == Role::Shopper {
            // Keyed by the conversation's own data key: once that key is
            // gone, no copy of these hashes can be tested against a guess.
            let conversation = keys::conversation(store, message.conversation);
            for contact in contacts::find(&message.text) {
                let mut entry = conversation.clone();
                entry.extend_from_slice(&contact.hash(&data_key));
                writes.push((self.conversation_contacts.clone(), entry, Vec::new()));
            }
        }
        Ok(writes)
    }
}

impl ConversationLog for Storage {
    fn find_session(
        &self,
        store: &StoreId,
        session: SessionId,
    ) -> Result<Option<ConversationMeta>, LogError> {
        let Some(conversation) = self
            .sessions
            .get(self.session_key(store, session))
            .map_err(StorageError::from)?
        else {
            return Ok(None);
        };
        let Ok(conversation) = <[u8; 16]>::try_from(conversation.as_ref()) else {
            return Err(LogError::Corrupt(
                "a session entry does not hold a conversation id".into(),
            ));
        };
        Ok(self.conversation_meta(store, ConversationId::from_bytes(conversation))?)
    }

    fn open_conversation(&self, meta: &ConversationMeta) -> Result<(), LogError> {
        let store = &meta.store;
        let key = keys::conversation(store, meta.conversation);
        let scope = store_scope(store);
        // Keys first, then the technical data, then the record, then the
        // session entry: a session entry never points at nothing.
        let data_key = self.vault.create(DataKind::Conversation, &scope, &key)?;
        let technical_key = self.vault.create(DataKind::Technical, &scope, &key)?;
        let technical = codec::sealed(&technical_key, "technical", &key, &TechnicalV1::from(meta));
        self.technical
            .insert(&key, technical)
            .map_err(StorageError::from)?;
        let mut record = ConversationV1::from(meta);
        record.strip_technical();
        let value = codec::sealed(&data_key, "conversations", &key, &record);
        self.conversations
            .insert(key, value)
            .map_err(StorageError::from)?;
        self.sessions
            .insert(
                self.session_key(store, meta.session),
                meta.conversation.as_bytes(),
            )
            .map_err(StorageError::from)?;
        Ok(())
    }

    fn append(&self, store: &StoreId, message: &StoredMessage) -> Result<(), LogError> {
        for (tree, key, value) in self.message_writes(store, message)? {
            tree.insert(key, value).map_err(StorageError::from)?;
        }
        Ok(())
    }

    fn append_durable(
        &self,
        store: &StoreId,
        message: &StoredMessage,
    ) -> BoxFuture<'static, Result<(), LogError>> {
        let storage = self.clone();
        let writes = self.message_writes(store, message);
        Box::pin(async move { Ok(storage.request_flush(writes?, WhenFull::Refuse).await?) })
    }

    fn record_durably(
        &self,
        store: &StoreId,
        message: &StoredMessage,
    ) -> BoxFuture<'static, Result<(), LogError>> {
        let storage = self.clone();
        let writes = self.message_writes(store, message);
        Box::pin(async move { Ok(storage.request_flush(writes?, WhenFull::Wait).await?) })
    }

    fn history(
        &self,
        store: &StoreId,
        conversation: ConversationId,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, LogError> {
        let Some(data_key) = self.conversation_key(store, conversation)? else {
            return Ok(Vec::new());
        };
        let mut newest_first = self
            .messages
            .scan_prefix(keys::messages(store, conversation))
            .rev()
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.map_err(StorageError::from)?;
                Ok(codec::open_sealed::<MessageV1, _>(
                    &data_key, "messages", &key, &value,
                )?)
            })
            .collect::<Result<Vec<StoredMessage>, LogError>>()?;
        newest_first.reverse();
        Ok(newest_first)
    }

    fn flush(&self) -> BoxFuture<'static, Result<(), LogError>> {
        let storage = self.clone();
        Box::pin(async move { Ok(storage.flush().await?) })
    }

    fn restricted(&self, store: &StoreId, conversation: ConversationId) -> Result<bool, LogError> {
        Ok(self.is_restricted(store, conversation)?)
    }
}

#[cfg(test)]
mod tests {
    use mikabot_actors::ids::MessageId;
    use mikabot_actors::language::Language;
    use mikabot_actors::log::ClientClass;
    use mikabot_actors::prompt::Role;

    use super::*;
    use crate::storage::StorageOptions;

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
            author: None,
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
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
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
    fn an_unreadable_message_is_a_corrupt_log_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
        let shop = StoreId::parse("shop").expect("valid");
        let a = meta(&shop);
        storage.open_conversation(&a).expect("open conversation");
        let broken = keys::message(&shop, a.conversation, MessageId::new());
        storage
            .messages
            .insert(broken, &b"not json"[..])
            .expect("insert");
        match storage.history(&shop, a.conversation, 10) {
            Err(LogError::Corrupt(problem)) => assert!(problem.contains("messages"), "{problem}"),
            other => panic!("expected a corrupt record, got {other:?}"),
        }
    }

    #[test]
    fn check_all_counts_every_record_and_finds_an_unreadable_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
        let shop = StoreId::parse("shop").expect("valid");
        let a = meta(&shop);
        storage.open_conversation(&a).expect("open conversation");
        for text in ["one", "two"] {
            storage.append(&shop, &message(&a, text)).expect("append");
        }
        let counts = storage.check_all().expect("all readable");
        assert_eq!(
            (counts.conversations, counts.sessions, counts.messages),
            (1, 1, 2)
        );
        storage
            .messages
            .insert(
                keys::message(&shop, a.conversation, MessageId::new()),
                &b"{"[..],
            )
            .expect("insert");
        assert!(storage.check_all().is_err(), "a broken message is found");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_shopper_messages_and_loses_nothing_acknowledged() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage =
            Storage::open(&StorageOptions::in_dir(dir.path()).with_flush_queue(1)).expect("open");
        let shop = StoreId::parse("shop").expect("valid");
        let conversation = meta(&shop);
        storage
            .open_conversation(&conversation)
            .expect("open conversation");
        let messages: Vec<StoredMessage> = (0..500)
            .map(|n| message(&conversation, &format!("message {n}")))
            .collect();
        let outcomes = futures_util::future::join_all(
            messages.iter().map(|m| storage.append_durable(&shop, m)),
        )
        .await;
        let busy = outcomes
            .iter()
            .filter(|o| matches!(o, Err(LogError::Busy)))
            .count();
        let ok = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(
            ok + busy,
            messages.len(),
            "only busy refusals: {outcomes:?}"
        );
        assert!(busy > 0, "a queue of one refused none of 500 at once");
        let stored = storage
            .history(&shop, conversation.conversation, usize::MAX)
            .expect("history");
        let stored: std::collections::HashSet<_> = stored.iter().map(|m| m.id).collect();
        for (message, outcome) in messages.iter().zip(&outcomes) {
            assert_eq!(
                stored.contains(&message.id),
                outcome.is_ok(),
                "{}",
                message.text
            );
        }
        // A reply waits for room instead: never refused.
        let replies: Vec<StoredMessage> = (0..50)
            .map(|n| message(&conversation, &format!("reply {n}")))
            .collect();
        let recorded = futures_util::future::join_all(
            replies.iter().map(|m| storage.record_durably(&shop, m)),
        )
        .await;
        assert!(recorded.iter().all(Result::is_ok), "{recorded:?}");
    }

    #[tokio::test]
    async fn many_concurrent_writers_all_get_their_flush_either_way() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
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
}
