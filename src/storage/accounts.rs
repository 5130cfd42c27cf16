//! The owners' records: accounts and their email index, dashboard sessions,
//! one-time links, store memberships (both directions), per-store API
//! tokens and cookie-consent decisions.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `accounts` | `account(16)` | [`AccountV1`], sealed under the account's data key |
//! | `account_emails` | keyed hash of the normalised email | `account(16)` |
//! | `dashboard_sessions` | `sha256(cookie)` | [`SessionV1`] |
//! | `account_sessions` | `account(16) sha256(cookie)` | empty |
//! | `links` | `sha256(token)` | [`LinkV1`] |
//! | `members` | `store \0 account(16)` | role |
//! | `account_stores` | `account(16) store` | role |
//! | `api_tokens` | `store \0 token(16)` | [`TokenV1`] |
//! | `consents` | `decision(16)` | [`ConsentV1`] |
//!
//! Secrets are found by their SHA-256 only ([`crate::accounts::secret`]).
//! An account (name, email, password hash) is sealed under its own data
//! key, wrapped by the keyring's accounts key; its email index holds a
//! keyed hash, not the address. The other records here hold no name or
//! address, except a pending link's new or invited address until it is
//! used or expires.

use mikabot_actors::ids::StoreId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use uuid::Uuid;

use super::crypto::{self, SecretKey};
use super::keyring::Scope;
use super::records::LanguageV1;
use super::vault::DataKind;
use super::{Storage, StorageError, codec, keys};
use crate::accounts::secret;
use crate::accounts::{
    Account, AccountId, ApiToken, ConsentRecord, DashboardSession, LinkPurpose, OneTimeLink, Role,
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountV1 {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub language: LanguageV1,
    pub verified: bool,
    pub created: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<u64>,
    #[serde(default)]
    pub suspended: bool,
    #[serde(default)]
    pub operator: bool,
}

impl From<&Account> for AccountV1 {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.0,
            name: a.name.clone(),
            email: a.email.clone(),
            password_hash: a.password_hash.clone(),
            language: a.language.into(),
            verified: a.verified,
            created: a.created,
            deleted_at: a.deleted_at,
            suspended: a.suspended,
            operator: a.operator,
        }
    }
}

