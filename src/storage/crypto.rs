//! The primitives of encryption at rest: 32-byte secret keys,
//! XChaCha20-Poly1305 sealing with the record's key as additional
//! authenticated data, and keyed hashes (HMAC-SHA-256) for indexes that
//! must find a value without holding it.
//!
//! A sealed value is `version(1) nonce(24) ciphertext+tag`. The nonce is
//! random per value: with 192 bits, collisions are not a concern at any
//! number of writes this node makes.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The first byte of every sealed value: the format, for a future change
/// of cipher.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;
/// What sealing adds to a plaintext: version, nonce and tag.
pub const OVERHEAD: usize = 1 + NONCE_LEN + 16;

/// A 32-byte symmetric key. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.0))
    }
}

/// Fills `bytes` from the operating system's random source. A machine
/// without one cannot keep anything secret: that is a fatal fault, not an
/// error to handle.
pub fn fill_random(bytes: &mut [u8]) {
    getrandom::fill(bytes).expect("the operating system's random source is unavailable");
}

/// A sealed value that does not open: a wrong key, a value moved to
/// another record, or damaged bytes. Deliberately says no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a sealed value does not open with its key")]
pub struct Unsealed;

/// Encrypts `plaintext` under `key`, bound to `aad` (the record's key and
/// tree): the same bytes under another record key do not open.
pub fn seal(key: &SecretKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    let nonce = XNonce::from(nonce);
    // Encryption fails only for plaintexts beyond the cipher's 256 GiB
    // bound, far above any record this node writes.
    let ciphertext = key
        .cipher()
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default();
    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    sealed.push(SEALED_V1);
    sealed.extend_from_slice(nonce.as_slice());
    sealed.extend_from_slice(&ciphertext);
    sealed
}

/// The plaintext of a value [`seal`]ed under `key` with `aad`.
pub fn open(key: &SecretKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Unsealed> {
    if sealed.len() < OVERHEAD || sealed[0] != SEALED_V1 {
        return Err(Unsealed);
    }
    let nonce = <[u8; NONCE_LEN]>::try_from(&sealed[1..1 + NONCE_LEN]).map_err(|_| Unsealed)?;
    key.cipher()
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &sealed[1 + NONCE_LEN..],
                aad,
            },
        )
        .map_err(|_| Unsealed)
}

/// HMAC-SHA-256 of `value` under `key`, separated by `domain` (what kind
/// of value it is), for indexes that look a value up without storing it.
pub fn keyed_hash(key: &SecretKey, domain: &[u8], value: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key.as_bytes()) else {
        return [0; 32];
    };
    mac.update(&(domain.len() as u32).to_be_bytes());
    mac.update(domain);
    mac.update(value);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_record_key() {
        let key = SecretKey::random();
        let sealed = seal(&key, b"messages\0shop\0a", b"hello");
        assert_eq!(sealed.len(), 5 + OVERHEAD);
        assert_eq!(
            open(&key, b"messages\0shop\0a", &sealed).as_deref(),
            Ok(&b"hello"[..])
        );
        assert_eq!(open(&key, b"messages\0shop\0b", &sealed), Err(Unsealed));
        assert_eq!(
            open(&SecretKey::random(), b"messages\0shop\0a", &sealed),
            Err(Unsealed)
        );
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert_eq!(open(&key, b"messages\0shop\0a", &damaged), Err(Unsealed));
        assert_eq!(open(&key, b"", b"{\"plain\":1}"), Err(Unsealed));
        // Two seals of one value differ (a fresh nonce each).
        assert_ne!(sealed, seal(&key, b"messages\0shop\0a", b"hello"));
    }

    #[test]
    fn keyed_hashes_depend_on_key_domain_and_value() {
        let key = SecretKey::random();
        let a = keyed_hash(&key, b"email", b"jane@example.test");
        assert_eq!(a, keyed_hash(&key, b"email", b"jane@example.test"));
        assert_ne!(a, keyed_hash(&key, b"phone", b"jane@example.test"));
        assert_ne!(a, keyed_hash(&key, b"email", b"john@example.test"));
        assert_ne!(
            a,
            keyed_hash(&SecretKey::random(), b"email", b"jane@example.test")
        );
    }
}
