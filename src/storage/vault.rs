//! Data keys: one per conversation (its messages and record), one per
//! conversation for its technical data (dropped on its own at the usage
//! horizon), one per account. Each is random, kept in the `data_keys` tree
//! wrapped by its scope's key from the [keyring](super::keyring), and
//! removed when its data is erased.
//!
//! | `data_keys` key | wraps the key of | scope |
//! |---|---|---|
//! | `c store \0 conversation(16)` | a conversation and its messages | its store |
//! | `t store \0 conversation(16)` | its technical data | its store |
//! | `a account(16)` | an account | the accounts |
//!
//! A wrapped key is `scope key id(4) sealed(key)`, bound to its own
//! `data_keys` key. A data key whose scope key is gone (destroyed by a
//! rotation or an erasure) no longer opens: its data is erased.
//!
//! Rotation ([`Vault::rotate`]) adds a new scope key, re-wraps the scope's
//! surviving data keys under it, flushes, and only then destroys the old
//! key; a rotation cut short is finished at the next start
//! ([`Vault::finish_rotations`]).

use std::sync::{Mutex, RwLock};

use super::StorageError;
use super::crypto::{self, SecretKey};
use super::keyring::{Keyring, KeyringError, KeyringFile, Scope};

/// What a data key protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    Conversation,
    Technical,
    Account,
}

impl DataKind {
    fn tag(self) -> u8 {
        match self {
            Self::Conversation => b'c',
            Self::Technical => b't',
            Self::Account => b'a',
        }
    }
}

/// The `data_keys` key of `kind` for the record under `record_key`.
pub fn data_key_id(kind: DataKind, record_key: &[u8]) -> Vec<u8> {
    let mut id = Vec::with_capacity(1 + record_key.len());
    id.push(kind.tag());
    id.extend_from_slice(record_key);
    id
}

fn binding(id: &[u8], scope_key: u32) -> Vec<u8> {
    let mut aad = super::codec::binding("data_keys", id);
    aad.extend_from_slice(&scope_key.to_be_bytes());
    aad
}

impl From<KeyringError> for StorageError {
    fn from(error: KeyringError) -> Self {
        StorageError::Keys(error.to_string())
    }
}

/// The keyring and the data keys it wraps.
pub struct Vault {
    /// Held while the keyring changes: one writer of the file at a time.
    file: Mutex<KeyringFile>,
    ring: RwLock<Keyring>,
    /// Writers of data keys share it; a rotation holds it alone, so no
    /// key is wrapped under the old scope key, and none removed, while the
    /// rotation re-wraps (which would lose the one or revive the other).
    wrapping: RwLock<()>,
    /// Held shared by a backup for its whole stream; a rotation or a key
    /// destruction waits for it alone, so creating and reading keys never
    /// waits for a backup.
    backups: RwLock<()>,
    data_keys: sled::Tree,
    /// Data keys unwrapped lately, by `data_keys` key: a message of a live
    /// conversation does not read and unwrap its key again. Bounded; an
    /// entry goes with its data key, and all go when a scope key is
    /// destroyed, so a cached key never outlives what it may open.
    cache: Mutex<std::collections::HashMap<Vec<u8>, SecretKey>>,
    /// Moved on by every removal: a key read from sled before a removal is
    /// not cached after it.
    removals: std::sync::atomic::AtomicU64,
}

