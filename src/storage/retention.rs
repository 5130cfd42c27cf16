//! What retention finds due, given a moment: the storage half of the
//! retention sweeper (`crate::privacy::retention`), which files erasures
//! for what is found and drops technical data.
//!
//! Every decision takes `now` from the caller, so a test sets the clock.

use mikabot_actors::ids::{ConversationId, StoreId};
use mikabot_actors::log::ConversationLog;

use super::conversations::store_scope;
use super::vault::DataKind;
use super::{Storage, StorageError, keys};
use crate::accounts::AccountId;

/// What is due at a moment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Conversations past their store's retention, per store.
    pub conversations: Vec<(StoreId, Vec<ConversationId>)>,
    /// Conversations whose technical data is past the usage horizon.
    pub technical: Vec<(StoreId, Vec<ConversationId>)>,
    /// Accounts deleted longer ago than the grace period.
    pub accounts: Vec<AccountId>,
}

/// The horizons, as moments: what started (or was last active) before
/// them is due.
#[derive(Clone, Copy, Debug)]
pub struct Horizons {
    /// Technical data of conversations started before this (ms).
    pub technical_before_ms: u64,
    /// Accounts deleted at or before this (s).
    pub accounts_deleted_by_secs: u64,
}

impl Storage {
    /// The conversations of every store, readable ones only.
    fn conversations_of(&self, store: &StoreId) -> Result<Vec<ConversationId>, StorageError> {
        let mut found = Vec::new();
        for key in self
            .conversations
            .scan_prefix(keys::store_prefix(store))
            .keys()
        {
            if let Some(conversation) = keys::conversation_of(&key?) {
                found.push(conversation);
            }
        }
        Ok(found)
    }

    /// What is due at `now_ms` under `horizons` and each store's own
    /// retention days.
    pub fn retention_due(&self, now_ms: u64, horizons: Horizons) -> Result<Due, StorageError> {
        let mut due = Due::default();
        for profile in self.stores()? {
            let store = profile.id.clone();
            let conversations_before = profile
                .retention_days
                .map(|days| now_ms.saturating_sub(u64::from(days) * 86_400_000));
            let mut expired = Vec::new();
            let mut technical = Vec::new();
            for conversation in self.conversations_of(&store)? {
                let Some(meta) = self.conversation_meta(&store, conversation)? else {
                    continue;
                };
                if let Some(before) = conversations_before {
                    // Counted from the conversation's last message: a
                    // shopper who came back keeps the conversation.
                    let last = ConversationLog::history(self, &store, conversation, 1)
                        .map_err(|e| StorageError::Corrupt {
                            tree: "messages",
                            problem: e.to_string(),
                        })?
                        .last()
                        .map_or(meta.started_at_ms, |m| m.at_ms.max(meta.started_at_ms));
                    if last < before {
                        expired.push(conversation);
                        continue;
                    }
                }
                if meta.started_at_ms < horizons.technical_before_ms
                    && self
                        .technical
                        .contains_key(keys::conversation(&store, conversation))?
                {
                    technical.push(conversation);
                }
            }
            if !expired.is_empty() {
                due.conversations.push((store.clone(), expired));
            }
            if !technical.is_empty() {
                due.technical.push((store, technical));
            }
        }
        for account in self.accounts()? {
            if account.deleted_at.is_some_and(|at| {
                at + crate::accounts::DELETION_GRACE_SECS <= horizons.accounts_deleted_by_secs
            }) {
                due.accounts.push(account.id);
            }
        }
        Ok(due)
    }

