//! Passwords: argon2id with the crate's default parameters (m = 19 MiB,
//! t = 2, p = 1: OWASP's floor), stored as PHC strings. Hashing takes tens
//! of milliseconds of one core on purpose; callers on async threads run it
//! on a blocking thread.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// The PHC string for `password`, with a fresh random salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the stored PHC string. A malformed stored hash
/// matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

/// A hash of a password nobody knows, compared against when an email has no
/// account, so that a sign-in attempt takes as long whether or not the
/// account exists.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut random = [0u8; 24];
        // Without randomness the decoy is still a valid hash of a fixed
        // string, which serves its purpose (timing) as well.
        let _ = getrandom::fill(&mut random);
        hash(&super::secret::encode(&random)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_argon2id_hash_only() {
        let stored = hash("correct horse battery").expect("hash");
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterY", &stored));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_ne!(
            stored,
            hash("correct horse battery").expect("hash"),
            "salted"
        );
    }
}