/// Data keys kept unwrapped at most.
const CACHED_KEYS: usize = 8192;

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    pub fn new(file: KeyringFile, ring: Keyring, data_keys: sled::Tree) -> Self {
        Self {
            file: Mutex::new(file),
            ring: RwLock::new(ring),
            wrapping: RwLock::new(()),
            backups: RwLock::new(()),
            data_keys,
            cache: Mutex::new(std::collections::HashMap::new()),
            removals: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, Keyring> {
        self.ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the keyring: `change` edits a copy, which is written to the
    /// file and only then becomes the keyring in use.
    fn change<T>(&self, change: impl FnOnce(&mut Keyring) -> T) -> Result<T, StorageError> {
        let file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = self.ring().clone();
        let outcome = change(&mut next);
        file.write(&next)?;
        *self
            .ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(outcome)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Vec<u8>, SecretKey>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Caches `key`, unless a removal came since `seen` was read.
    fn remember_since(&self, seen: u64, id: Vec<u8>, key: &SecretKey) {
        let mut cache = self.cache();
        if self.removals.load(std::sync::atomic::Ordering::SeqCst) != seen {
            return;
        }
        if cache.len() >= CACHED_KEYS {
            // Simple and bounded: a full cache starts over.
            cache.clear();
        }
        cache.insert(id, key.clone());
    }

    /// Forgets cached keys (all, or `id`) after their removal.
    fn forget(&self, id: Option<&[u8]>) {
        let mut cache = self.cache();
        self.removals
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match id {
            Some(id) => {
                cache.remove(id);
            }
            None => cache.clear(),
        }
    }

    fn shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.wrapping
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds off rotations (and store key destruction) while the guard
    /// lives: a backup's data keys all stay wrapped by keys the keyring
    /// holds. Data keys are still made and removed meanwhile.
    pub fn hold_rotations(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.backups
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn no_backup(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.backups
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key of keyed hashes.
    pub fn index_key(&self) -> SecretKey {
        self.ring().index.clone()
    }

    /// The current key of `scope`, created (and the keyring written) if it
    /// has none.
    fn current(&self, scope: &Scope) -> Result<(u32, SecretKey), StorageError> {
        if let Some((id, key)) = self.ring().current(scope) {
            return Ok((id, key.clone()));
        }
        self.change(|ring| {
            if ring.current(scope).is_none() {
                ring.add_key(scope);
            }
            ring.current(scope).map(|(id, key)| (id, key.clone()))
        })?
        .ok_or_else(|| StorageError::Keys("a new scope key was not kept".into()))
    }

    fn wrap(id: &[u8], scope_id: u32, scope_key: &SecretKey, key: &SecretKey) -> Vec<u8> {
        let mut wrapped = scope_id.to_be_bytes().to_vec();
        wrapped.extend_from_slice(&crypto::seal(
            scope_key,
            &binding(id, scope_id),
            key.as_bytes(),
        ));
        wrapped
    }

    /// Unwraps a stored data key: `None` when its scope key is gone.
    fn unwrap(
        &self,
        scope: &Scope,
        id: &[u8],
        wrapped: &[u8],
    ) -> Result<Option<SecretKey>, StorageError> {
        let corrupt = || StorageError::Corrupt {
            tree: "data_keys",
            problem: "a wrapped key does not open".into(),
        };
        let scope_id = <[u8; 4]>::try_from(wrapped.get(..4).ok_or_else(corrupt)?)
            .map(u32::from_be_bytes)
            .map_err(|_| corrupt())?;
        let ring = self.ring();
        let Some(scope_key) = ring.key(scope, scope_id) else {
            return Ok(None);
        };
        let plain = crypto::open(scope_key, &binding(id, scope_id), &wrapped[4..])
            .map_err(|_| corrupt())?;
        SecretKey::from_slice(&plain).map(Some).ok_or_else(corrupt)
    }

    /// A new data key of `kind` for the record under `record_key`, stored
    /// wrapped by `scope`'s current key.
    pub fn create(
        &self,
        kind: DataKind,
        scope: &Scope,
        record_key: &[u8],
    ) -> Result<SecretKey, StorageError> {
        let id = data_key_id(kind, record_key);
        let _shared = self.shared();
        let (scope_id, scope_key) = self.current(scope)?;
        let key = SecretKey::random();
        self.data_keys
            .insert(&id, Self::wrap(&id, scope_id, &scope_key, &key))?;
        let seen = self.removals.load(std::sync::atomic::Ordering::SeqCst);
        // A new key: nothing can have removed it yet.
        self.remember_since(seen, id, &key);
        Ok(key)
    }

    /// The data key of `kind` for `record_key`, if it exists and its scope
    /// key still does.
    pub fn get(
        &self,
        kind: DataKind,
        scope: &Scope,
        record_key: &[u8],
    ) -> Result<Option<SecretKey>, StorageError> {
        let id = data_key_id(kind, record_key);
        if let Some(key) = self.cache().get(&id) {
            return Ok(Some(key.clone()));
        }
        // Under the shared lock: a rotation never drops the key that wraps
        // this one between reading it and unwrapping it (which would take a
        // surviving key for an erased one).
        let _shared = self.shared();
        let seen = self.removals.load(std::sync::atomic::Ordering::SeqCst);
        match self.data_keys.get(&id)? {
            Some(wrapped) => {
                let key = self.unwrap(scope, &id, &wrapped)?;
                if let Some(key) = &key {
                    self.remember_since(seen, id, key);
                }
                Ok(key)
            }
            None => Ok(None),
        }
    }

    /// Removes the data key of `kind` for `record_key`; whether it existed.
    pub fn remove(&self, kind: DataKind, record_key: &[u8]) -> Result<bool, StorageError> {
        let _shared = self.shared();
        let id = data_key_id(kind, record_key);
        // Removed first, then forgotten: a read racing it either finds it
        // gone or is not cached.
        let existed = self.data_keys.remove(&id)?.is_some();
        self.forget(Some(&id));
        Ok(existed)
    }

    /// The `data_keys` prefixes of a scope's keys.
    fn prefixes(scope: &Scope) -> Vec<Vec<u8>> {
        match scope {
            Scope::Store(store) => {
                let mut prefix = store.as_bytes().to_vec();
                prefix.push(0);
                [DataKind::Conversation, DataKind::Technical]
                    .into_iter()
                    .map(|kind| data_key_id(kind, &prefix))
                    .collect()
            }
            Scope::Accounts => vec![vec![DataKind::Account.tag()]],
        }
    }

    /// Replaces `scope`'s key: a new key, every surviving data key of the
    /// scope re-wrapped under it and flushed, then the old key destroyed.
    /// After it, no copy of a data key removed before it opens anywhere.
    /// How many data keys were re-wrapped.
    pub fn rotate(&self, scope: &Scope) -> Result<usize, StorageError> {
        if self.ring().current(scope).is_none() {
            // Nothing was ever wrapped under this scope.
            return Ok(0);
        }
        self.change(|ring| ring.add_key(scope))?;
        self.finish_rotation(scope)
    }

    /// Re-wraps what an older key of `scope` still wraps, flushes, and
    /// destroys the older keys.
    fn finish_rotation(&self, scope: &Scope) -> Result<usize, StorageError> {
        let _no_backup = self.no_backup();
        let _alone = self
            .wrapping
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (current_id, current) = self.current(scope)?;
        let mut rewrapped = 0;
        for prefix in Self::prefixes(scope) {
            let mut batch = sled::Batch::default();
            let mut in_batch = 0;
            for entry in self.data_keys.scan_prefix(&prefix) {
                let (id, wrapped) = entry?;
                if wrapped.get(..4) == Some(&current_id.to_be_bytes()[..]) {
                    continue;
                }
                if let Some(key) = self.unwrap(scope, &id, &wrapped)? {
                    batch.insert(id.to_vec(), Self::wrap(&id, current_id, &current, &key));
                    rewrapped += 1;
                    in_batch += 1;
                }
                if in_batch == 1024 {
                    self.data_keys.apply_batch(std::mem::take(&mut batch))?;
                    in_batch = 0;
                }
            }
            self.data_keys.apply_batch(batch)?;
        }
        self.data_keys.flush()?;
        self.change(|ring| ring.drop_old_keys(scope))?;
        Ok(rewrapped)
    }

    /// Finishes every rotation a crash cut short (a scope with more than
    /// one key).
    pub fn finish_rotations(&self) -> Result<(), StorageError> {
        let unfinished: Vec<Scope> = self
            .ring()
            .scopes
            .iter()
            .filter(|(_, keys)| keys.keys.len() > 1)
            .map(|(scope, _)| scope.clone())
            .collect();
        for scope in unfinished {
            self.finish_rotation(&scope)?;
        }
        Ok(())
    }

    /// The id of `scope`'s current key, if it has one.
    pub fn current_id(&self, scope: &Scope) -> Option<u32> {
        self.ring().current(scope).map(|(id, _)| id)
    }

    /// Destroys `scope`'s keys up to id `last`: all they wrapped becomes
    /// unreadable at once, wherever a copy survives. Data keys made later
    /// are wrapped by a new key.
    pub fn destroy_upto(&self, scope: &Scope, last: u32) -> Result<(), StorageError> {
        let _no_backup = self.no_backup();
        let _alone = self
            .wrapping
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let has = self
            .ring()
            .scopes
            .get(scope)
            .is_some_and(|keys| keys.keys.iter().any(|(id, _)| *id <= last));
        if has {
            self.change(|ring| ring.destroy_upto(scope, last))?;
            self.forget(None);
        }
        Ok(())
    }

    /// Seals the keyring under `new_master` (a master key rotation).
    pub fn rewrap_keyring(&self, new_master: SecretKey) -> Result<(), StorageError> {
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.rewrap(&self.ring(), new_master)?;
        Ok(())
    }
}