    /// Drops the technical data of `conversations`: its record and its data
    /// key, then rotates the store's key so no copy of that data key opens
    /// in old files. How many were dropped.
    pub fn drop_technical(
        &self,
        store: &StoreId,
        conversations: &[ConversationId],
    ) -> Result<usize, StorageError> {
        let mut dropped = 0;
        for conversation in conversations {
            let key = keys::conversation(store, *conversation);
            let had = self.vault.remove(DataKind::Technical, &key)?;
            let record = self.technical.remove(&key)?.is_some();
            dropped += usize::from(had || record);
        }
        if dropped > 0 {
            self.vault.rotate(&store_scope(store))?;
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use mikabot_actors::ids::SessionId;
    use mikabot_actors::language::Language;
    use mikabot_actors::log::{ClientClass, ConversationMeta};

    use super::*;
    use crate::accounts::Account;
    use crate::privacy::months_before;
    use crate::storage::StorageOptions;

    const DAY: u64 = 86_400_000;
    /// 2026-12-02, midday.
    const NOW: u64 = 1_796_212_800_000;

    fn storage(retention_days: Option<u32>) -> (tempfile::TempDir, Storage, StoreId) {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
        let store = StoreId::parse("shop").expect("valid");
        storage
            .put_store(&crate::storage::tests::shop_profile(&store, retention_days))
            .expect("store");
        (dir, storage, store)
    }

    fn conversation(storage: &Storage, store: &StoreId, started_at_ms: u64) -> ConversationId {
        let meta = ConversationMeta {
            store: store.clone(),
            conversation: ConversationId::new(),
            session: SessionId::new(),
            started_at_ms,
            language: Language::En,
            page_url: Some("https://shop.example/tents".into()),
            referrer: Some("https://search.example".into()),
            client: ClientClass {
                browser: "firefox".into(),
                device: "mobile".into(),
            },
            ip: Some("192.0.2.0".into()),
        };
        storage.open_conversation(&meta).expect("open");
        meta.conversation
    }

    fn horizons(now: u64) -> Horizons {
        Horizons {
            technical_before_ms: months_before(now, 26),
            accounts_deleted_by_secs: now / 1000,
        }
    }

    #[test]
    fn technical_data_goes_one_day_past_26_months_and_not_one_day_before() {
        let (_dir, storage, store) = storage(None);
        let horizon = months_before(NOW, 26);
        let kept = conversation(&storage, &store, horizon + DAY);
        let dropped = conversation(&storage, &store, horizon - DAY);
        let due = storage.retention_due(NOW, horizons(NOW)).expect("due");
        assert_eq!(due.technical, vec![(store.clone(), vec![dropped])]);
        assert!(
            due.conversations.is_empty(),
            "the text stays under its own rule"
        );
        assert_eq!(storage.drop_technical(&store, &[dropped]).expect("drop"), 1);
        let after = storage
            .conversation_meta(&store, dropped)
            .expect("read")
            .expect("kept");
        assert_eq!(
            (after.page_url, after.referrer, after.ip),
            (None, None, None)
        );
        assert_eq!(after.client, ClientClass::default());
        let untouched = storage
            .conversation_meta(&store, kept)
            .expect("read")
            .expect("kept");
        assert_eq!(untouched.ip.as_deref(), Some("192.0.2.0"));
        assert!(
            storage
                .retention_due(NOW, horizons(NOW))
                .expect("due")
                .technical
                .is_empty()
        );
    }

    #[test]
    fn a_stores_retention_counts_from_the_last_message() {
        let (_dir, storage, store) = storage(Some(30));
        let old = conversation(&storage, &store, NOW - 31 * DAY);
        let young = conversation(&storage, &store, NOW - 29 * DAY);
        let returned = conversation(&storage, &store, NOW - 40 * DAY);
        storage
            .append(
                &store,
                &mikabot_actors::log::StoredMessage {
                    author: None,
                    id: mikabot_actors::ids::MessageId::new(),
                    conversation: returned,
                    role: mikabot_actors::prompt::Role::Shopper,
                    text: "back again".into(),
                    at_ms: NOW - 2 * DAY,
                    client_id: None,
                    reply: None,
                },
            )
            .expect("append");
        let due = storage.retention_due(NOW, horizons(NOW)).expect("due");
        assert_eq!(due.conversations, vec![(store, vec![old])]);
        let _ = young;
    }

    #[test]
    fn a_deleted_account_is_due_at_30_days_and_not_at_29() {
        let (_dir, storage, _) = storage(None);
        let mut account = Account {
            id: AccountId::new(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            password_hash: "$argon2id$x".into(),
            language: Language::En,
            verified: true,
            created: 1,
            deleted_at: Some(NOW / 1000 - 29 * 86_400),
            suspended: false,
            operator: false,
        };
        storage
            .create_account(&account)
            .expect("write")
            .expect("new");
        assert!(
            storage
                .retention_due(NOW, horizons(NOW))
                .expect("due")
                .accounts
                .is_empty()
        );
        account.deleted_at = Some(NOW / 1000 - 30 * 86_400);
        storage.put_account(&account).expect("write");
        assert_eq!(
            storage
                .retention_due(NOW, horizons(NOW))
                .expect("due")
                .accounts,
            vec![account.id]
        );
    }
}
