//! The keyring: the keys that wrap every data key, kept **outside sled** in
//! one small file beside the data directory, sealed whole by the node's
//! master key.
//!
//! ```text
//! master key (config, environment or key file)
//!   └─ keyring file: one key list per scope (a store, or the accounts),
//!        plus the index key of keyed hashes
//!        └─ data keys in sled (`data_keys`), each wrapped by its scope's key
//!             └─ records: conversations, messages, technical data, accounts
//! ```
//!
//! Destroying a scope key in this file makes every data key it wrapped
//! unreadable wherever a copy of it survives: in sled's old segments, in a
//! backup. That is how erasure reaches them (see `docs/privacy.md`).
//!
//! The file is rewritten whole on each change: a temporary file, fsync,
//! rename over the old one, fsync of the directory. A crash leaves the old
//! keyring or the new one, never a mix.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::crypto::{self, SecretKey};

/// The first bytes of a keyring file (and its additional authenticated
/// data).
const MAGIC: &[u8] = b"mikabot keyring v1\n";

/// Where the master key comes from. Its `Debug` never shows a key.
#[derive(Clone)]
pub enum MasterKeySource {
    /// Given whole (configuration or environment), base64url or hex.
    Inline(String),
    /// A key file, created with mode 0600 on first start when absent.
    File(PathBuf),
}

/// Why the keyring could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(
        "the master key file {0} is missing, but the keyring was sealed with a master key: restore the key file or give the key (privacy.master_key); a new key would not open it"
    )]
    MasterKeyMissing(PathBuf),
    #[error("the master key is not 32 bytes in base64url or hex: {0}")]
    MasterKeyMalformed(String),
    #[error("the master key does not open the keyring {0}: a wrong key, or a damaged file")]
    WrongMasterKey(PathBuf),
    #[error(
        "the keyring {0} is missing, but the database holds data sealed with it: restore the keyring file; without it the data cannot be read"
    )]
    KeyringMissing(PathBuf),
    #[error("the keyring {0} belongs to another database")]
    Mismatch(PathBuf),
    #[error("the keyring {path} is unreadable: {problem}")]
    Corrupt { path: PathBuf, problem: String },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> KeyringError + 'a {
    move |source| KeyringError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A key as text: unpadded base64url.
pub fn key_to_text(key: &SecretKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// A key from text: 32 bytes as base64url (padded or not) or hex.
pub fn key_from_text(text: &str) -> Option<SecretKey> {
    let text = text.trim();
    if text.len() == 64
        && let Some(bytes) = crate::accounts::secret::from_hex(text)
    {
        return Some(SecretKey::from_bytes(bytes));
    }
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
        .and_then(|bytes| SecretKey::from_slice(&bytes))
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline([redacted])"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl MasterKeySource {
    /// For a key file: the new key a rotation writes beside it before it
    /// takes its place (`KEY.new`), if there is one, and the key file.
    pub fn pending(&self) -> Option<(PathBuf, PathBuf)> {
        let Self::File(path) = self else {
            return None;
        };
        let mut name = path.as_os_str().to_os_string();
        name.push(".new");
        let pending = PathBuf::from(name);
        pending.exists().then(|| (pending, path.clone()))
    }

    /// The master key, creating the key file when `may_create` (no keyring
    /// exists yet) and it is absent.
    fn load(&self, may_create: bool) -> Result<SecretKey, KeyringError> {
        match self {
            Self::Inline(text) => key_from_text(text)
                .ok_or_else(|| KeyringError::MasterKeyMalformed("privacy.master_key".into())),
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => key_from_text(&text)
                    .ok_or_else(|| KeyringError::MasterKeyMalformed(path.display().to_string())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !may_create {
                        return Err(KeyringError::MasterKeyMissing(path.clone()));
                    }
                    let key = SecretKey::random();
                    write_whole(path, format!("{}\n", key_to_text(&key)).as_bytes())?;
                    Ok(key)
                }
                Err(e) => Err(io("reading the master key file", path)(e)),
            },
        }
    }
}

/// What a key protects.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// One store's conversation keys.
    Store(String),
    /// Every account's key.
    Accounts,
}

