//! Backups: every tree of a running node's database written as one
//! stream, and read back into an empty data directory.
//!
//! A backup holds what sled holds: personal data sealed, catalog data in
//! the clear, and **no key**. It restores with the keyring that was
//! current when it was taken (`docs/privacy.md`).
//!
//! Format: `mikabot backup v1\n`, then one frame per entry,
//! `name_len(u16) name key_len(u32) key value_len(u32) value`, then a
//! trailer, `0xFFFF entries(u64) sha256(32)` of every byte before the
//! trailer. A stream cut short or changed is refused.
//!
//! Consistency: the database is flushed first, and no key rotation runs
//! while the backup is written, so every data key in it is wrapped by a key
//! that the keyring of that moment holds. Writes go on meanwhile; a
//! conversation begun during the backup may be in it in part, and then
//! does not open (its key or record missing) and is removed at the next
//! erasure sweep of its store.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Storage, StorageError};

const MAGIC: &[u8] = b"mikabot backup v1\n";
const TRAILER: u16 = u16::MAX;
/// The name sled gives its default tree.
const DEFAULT_TREE: &[u8] = b"__sled__default";
/// The largest key or value a backup may name: far above any record,
/// so a damaged length is refused before it is allocated.
const MAX_FIELD_BYTES: usize = 256 * 1024 * 1024;

/// The file a backup directory holds.
pub const BACKUP_FILE: &str = "mikabot.backup";

/// What a backup holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackupSummary {
    pub entries: u64,
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// Why a backup could not be read.
fn broken(problem: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        tree: "backup",
        problem: problem.into(),
    }
}

/// A writer that hashes and counts what passes.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.inner
            .write_all(bytes)
            .map_err(|e| StorageError::Interrupted(format!("writing the backup: {e}")))
    }
}

impl Storage {
    /// Writes a backup of every tree to `out`.
    pub fn write_backup(&self, out: impl Write) -> Result<BackupSummary, StorageError> {
        self.db.flush()?;
        // No rotation while the backup is written (see the module docs).
        let _no_rotation = self.vault.hold_rotations();
        let mut out = Hashing {
            inner: out,
            hash: Sha256::new(),
            bytes: 0,
        };
        out.put(MAGIC)?;
        let mut entries = 0u64;
        for name in self.db.tree_names() {
            let tree = if name.as_ref() == DEFAULT_TREE {
                let default: &sled::Tree = &self.db;
                default.clone()
            } else {
                self.db.open_tree(&name)?
            };
            let name_len = u16::try_from(name.len())
                .ok()
                .filter(|n| *n != TRAILER)
                .ok_or_else(|| broken("a tree name is too long"))?;
            for entry in tree.iter() {
                let (key, value) = entry?;
                out.put(&name_len.to_be_bytes())?;
                out.put(&name)?;
                out.put(&(key.len() as u32).to_be_bytes())?;
                out.put(&key)?;
                out.put(&(value.len() as u32).to_be_bytes())?;
                out.put(&value)?;
                entries += 1;
            }
        }
        let sha256: [u8; 32] = out.hash.clone().finalize().into();
        let mut trailer = TRAILER.to_be_bytes().to_vec();
        trailer.extend_from_slice(&entries.to_be_bytes());
        trailer.extend_from_slice(&sha256);
        out.inner
            .write_all(&trailer)
            .and_then(|()| out.inner.flush())
            .map_err(|e| StorageError::Interrupted(format!("writing the backup: {e}")))?;
        Ok(BackupSummary {
            entries,
            bytes: out.bytes + trailer.len() as u64,
            sha256,
        })
    }
}

fn read_exact(input: &mut (impl Read + ?Sized), buffer: &mut [u8]) -> Result<(), StorageError> {
    input
        .read_exact(buffer)
        .map_err(|_| broken("the backup ends early: it was cut short"))
}