impl From<AccountV1> for Account {
    fn from(a: AccountV1) -> Self {
        Self {
            id: AccountId(a.id),
            name: a.name,
            email: a.email,
            password_hash: a.password_hash,
            language: a.language.into(),
            verified: a.verified,
            created: a.created,
            deleted_at: a.deleted_at,
            suspended: a.suspended,
            operator: a.operator,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionV1 {
    pub account: Uuid,
    pub csrf: String,
    pub created: u64,
    pub seen: u64,
}

impl From<&DashboardSession> for SessionV1 {
    fn from(s: &DashboardSession) -> Self {
        Self {
            account: s.account.0,
            csrf: s.csrf.clone(),
            created: s.created,
            seen: s.seen,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum PurposeV1 {
    Verify,
    Reset,
    ChangeEmail {
        email: String,
    },
    Invite {
        store: String,
        role: Role,
        email: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkV1 {
    #[serde(flatten)]
    pub purpose: PurposeV1,
    pub account: Option<Uuid>,
    pub expires: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenV1 {
    pub name: String,
    /// The SHA-256 of the token's secret, hex.
    pub hash: String,
    pub created: u64,
    pub created_by: Uuid,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsentV1 {
    pub time: u64,
    pub policy_version: u32,
    pub functional: bool,
    pub analytics: bool,
    pub account: Option<Uuid>,
}

/// An invitation not accepted yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingInvitation {
    /// The SHA-256 of its link's token (its id in the dashboard).
    pub digest: [u8; 32],
    pub email: String,
    pub role: Role,
    pub expires: u64,
}

/// An email address that already has an account.
#[derive(Debug, thiserror::Error)]
#[error("an account with this email address exists")]
pub struct EmailTaken;

fn encode<R: Serialize>(record: &R) -> Vec<u8> {
    // The records hold strings, numbers and booleans only: serialising
    // them cannot fail.
    serde_json::to_vec(record).unwrap_or_default()
}

fn decode<R: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<R, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        tree,
        problem: e.to_string(),
    })
}

fn account_id(tree: &'static str, bytes: &[u8]) -> Result<AccountId, StorageError> {
    <[u8; 16]>::try_from(bytes)
        .map(|b| AccountId(Uuid::from_bytes(b)))
        .map_err(|_| StorageError::Corrupt {
            tree,
            problem: "an account id is not 16 bytes".into(),
        })
}

fn role(tree: &'static str, bytes: &[u8]) -> Result<Role, StorageError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(Role::parse)
        .ok_or_else(|| StorageError::Corrupt {
            tree,
            problem: "a role is not owner, agent or viewer".into(),
        })
}

fn member_key(store: &StoreId, account: AccountId) -> Vec<u8> {
    let mut key = keys::store_prefix(store);
    key.extend_from_slice(account.as_bytes());
    key
}

fn account_store_key(account: AccountId, store: &StoreId) -> Vec<u8> {
    let mut key = account.as_bytes().to_vec();
    key.extend_from_slice(store.as_str().as_bytes());
    key
}

fn token_key(store: &StoreId, token: Uuid) -> Vec<u8> {
    let mut key = keys::store_prefix(store);
    key.extend_from_slice(token.as_bytes());
    key
}

/// The error of a transaction that never aborts.
fn unaborted(error: TransactionError<()>) -> StorageError {
    match error {
        TransactionError::Storage(e) => StorageError::from(e),
        TransactionError::Abort(()) => StorageError::Interrupted("a transaction aborted".into()),
    }
}

fn flatten<E>(error: TransactionError<E>) -> Result<E, StorageError> {
    match error {
        TransactionError::Abort(e) => Ok(e),
        TransactionError::Storage(e) => Err(e.into()),
    }
}

impl Storage {
    /// The email index's key of a normalised address: its keyed hash.
    fn email_key(&self, email: &str) -> [u8; 32] {
        crypto::keyed_hash(&self.vault.index_key(), b"account-email", email.as_bytes())
    }

    /// An account's data key; `None` once it is erased.
    fn account_key(&self, id: AccountId) -> Result<Option<SecretKey>, StorageError> {
        self.vault
            .get(DataKind::Account, &Scope::Accounts, id.as_bytes())
    }

    fn seal_account(key: &SecretKey, account: &Account) -> Vec<u8> {
        codec::sealed(
            key,
            "accounts",
            account.id.as_bytes(),
            &AccountV1::from(account),
        )
    }

    fn open_account(key: &SecretKey, id: AccountId, bytes: &[u8]) -> Result<Account, StorageError> {
        codec::open_record::<AccountV1>(key, "accounts", id.as_bytes(), bytes).map(Account::from)
    }

    /// Creates an account, unless its email address has one.
    pub fn create_account(
        &self,
        account: &Account,
    ) -> Result<Result<(), EmailTaken>, StorageError> {
        let key = self
            .vault
            .create(DataKind::Account, &Scope::Accounts, account.id.as_bytes())?;
        let value = Self::seal_account(&key, account);
        let email = self.email_key(&account.email);
        let result = (&self.accounts, &self.account_emails).transaction(|(accounts, emails)| {
            if emails.get(email)?.is_some() {
                return Err(ConflictableTransactionError::Abort(EmailTaken));
            }
            emails.insert(&email, account.id.as_bytes().as_slice())?;
            accounts.insert(account.id.as_bytes().as_slice(), value.as_slice())?;
            Ok(())
        });
        match result {
            Ok(()) => Ok(Ok(())),
            Err(e) => {
                self.vault
                    .remove(DataKind::Account, account.id.as_bytes())?;
                flatten(e).map(Err)
            }
        }
    }

    /// Rewrites an account whose email address did not change.
    pub fn put_account(&self, account: &Account) -> Result<(), StorageError> {
        let key = self.account_key(account.id)?.ok_or(StorageError::Erased)?;
        self.accounts.insert(
            account.id.as_bytes().as_slice(),
            Self::seal_account(&key, account),
        )?;
        Ok(())
    }

    /// Moves an account to a new email address, unless another account has
    /// it.
    pub fn change_email(
        &self,
        account: &Account,
        new_email: &str,
    ) -> Result<Result<(), EmailTaken>, StorageError> {
        let Some(key) = self.account_key(account.id)? else {
            return Ok(Err(EmailTaken));
        };
        let new_index = self.email_key(new_email);
        let result = (&self.accounts, &self.account_emails).transaction(|(accounts, emails)| {
            if let Some(holder) = emails.get(new_index)?
                && holder.as_ref() != account.id.as_bytes()
            {
                return Err(ConflictableTransactionError::Abort(EmailTaken));
            }
            // The stored account, read inside the transaction: only its
            // address changes, whatever else changed since `account` was
            // read (a suspension, a new password).
            let Some(stored) = accounts.get(account.id.as_bytes())? else {
                return Err(ConflictableTransactionError::Abort(EmailTaken));
            };
            let Ok(mut changed) = Self::open_account(&key, account.id, &stored) else {
                return Err(ConflictableTransactionError::Abort(EmailTaken));
            };
            let old_email = std::mem::replace(&mut changed.email, new_email.to_owned());
            emails.remove(&self.email_key(&old_email))?;
            emails.insert(&new_index, account.id.as_bytes().as_slice())?;
            accounts.insert(
                account.id.as_bytes().as_slice(),
                Self::seal_account(&key, &changed),
            )?;
            Ok(())
        });
        match result {
            Ok(()) => Ok(Ok(())),
            Err(e) => flatten(e).map(Err),
        }
    }

    /// Changes one account atomically from its stored state (`change` may
    /// run more than once under contention): a field written here never
    /// undoes another request's change. The account afterwards, if it
    /// exists.
    pub fn update_account(
        &self,
        id: AccountId,
        change: impl Fn(&mut Account),
    ) -> Result<Option<Account>, StorageError> {
        let Some(key) = self.account_key(id)? else {
            return Ok(None);
        };
        let mut corrupt = None;
        let updated = self.accounts.update_and_fetch(id.as_bytes(), |old| {
            // The closure runs again when another writer got in first.
            corrupt = None;
            let old = old?;
            match Self::open_account(&key, id, old) {
                Ok(mut account) => {
                    change(&mut account);
                    Some(Self::seal_account(&key, &account))
                }
                Err(e) => {
                    corrupt = Some(e);
                    Some(old.to_vec())
                }
            }
        })?;
        if let Some(e) = corrupt {
            return Err(e);
        }
        updated
            .map(|v| Self::open_account(&key, id, &v))
            .transpose()
    }

    /// An account; `None` if it does not exist or is erased.
    pub fn account(&self, id: AccountId) -> Result<Option<Account>, StorageError> {
        let Some(bytes) = self.accounts.get(id.as_bytes())? else {
            return Ok(None);
        };
        let Some(key) = self.account_key(id)? else {
            return Ok(None);
        };
        Self::open_account(&key, id, &bytes).map(Some)
    }

    /// The account of a normalised email address.
    pub fn account_by_email(&self, email: &str) -> Result<Option<Account>, StorageError> {
        match self.account_emails.get(self.email_key(email))? {
            Some(id) => self.account(account_id("account_emails", &id)?),
            None => Ok(None),
        }
    }

    /// Every account, oldest first.
    pub fn accounts(&self) -> Result<Vec<Account>, StorageError> {
        let mut accounts = Vec::new();
        for id in self.accounts.iter().keys() {
            if let Some(account) = self.account(account_id("accounts", &id?)?)? {
                accounts.push(account);
            }
        }
        Ok(accounts)
    }

    /// Removes an account that never confirmed its address and has no store:
    /// the account, its email index entry, sessions and links. Whether it
    /// was removed (an account that was verified or joined a store
    /// meanwhile is kept).
    pub fn remove_unverified(&self, id: AccountId) -> Result<bool, StorageError> {
        let Some(stored) = self.accounts.get(id.as_bytes())? else {
            return Ok(false);
        };
        let Some(account) = self.account(id)? else {
            return Ok(false);
        };
        if account.verified || !self.stores_of(id)?.is_empty() {
            return Ok(false);
        }
        let email = self.email_key(&account.email);
        let removed = (&self.accounts, &self.account_emails).transaction(|(accounts, emails)| {
            if accounts.get(id.as_bytes())?.as_deref() != Some(stored.as_ref()) {
                return Ok(false);
            }
            accounts.remove(id.as_bytes().as_slice())?;
            emails.remove(&email)?;
            Ok::<_, ConflictableTransactionError<()>>(true)
        });
        let removed = removed.map_err(unaborted)?;
        if removed {
            self.vault.remove(DataKind::Account, id.as_bytes())?;
            // So its name and address, in old files, no longer open.
            self.vault.rotate(&Scope::Accounts)?;
            self.delete_sessions_of(id)?;
            self.remove_links_of(id, |_| true)?;
        }
        Ok(removed)
    }

    pub fn create_session(
        &self,
        digest: &[u8; 32],
        session: &DashboardSession,
    ) -> Result<(), StorageError> {
        let value = encode(&SessionV1::from(session));
        let mut index = session.account.as_bytes().to_vec();
        index.extend_from_slice(digest);
        (&self.dashboard_sessions, &self.account_sessions)
            .transaction(|(sessions, by_account)| {
                sessions.insert(digest.as_slice(), value.as_slice())?;
                by_account.insert(index.as_slice(), &[] as &[u8])?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(unaborted)
    }

    pub fn session(&self, digest: &[u8; 32]) -> Result<Option<DashboardSession>, StorageError> {
        self.dashboard_sessions
            .get(digest)?
            .map(|v| {
                decode::<SessionV1>("dashboard_sessions", &v).map(|s| DashboardSession {
                    account: AccountId(s.account),
                    csrf: s.csrf,
                    created: s.created,
                    seen: s.seen,
                })
            })
            .transpose()
    }

    /// Notes that a session was seen at `seen`.
    pub fn touch_session(
        &self,
        digest: &[u8; 32],
        session: &DashboardSession,
    ) -> Result<(), StorageError> {
        let value = encode(&SessionV1::from(session));
        // Only a session that still exists is touched: a log-out racing a
        // request must not bring the session back.
        self.dashboard_sessions
            .fetch_and_update(digest, |old| old.map(|_| value.clone()))?;
        Ok(())
    }

    pub fn delete_session(&self, digest: &[u8; 32]) -> Result<(), StorageError> {
        if let Some(v) = self.dashboard_sessions.remove(digest)? {
            let session: SessionV1 = decode("dashboard_sessions", &v)?;
            let mut index = session.account.as_bytes().to_vec();
            index.extend_from_slice(digest);
            self.account_sessions.remove(index)?;
        }
        Ok(())
    }

    /// Ends every session of an account (log out everywhere, a password
    /// change, a suspension); returns how many there were.
    pub fn delete_sessions_of(&self, account: AccountId) -> Result<usize, StorageError> {
        let mut ended = 0;
        for entry in self.account_sessions.scan_prefix(account.as_bytes()) {
            let (index, _) = entry?;
            if let Some(digest) = index.get(16..) {
                self.dashboard_sessions.remove(digest)?;
            }
            self.account_sessions.remove(index)?;
            ended += 1;
        }
        Ok(ended)
    }

    /// Removes sessions for which `expired(created, seen)` holds; returns
    /// how many.
    pub fn sweep_sessions(
        &self,
        expired: impl Fn(u64, u64) -> bool,
    ) -> Result<usize, StorageError> {
        let mut swept = 0;
        for entry in self.dashboard_sessions.iter() {
            let (digest, value) = entry?;
            let Ok(session) = decode::<SessionV1>("dashboard_sessions", &value) else {
                continue;
            };
            if expired(session.created, session.seen) {
                let digest = <[u8; 32]>::try_from(digest.as_ref()).unwrap_or([0; 32]);
                self.delete_session(&digest)?;
                swept += 1;
            }
        }
        Ok(swept)
    }

    pub fn put_link(&self, digest: &[u8; 32], link: &OneTimeLink) -> Result<(), StorageError> {
        let purpose = match &link.purpose {
            LinkPurpose::Verify => PurposeV1::Verify,
            LinkPurpose::Reset => PurposeV1::Reset,
            LinkPurpose::ChangeEmail { email } => PurposeV1::ChangeEmail {
                email: email.clone(),
            },
            LinkPurpose::Invite { store, role, email } => PurposeV1::Invite {
                store: store.as_str().to_owned(),
                role: *role,
                email: email.clone(),
            },
        };
        let value = encode(&LinkV1 {
            purpose,
            account: link.account.map(|a| a.0),
            expires: link.expires,
        });
        self.links.insert(digest, value)?;
        Ok(())
    }

    fn decode_link(value: &[u8]) -> Result<OneTimeLink, StorageError> {
        let link: LinkV1 = decode("links", value)?;
        let purpose = match link.purpose {
            PurposeV1::Verify => LinkPurpose::Verify,
            PurposeV1::Reset => LinkPurpose::Reset,
            PurposeV1::ChangeEmail { email } => LinkPurpose::ChangeEmail { email },
            PurposeV1::Invite { store, role, email } => LinkPurpose::Invite {
                store: StoreId::parse(&store).map_err(|e| StorageError::Corrupt {
                    tree: "links",
                    problem: e.to_string(),
                })?,
                role,
                email,
            },
        };
        Ok(OneTimeLink {
            purpose,
            account: link.account.map(AccountId),
            expires: link.expires,
        })
    }

    /// A link, left in place (to show a form before it is used).
    pub fn link(&self, digest: &[u8; 32]) -> Result<Option<OneTimeLink>, StorageError> {
        self.links
            .get(digest)?
            .map(|v| Self::decode_link(&v))
            .transpose()
    }

    /// Removes a link and returns it: of two requests using one link, one
    /// gets it.
    pub fn take_link(&self, digest: &[u8; 32]) -> Result<Option<OneTimeLink>, StorageError> {
        self.links
            .remove(digest)?
            .map(|v| Self::decode_link(&v))
            .transpose()
    }

    /// Removes a link and returns it, if it is one `which` accepts: a link
    /// followed at the wrong address is left alone, and of two requests
    /// using one link, one gets it.
    pub fn take_link_if(
        &self,
        digest: &[u8; 32],
        which: impl Fn(&OneTimeLink) -> bool,
    ) -> Result<Option<OneTimeLink>, StorageError> {
        let Some(value) = self.links.get(digest)? else {
            return Ok(None);
        };
        let link = Self::decode_link(&value)?;
        if !which(&link) {
            return Ok(None);
        }
        let taken = self
            .links
            .compare_and_swap(digest, Some(value), None::<&[u8]>)?
            .is_ok();
        Ok(taken.then_some(link))
    }

    /// Removes the links of an account with the given purpose kind (older
    /// reset links when a new one is sent, all of them when a password is
    /// set).
    pub fn remove_links_of(
        &self,
        account: AccountId,
        which: impl Fn(&LinkPurpose) -> bool,
    ) -> Result<(), StorageError> {
        for entry in self.links.iter() {
            let (digest, value) = entry?;
            if let Ok(link) = Self::decode_link(&value)
                && link.account == Some(account)
                && which(&link.purpose)
            {
                self.links.remove(digest)?;
            }
        }
        Ok(())
    }

    /// A store's pending invitations: each link's digest, the invited
    /// address, the role and the expiry.
    pub fn invitations(&self, store: &StoreId) -> Result<Vec<PendingInvitation>, StorageError> {
        let mut found = Vec::new();
        for entry in self.links.iter() {
            let (digest, value) = entry?;
            if let Ok(OneTimeLink {
                purpose:
                    LinkPurpose::Invite {
                        store: invited,
                        role,
                        email,
                    },
                expires,
                ..
            }) = Self::decode_link(&value)
                && &invited == store
                && let Ok(digest) = <[u8; 32]>::try_from(digest.as_ref())
            {
                found.push(PendingInvitation {
                    digest,
                    email,
                    role,
                    expires,
                });
            }
        }
        Ok(found)
    }

    /// Revokes one of a store's pending invitations; whether it was one.
    pub fn revoke_invitation(
        &self,
        store: &StoreId,
        digest: &[u8; 32],
    ) -> Result<bool, StorageError> {
        let taken = self.take_link_if(digest, |l| {
            matches!(&l.purpose, LinkPurpose::Invite { store: invited, .. } if invited == store)
        })?;
        Ok(taken.is_some())
    }

    /// Removes links past their expiry; returns how many.
    pub fn sweep_links(&self, now: u64) -> Result<usize, StorageError> {
        let mut swept = 0;
        for entry in self.links.iter() {
            let (digest, value) = entry?;
            let expired = Self::decode_link(&value).map_or(true, |l| l.expires <= now);
            if expired {
                self.links.remove(digest)?;
                swept += 1;
            }
        }
        Ok(swept)
    }

    /// Changes the role of an existing member, in one transaction that also
    /// checks `by` is still an owner of the store; whether it changed.
    pub fn change_role(
        &self,
        store: &StoreId,
        by: AccountId,
        target: AccountId,
        role: Role,
    ) -> Result<bool, StorageError> {
        let (actor, by_store, by_account) = (
            member_key(store, by),
            member_key(store, target),
            account_store_key(target, store),
        );
        let owner = Role::Owner.as_str().as_bytes();
        (&self.members, &self.account_stores)
            .transaction(|(members, account_stores)| {
                if members.get(actor.as_slice())?.as_deref() != Some(owner)
                    || members.get(by_store.as_slice())?.is_none()
                {
                    return Ok(false);
                }
                members.insert(by_store.as_slice(), role.as_str().as_bytes())?;
                account_stores.insert(by_account.as_slice(), role.as_str().as_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(true)
            })
            .map_err(unaborted)
    }

    /// Makes `account` a member of `store` with `role` (or changes its role).
    pub fn set_member(
        &self,
        store: &StoreId,
        account: AccountId,
        role: Role,
    ) -> Result<(), StorageError> {
        let (by_store, by_account) = (
            member_key(store, account),
            account_store_key(account, store),
        );
        (&self.members, &self.account_stores)
            .transaction(|(members, account_stores)| {
                members.insert(by_store.as_slice(), role.as_str().as_bytes())?;
                account_stores.insert(by_account.as_slice(), role.as_str().as_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(unaborted)
    }

    pub fn remove_member(&self, store: &StoreId, account: AccountId) -> Result<(), StorageError> {
        let (by_store, by_account) = (
            member_key(store, account),
            account_store_key(account, store),
        );
        (&self.members, &self.account_stores)
            .transaction(|(members, account_stores)| {
                members.remove(by_store.as_slice())?;
                account_stores.remove(by_account.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(unaborted)
    }

    /// The role of `account` on `store`, if it is a member.
    pub fn member_role(
        &self,
        store: &StoreId,
        account: AccountId,
    ) -> Result<Option<Role>, StorageError> {
        self.members
            .get(member_key(store, account))?
            .map(|v| role("members", &v))
            .transpose()
    }

    /// A store's members and their roles.
    pub fn members(&self, store: &StoreId) -> Result<Vec<(AccountId, Role)>, StorageError> {
        let prefix = keys::store_prefix(store);
        self.members
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry?;
                Ok((
                    account_id("members", &key[prefix.len()..])?,
                    role("members", &value)?,
                ))
            })
            .collect()
    }

    /// The stores an account is a member of, with its role on each.
    pub fn stores_of(&self, account: AccountId) -> Result<Vec<(StoreId, Role)>, StorageError> {
        self.account_stores
            .scan_prefix(account.as_bytes())
            .map(|entry| {
                let (key, value) = entry?;
                let store = std::str::from_utf8(&key[16..])
                    .ok()
                    .and_then(|s| StoreId::parse(s).ok())
                    .ok_or_else(|| StorageError::Corrupt {
                        tree: "account_stores",
                        problem: "a key does not end in a store id".into(),
                    })?;
                Ok((store, role("account_stores", &value)?))
            })
            .collect()
    }

    pub fn put_token(&self, token: &ApiToken) -> Result<(), StorageError> {
        let value = encode(&TokenV1 {
            name: token.name.clone(),
            hash: secret::to_hex(&token.hash),
            created: token.created,
            created_by: token.created_by.0,
        });
        self.api_tokens
            .insert(token_key(&token.store, token.id), value)?;
        Ok(())
    }

    fn decode_token(store: &StoreId, id: Uuid, value: &[u8]) -> Result<ApiToken, StorageError> {
        let token: TokenV1 = decode("api_tokens", value)?;
        Ok(ApiToken {
            id,
            store: store.clone(),
            name: token.name,
            hash: secret::from_hex(&token.hash).ok_or_else(|| StorageError::Corrupt {
                tree: "api_tokens",
                problem: "a token hash is not 64 hex digits".into(),
            })?,
            created: token.created,
            created_by: AccountId(token.created_by),
        })
    }

    pub fn token(&self, store: &StoreId, id: Uuid) -> Result<Option<ApiToken>, StorageError> {
        self.api_tokens
            .get(token_key(store, id))?
            .map(|v| Self::decode_token(store, id, &v))
            .transpose()
    }

    /// A store's API tokens, oldest first.
    pub fn tokens(&self, store: &StoreId) -> Result<Vec<ApiToken>, StorageError> {
        let prefix = keys::store_prefix(store);
        self.api_tokens
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let id = <[u8; 16]>::try_from(&key[prefix.len()..])
                    .map(Uuid::from_bytes)
                    .map_err(|_| StorageError::Corrupt {
                        tree: "api_tokens",
                        problem: "a token id is not 16 bytes".into(),
                    })?;
                Self::decode_token(store, id, &value)
            })
            .collect()
    }

    /// Revokes a token; whether it existed.
    pub fn remove_token(&self, store: &StoreId, id: Uuid) -> Result<bool, StorageError> {
        Ok(self.api_tokens.remove(token_key(store, id))?.is_some())
    }

    pub fn put_consent(&self, record: &ConsentRecord) -> Result<(), StorageError> {
        let value = encode(&ConsentV1 {
            time: record.time,
            policy_version: record.policy_version,
            functional: record.functional,
            analytics: record.analytics,
            account: record.account.map(|a| a.0),
        });
        self.consents.insert(record.id.as_bytes(), value)?;
        Ok(())
    }

    pub fn consent(&self, id: Uuid) -> Result<Option<ConsentRecord>, StorageError> {
        self.consents
            .get(id.as_bytes())?
            .map(|v| {
                decode::<ConsentV1>("consents", &v).map(|c| ConsentRecord {
                    id,
                    time: c.time,
                    policy_version: c.policy_version,
                    functional: c.functional,
                    analytics: c.analytics,
                    account: c.account.map(AccountId),
                })
            })
            .transpose()
    }

    /// Removes a store and everything keyed under it: its keys (so its
    /// conversations no longer open anywhere), its conversations with their
    /// messages, technical data and contact index entries, its profile,
    /// catalog, knowledge pages, golden questions and runs, sessions, members
    /// and tokens.
    pub fn delete_store(&self, store: &StoreId) -> Result<(), StorageError> {
        // The data goes first, and the store with its members last and in
        // one transaction: a deletion cut short leaves the store, still
        // owned, for its owner to delete again; never an ownerless store,
        // and never memberships or invitations that would open a store
        // created later under the same id.
        // Its keys first: every conversation of the store is unreadable
        // from here on, in old files and backups too; then its records.
        self.vault
            .destroy_upto(&super::conversations::store_scope(store), u32::MAX)?;
        self.remove_unreadable_conversations(store)?;
        let prefix = keys::store_prefix(store);
        for tree in [
            &self.products,
            &self.pages,
            &self.sessions,
            &self.conversations,
            &self.messages,
            &self.technical,
            &self.restrictions,
            &self.objections,
            &self.api_tokens,
        ] {
            for key in tree.scan_prefix(&prefix).keys() {
                tree.remove(key?)?;
            }
        }
        self.goldens.remove(keys::store(store))?;
        self.golden_runs.remove(keys::store(store))?;
        for entry in self.links.iter() {
            let (digest, value) = entry?;
            if let Ok(OneTimeLink {
                purpose: LinkPurpose::Invite { store: invited, .. },
                ..
            }) = Self::decode_link(&value)
                && &invited == store
            {
                self.links.remove(digest)?;
            }
        }
        let members: Vec<AccountId> = self.members(store)?.into_iter().map(|(a, _)| a).collect();
        (
            &self.members,
            &self.account_stores,
            &self.generations,
            &self.stores,
        )
            .transaction(|(members_tree, account_stores, generations, stores)| {
                for account in &members {
                    members_tree.remove(member_key(store, *account))?;
                    account_stores.remove(account_store_key(*account, store))?;
                }
                generations.remove(keys::store(store))?;
                stores.remove(keys::store(store))?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(unaborted)
    }
}

#[cfg(test)]
mod tests {
    use mikabot_actors::language::Language;

    use super::*;

    fn storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage =
            Storage::open(&crate::storage::StorageOptions::in_dir(dir.path())).expect("open");
        (dir, storage)
    }

    fn account(email: &str) -> Account {
        Account {
            id: AccountId::new(),
            name: "Ada".into(),
            email: email.into(),
            password_hash: "$argon2id$x".into(),
            language: Language::En,
            verified: false,
            created: 1,
            deleted_at: None,
            suspended: false,
            operator: false,
        }
    }

    #[test]
    fn one_email_address_has_one_account() {
        let (_dir, storage) = storage();
        let ada = account("ada@example.com");
        assert!(storage.create_account(&ada).expect("create").is_ok());
        assert!(
            storage
                .create_account(&account("ada@example.com"))
                .expect("create")
                .is_err()
        );
        assert_eq!(
            storage.account_by_email("ada@example.com").expect("read"),
            Some(ada.clone())
        );
        let bob = account("bob@example.com");
        assert!(storage.create_account(&bob).expect("create").is_ok());
        assert!(
            storage
                .change_email(&ada, "bob@example.com")
                .expect("change")
                .is_err()
        );
        assert!(
            storage
                .change_email(&ada, "lovelace@example.com")
                .expect("change")
                .is_ok()
        );
        assert_eq!(
            storage.account_by_email("ada@example.com").expect("read"),
            None
        );
        assert_eq!(
            storage
                .account_by_email("lovelace@example.com")
                .expect("read")
                .map(|a| a.id),
            Some(ada.id)
        );
        assert_eq!(storage.accounts().expect("list").len(), 2);
    }

    #[test]
    fn sessions_end_one_by_one_or_all_together() {
        let (_dir, storage) = storage();
        let ada = AccountId::new();
        let session = DashboardSession {
            account: ada,
            csrf: "c".into(),
            created: 1,
            seen: 1,
        };
        for digest in [[1u8; 32], [2u8; 32]] {
            storage.create_session(&digest, &session).expect("create");
        }
        storage
            .create_session(
                &[3u8; 32],
                &DashboardSession {
                    account: AccountId::new(),
                    ..session.clone()
                },
            )
            .expect("create");
        storage.delete_session(&[1u8; 32]).expect("delete");
        assert_eq!(storage.session(&[1u8; 32]).expect("read"), None);
        assert_eq!(
            storage.session(&[2u8; 32]).expect("read"),
            Some(session.clone())
        );
        assert_eq!(storage.delete_sessions_of(ada).expect("delete"), 1);
        assert_eq!(storage.session(&[2u8; 32]).expect("read"), None);
        assert!(storage.session(&[3u8; 32]).expect("read").is_some());
        storage.touch_session(&[2u8; 32], &session).expect("touch");
        assert_eq!(
            storage.session(&[2u8; 32]).expect("read"),
            None,
            "an ended session stays ended"
        );
    }

    #[test]
    fn a_link_is_taken_once() {
        let (_dir, storage) = storage();
        let link = OneTimeLink {
            purpose: LinkPurpose::Invite {
                store: StoreId::parse("shop").expect("id"),
                role: Role::Agent,
                email: "x@example.com".into(),
            },
            account: None,
            expires: 10,
        };
        storage.put_link(&[7; 32], &link).expect("put");
        assert_eq!(storage.take_link(&[7; 32]).expect("take"), Some(link));
        assert_eq!(storage.take_link(&[7; 32]).expect("take"), None);
    }

    #[test]
    fn memberships_are_found_from_both_sides_and_go_with_the_store() {
        let (_dir, storage) = storage();
        let shop = StoreId::parse("shop").expect("id");
        let other = StoreId::parse("shop-2").expect("id");
        let (ada, bob) = (AccountId::new(), AccountId::new());
        storage.set_member(&shop, ada, Role::Owner).expect("set");
        storage.set_member(&shop, bob, Role::Viewer).expect("set");
        storage.set_member(&other, bob, Role::Owner).expect("set");
        assert_eq!(
            storage.member_role(&shop, bob).expect("read"),
            Some(Role::Viewer)
        );
        assert_eq!(storage.members(&shop).expect("list").len(), 2);
        assert_eq!(storage.stores_of(bob).expect("list").len(), 2);
        storage.delete_store(&shop).expect("delete");
        assert_eq!(storage.member_role(&shop, bob).expect("read"), None);
        assert_eq!(
            storage.stores_of(bob).expect("list"),
            vec![(other.clone(), Role::Owner)]
        );
        assert_eq!(storage.stores_of(ada).expect("list"), vec![]);
    }

    #[test]
    fn an_unconfirmed_sign_up_is_removed_with_its_sessions_but_a_confirmed_one_stays() {
        let (_dir, storage) = storage();
        let ada = account("ada@example.com");
        storage.create_account(&ada).expect("create").expect("new");
        let session = DashboardSession {
            account: ada.id,
            csrf: "c".into(),
            created: 1,
            seen: 1,
        };
        storage.create_session(&[9; 32], &session).expect("session");
        let mut bob = account("bob@example.com");
        bob.verified = true;
        storage.create_account(&bob).expect("create").expect("new");
        assert!(storage.remove_unverified(ada.id).expect("remove"));
        assert!(!storage.remove_unverified(bob.id).expect("remove"));
        assert_eq!(
            storage.account_by_email("ada@example.com").expect("read"),
            None
        );
        assert_eq!(storage.session(&[9; 32]).expect("read"), None);
        assert!(
            storage
                .create_account(&account("ada@example.com"))
                .expect("create")
                .is_ok(),
            "the address is free again"
        );
    }
}