impl Scope {
    fn name(&self) -> String {
        match self {
            Self::Store(store) => format!("store:{store}"),
            Self::Accounts => "accounts".into(),
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name.split_once(':') {
            Some(("store", store)) => Some(Self::Store(store.to_owned())),
            None if name == "accounts" => Some(Self::Accounts),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct KeyringV1 {
    /// Also kept in the database: a keyring and a database that do not
    /// belong together are refused.
    id: String,
    index_key: String,
    scopes: BTreeMap<String, ScopeV1>,
}

/// A scope's keys and the id its next key gets: ids only grow, also
/// after every key of a scope was destroyed, so a wrapped key in an old
/// file never names a newer key.
#[derive(Serialize, Deserialize)]
struct ScopeV1 {
    next: u32,
    keys: Vec<KeyEntryV1>,
}

#[derive(Serialize, Deserialize)]
struct KeyEntryV1 {
    id: u32,
    key: String,
}

/// The keyring's contents, in memory.
#[derive(Clone, Debug)]
pub struct Keyring {
    pub id: [u8; 16],
    /// The key of keyed hashes (the contact index).
    pub index: SecretKey,
    /// Each scope's keys, oldest first; the last one wraps new data keys.
    /// More than one only while a rotation re-wraps.
    pub scopes: BTreeMap<Scope, ScopeKeys>,
}

/// One scope's keys.
#[derive(Clone, Debug, Default)]
pub struct ScopeKeys {
    /// The id the next key gets.
    pub next: u32,
    pub keys: Vec<(u32, SecretKey)>,
}

impl Keyring {
    fn new() -> Self {
        let mut id = [0u8; 16];
        crypto::fill_random(&mut id);
        Self {
            id,
            index: SecretKey::random(),
            scopes: BTreeMap::new(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let record = KeyringV1 {
            id: URL_SAFE_NO_PAD.encode(self.id),
            index_key: key_to_text(&self.index),
            scopes: self
                .scopes
                .iter()
                .map(|(scope, keys)| {
                    let entries = keys
                        .keys
                        .iter()
                        .map(|(id, key)| KeyEntryV1 {
                            id: *id,
                            key: key_to_text(key),
                        })
                        .collect();
                    let record = ScopeV1 {
                        next: keys.next,
                        keys: entries,
                    };
                    (scope.name(), record)
                })
                .collect(),
        };
        serde_json::to_vec(&record).unwrap_or_default()
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Self, KeyringError> {
        let corrupt = |problem: &str| KeyringError::Corrupt {
            path: path.to_path_buf(),
            problem: problem.to_owned(),
        };
        let record: KeyringV1 =
            serde_json::from_slice(bytes).map_err(|e| corrupt(&e.to_string()))?;
        let id = URL_SAFE_NO_PAD
            .decode(&record.id)
            .ok()
            .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
            .ok_or_else(|| corrupt("its id is not 16 bytes"))?;
        let mut scopes = BTreeMap::new();
        for (name, record) in record.scopes {
            let scope = Scope::parse(&name).ok_or_else(|| corrupt("a scope has no known kind"))?;
            let keys = record
                .keys
                .into_iter()
                .map(|entry| {
                    key_from_text(&entry.key)
                        .map(|key| (entry.id, key))
                        .ok_or_else(|| corrupt("a key is not 32 bytes"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            scopes.insert(
                scope,
                ScopeKeys {
                    next: record.next,
                    keys,
                },
            );
        }
        Ok(Self {
            id,
            index: key_from_text(&record.index_key)
                .ok_or_else(|| corrupt("the index key is not 32 bytes"))?,
            scopes,
        })
    }

    /// The key that wraps new data keys of `scope`, if it has one.
    pub fn current(&self, scope: &Scope) -> Option<(u32, &SecretKey)> {
        self.scopes
            .get(scope)
            .and_then(|keys| keys.keys.last())
            .map(|(id, key)| (*id, key))
    }

    /// Key `id` of `scope`, if it still exists.
    pub fn key(&self, scope: &Scope, id: u32) -> Option<&SecretKey> {
        self.scopes
            .get(scope)?
            .keys
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, key)| key)
    }

    /// Adds a new current key to `scope` (its first, or the next one of a
    /// rotation); its id.
    pub fn add_key(&mut self, scope: &Scope) -> u32 {
        let keys = self.scopes.entry(scope.clone()).or_default();
        let id = keys.next.max(1);
        keys.next = id + 1;
        keys.keys.push((id, SecretKey::random()));
        id
    }

    /// Destroys every key of `scope` except the current one.
    pub fn drop_old_keys(&mut self, scope: &Scope) {
        if let Some(keys) = self.scopes.get_mut(scope)
            && keys.keys.len() > 1
        {
            let current = keys.keys.split_off(keys.keys.len() - 1);
            keys.keys = current;
        }
    }

    /// Destroys the keys of `scope` up to id `last` (every key it had
    /// when `last` was current); the next key made gets a higher id.
    pub fn destroy_upto(&mut self, scope: &Scope, last: u32) {
        if let Some(keys) = self.scopes.get_mut(scope) {
            keys.keys.retain(|(id, _)| *id > last);
        }
    }
}

/// The keyring file and the master key that seals it.
#[derive(Debug)]
pub struct KeyringFile {
    path: PathBuf,
    master: SecretKey,
}

impl KeyringFile {
    /// Opens the keyring at `path` for the database whose keyring id is
    /// `database_id` (`None` for a database that has none yet), creating
    /// keyring and key file for a new database.
    pub fn open(
        path: &Path,
        master: &MasterKeySource,
        database_id: Option<[u8; 16]>,
    ) -> Result<(Self, Keyring), KeyringError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let file = Self {
                    path: path.to_path_buf(),
                    master: master.load(false)?,
                };
                let keyring = match file.unseal(&bytes) {
                    Ok(keyring) => keyring,
                    // A master key rotation cut short between sealing the
                    // keyring under the new key and putting the new key
                    // file in place: finish it.
                    Err(KeyringError::WrongMasterKey(at)) => {
                        let Some((pending, key_file)) = master.pending() else {
                            return Err(KeyringError::WrongMasterKey(at));
                        };
                        let file = Self {
                            path: path.to_path_buf(),
                            master: MasterKeySource::File(pending.clone()).load(false)?,
                        };
                        let keyring = file.unseal(&bytes)?;
                        std::fs::rename(&pending, &key_file)
                            .map_err(io("putting the new master key in place", &key_file))?;
                        if database_id.is_some_and(|id| id != keyring.id) {
                            return Err(KeyringError::Mismatch(path.to_path_buf()));
                        }
                        return Ok((file, keyring));
                    }
                    Err(other) => return Err(other),
                };
                if database_id.is_some_and(|id| id != keyring.id) {
                    return Err(KeyringError::Mismatch(path.to_path_buf()));
                }
                Ok((file, keyring))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if database_id.is_some() {
                    return Err(KeyringError::KeyringMissing(path.to_path_buf()));
                }
                let file = Self {
                    path: path.to_path_buf(),
                    master: master.load(true)?,
                };
                let keyring = Keyring::new();
                file.write(&keyring)?;
                Ok((file, keyring))
            }
            Err(e) => Err(io("reading the keyring", path)(e)),
        }
    }

    fn unseal(&self, bytes: &[u8]) -> Result<Keyring, KeyringError> {
        let sealed = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| KeyringError::Corrupt {
                path: self.path.clone(),
                problem: "it does not start as a keyring file does".into(),
            })?;
        let plain = crypto::open(&self.master, MAGIC, sealed)
            .map_err(|_| KeyringError::WrongMasterKey(self.path.clone()))?;
        Keyring::decode(&self.path, &plain)
    }

    fn sealed(&self, keyring: &Keyring, master: &SecretKey) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&crypto::seal(master, MAGIC, &keyring.encode()));
        bytes
    }

    /// Replaces the file with `keyring`, durably.
    pub fn write(&self, keyring: &Keyring) -> Result<(), KeyringError> {
        write_whole(&self.path, &self.sealed(keyring, &self.master))
    }

    /// Seals the keyring under `new_master` instead (a master key
    /// rotation). The old master key no longer opens it.
    pub fn rewrap(&mut self, keyring: &Keyring, new_master: SecretKey) -> Result<(), KeyringError> {
        write_whole(&self.path, &self.sealed(keyring, &new_master))?;
        self.master = new_master;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes `bytes` to `path` whole and durably: a temporary file beside it
/// (mode 0600), fsync, rename over `path`, fsync of the directory.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), KeyringError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io("creating the directory of", path))?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temporary = dir.join(name);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options
            .open(&temporary)
            .map_err(io("creating", &temporary))?;
        file.write_all(bytes).map_err(io("writing", &temporary))?;
        file.sync_all().map_err(io("syncing", &temporary))?;
    }
    std::fs::rename(&temporary, path).map_err(io("renaming into place", path))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing the directory of", path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_keyring_and_key_file_open_again_and_only_with_their_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keyring");
        let key_file = MasterKeySource::File(dir.path().join("master.key"));
        let (file, mut keyring) = KeyringFile::open(&path, &key_file, None).expect("created");
        let store = Scope::Store("shop".into());
        assert_eq!(keyring.add_key(&store), 1);
        file.write(&keyring).expect("written");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let (_, again) = KeyringFile::open(&path, &key_file, Some(keyring.id)).expect("reopened");
        assert_eq!(
            again.current(&store).map(|(id, k)| (id, k.clone())),
            keyring.current(&store).map(|(id, k)| (id, k.clone()))
        );
        assert_eq!(again.index, keyring.index);

        let wrong = MasterKeySource::Inline(key_to_text(&SecretKey::random()));
        assert!(matches!(
            KeyringFile::open(&path, &wrong, Some(keyring.id)),
            Err(KeyringError::WrongMasterKey(_))
        ));
        assert!(matches!(
            KeyringFile::open(&path, &key_file, Some([7; 16])),
            Err(KeyringError::Mismatch(_))
        ));
        std::fs::remove_file(dir.path().join("master.key")).expect("remove");
        assert!(matches!(
            KeyringFile::open(&path, &key_file, Some(keyring.id)),
            Err(KeyringError::MasterKeyMissing(_))
        ));
        assert!(
            !dir.path().join("master.key").exists(),
            "no new key is made"
        );
        assert!(matches!(
            KeyringFile::open(&dir.path().join("gone"), &key_file, Some(keyring.id)),
            Err(KeyringError::KeyringMissing(_))
        ));
        assert!(matches!(
            KeyringFile::open(&path, &MasterKeySource::Inline("short".into()), None),
            Err(KeyringError::MasterKeyMalformed(_))
        ));
    }

    #[test]
    fn rotation_keeps_the_current_key_and_destroys_the_rest() {
        let mut keyring = Keyring::new();
        let store = Scope::Store("shop".into());
        keyring.add_key(&store);
        let old = keyring.current(&store).map(|(_, k)| k.clone());
        assert_eq!(keyring.add_key(&store), 2);
        assert!(keyring.key(&store, 1).is_some(), "kept while re-wrapping");
        keyring.drop_old_keys(&store);
        assert!(keyring.key(&store, 1).is_none());
        assert_ne!(keyring.current(&store).map(|(_, k)| k.clone()), old);
        let text = String::from_utf8(keyring.encode()).expect("utf-8");
        let old_text = key_to_text(&old.expect("old key"));
        assert!(!text.contains(&old_text), "the old key is gone");
    }

    #[test]
    fn keys_read_as_base64url_or_hex() {
        let key = SecretKey::random();
        assert_eq!(key_from_text(&key_to_text(&key)), Some(key.clone()));
        let hex = crate::accounts::secret::to_hex(key.as_bytes());
        assert_eq!(key_from_text(&hex), Some(key));
        assert_eq!(key_from_text("not a key"), None);
    }

    #[test]
    fn a_master_key_rotation_cut_short_is_finished_at_the_next_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keyring");
        let key_file = dir.path().join("master.key");
        let source = MasterKeySource::File(key_file.clone());
        let (mut file, keyring) = KeyringFile::open(&path, &source, None).expect("created");
        // The new key written beside the old one, the keyring sealed under
        // it, and then the crash: the old key file is still in place.
        let new_key = SecretKey::random();
        write_whole(
            &dir.path().join("master.key.new"),
            format!("{}\n", key_to_text(&new_key)).as_bytes(),
        )
        .expect("pending key");
        file.rewrap(&keyring, new_key.clone()).expect("rewrapped");
        let (_, again) = KeyringFile::open(&path, &source, Some(keyring.id)).expect("finished");
        assert_eq!(again.index, keyring.index);
        assert_eq!(
            key_from_text(&std::fs::read_to_string(&key_file).expect("key")),
            Some(new_key)
        );
        assert!(!dir.path().join("master.key.new").exists());
    }
}