/// Reads a backup from `input`, handing every entry to `entry`, and checks
/// its trailer. What it held.
pub fn read_backup(
    mut input: impl Read,
    mut entry: impl FnMut(&[u8], Vec<u8>, Vec<u8>) -> Result<(), StorageError>,
) -> Result<BackupSummary, StorageError> {
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    let mut magic = vec![0u8; MAGIC.len()];
    read_exact(&mut input, &mut magic)?;
    if magic != MAGIC {
        return Err(broken(
            "this is not a Mikabot backup (or of another version)",
        ));
    }
    hash.update(&magic);
    bytes += magic.len() as u64;
    let mut entries = 0u64;
    let field = |input: &mut dyn Read,
                 hash: &mut Sha256,
                 bytes: &mut u64|
     -> Result<Vec<u8>, StorageError> {
        let mut len = [0u8; 4];
        read_exact(input, &mut len)?;
        hash.update(len);
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FIELD_BYTES {
            return Err(broken(
                "the backup names a value larger than any this node writes",
            ));
        }
        let mut data = vec![0u8; len];
        read_exact(input, &mut data)?;
        hash.update(&data);
        *bytes += 4 + len as u64;
        Ok(data)
    };
    loop {
        let mut name_len = [0u8; 2];
        read_exact(&mut input, &mut name_len)?;
        if u16::from_be_bytes(name_len) == TRAILER {
            let mut count = [0u8; 8];
            read_exact(&mut input, &mut count)?;
            let mut digest = [0u8; 32];
            read_exact(&mut input, &mut digest)?;
            let computed: [u8; 32] = hash.finalize().into();
            if computed != digest || u64::from_be_bytes(count) != entries {
                return Err(broken(
                    "the backup does not match its checksum: it was changed or damaged",
                ));
            }
            let mut rest = [0u8; 1];
            if input.read(&mut rest).unwrap_or(0) != 0 {
                return Err(broken("the backup has bytes after its end"));
            }
            return Ok(BackupSummary {
                entries,
                bytes: bytes + 2 + 8 + 32,
                sha256: digest,
            });
        }
        hash.update(name_len);
        bytes += 2;
        let mut name = vec![0u8; u16::from_be_bytes(name_len) as usize];
        read_exact(&mut input, &mut name)?;
        hash.update(&name);
        bytes += name.len() as u64;
        let key = field(&mut input, &mut hash, &mut bytes)?;
        let value = field(&mut input, &mut hash, &mut bytes)?;
        entry(&name, key, value)?;
        entries += 1;
    }
}

/// Restores the backup read from `input` into `data_dir`, which must be
/// empty (or absent). On any failure nothing is left in it.
pub fn restore_backup(input: impl Read, data_dir: &Path) -> Result<BackupSummary, StorageError> {
    let restored = (|| {
        let db = sled::Config::new().path(data_dir).open()?;
        let mut trees: HashMap<Vec<u8>, sled::Tree> = HashMap::new();
        let summary = read_backup(input, |name, key, value| {
            let tree = match trees.get(name) {
                Some(tree) => tree.clone(),
                None => {
                    let tree = if name == DEFAULT_TREE {
                        let default: &sled::Tree = &db;
                        default.clone()
                    } else {
                        db.open_tree(name)?
                    };
                    trees.insert(name.to_vec(), tree.clone());
                    tree
                }
            };
            tree.insert(key, value)?;
            Ok(())
        })?;
        db.flush()?;
        Ok(summary)
    })();
    if restored.is_err() {
        // Nothing half-restored is left for a node to start on.
        if let Ok(entries) = std::fs::read_dir(data_dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        }
    }
    restored
}

/// Empties the data directory of a stopped node (for a restore that
/// replaces it). Refused while a node holds the database.
pub fn clear_stopped(data_dir: &Path) -> Result<(), StorageError> {
    // Opening takes sled's lock: it fails while a node runs on it.
    drop(sled::Config::new().path(data_dir).open()?);
    for entry in std::fs::read_dir(data_dir).map_err(sled::Error::Io)? {
        let path = entry.map_err(sled::Error::Io)?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(sled::Error::Io)?;
        } else {
            std::fs::remove_file(&path).map_err(sled::Error::Io)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;

    #[test]
    fn a_backup_restores_whole_and_a_changed_one_is_refused_leaving_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = StorageOptions::in_dir(dir.path());
        let mut bytes = Vec::new();
        let written = {
            let storage = Storage::open(&options).expect("open");
            storage.accounts.insert(b"k", &b"v"[..]).expect("insert");
            storage.write_backup(&mut bytes).expect("backup")
        };
        assert_eq!(written.bytes, bytes.len() as u64);
        let target = dir.path().join("restored");
        let restored = restore_backup(&bytes[..], &target).expect("restore");
        assert_eq!(restored, written);
        let mut restored_options = options.clone();
        restored_options.data_dir = target.clone();
        let storage = Storage::open(&restored_options).expect("opens with the same keyring");
        assert_eq!(
            storage.accounts.get(b"k").expect("read").as_deref(),
            Some(&b"v"[..])
        );
        drop(storage);

        let mut changed = bytes.clone();
        let middle = changed.len() / 2;
        changed[middle] ^= 0x40;
        let elsewhere = dir.path().join("changed");
        assert!(restore_backup(&changed[..], &elsewhere).is_err());
        assert_eq!(std::fs::read_dir(&elsewhere).expect("dir").count(), 0);
        let cut = dir.path().join("cut");
        let error = restore_backup(&bytes[..bytes.len() - 10], &cut).expect_err("refused");
        assert!(error.to_string().contains("cut short"), "{error}");
        assert_eq!(std::fs::read_dir(&cut).expect("dir").count(), 0);
    }
}
