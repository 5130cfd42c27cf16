//! The contact index: which conversations a shopper typed an email address
//! or a phone number in, so an erasure request naming one finds them. It
//! holds keyed hashes (HMAC-SHA-256 under the conversation's own data key),
//! never the values. A request hashes its value again for each conversation
//! (a scan of the store's conversations, fine for a rare request); in
//! exchange, once a conversation's key is destroyed its hashes in old files
//! and backups cannot be tested against any guess.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `conversation_contacts` | `store \0 conversation(16) hmac(32)` | empty |
//!
//! Matching is deliberately forgiving where shoppers are: an email address
//! is compared lower-cased; a phone number by its last nine digits, so
//! `+32 470 12 34 56`, `0032470123456` and `0470/12.34.56` are one number.

use super::crypto::{self, SecretKey};

/// A contact detail as the index compares it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Contact {
    Email(String),
    /// The last nine digits.
    Phone(String),
}

/// Digits a phone number needs at least to be indexed.
const PHONE_MIN_DIGITS: usize = 8;
const PHONE_MAX_DIGITS: usize = 15;
const PHONE_MATCH_DIGITS: usize = 9;

impl Contact {
    /// An email address as given in a request, if it looks like one.
    pub fn email(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let (local, domain) = raw.rsplit_once('@')?;
        let valid = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && raw.chars().all(|c| !c.is_whitespace() && !c.is_control());
        valid.then(|| Self::Email(raw.to_lowercase()))
    }

    /// A phone number as given in a request, if it has enough digits.
    pub fn phone(raw: &str) -> Option<Self> {
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        let allowed = raw
            .chars()
            .all(|c| c.is_ascii_digit() || " +-./()".contains(c));
        (allowed && (PHONE_MIN_DIGITS..=PHONE_MAX_DIGITS).contains(&digits.len())).then(|| {
            Self::Phone(digits[digits.len().saturating_sub(PHONE_MATCH_DIGITS)..].to_owned())
        })
    }

    /// Its keyed hash under `key`.
    pub fn hash(&self, key: &SecretKey) -> [u8; 32] {
        match self {
            Self::Email(email) => crypto::keyed_hash(key, b"email", email.as_bytes()),
            Self::Phone(digits) => crypto::keyed_hash(key, b"phone", digits.as_bytes()),
        }
    }
}

/// The email addresses and phone numbers in a shopper's message.
pub fn find(text: &str) -> Vec<Contact> {
    let mut found = Vec::new();
    for word in text.split_whitespace() {
        let word = word.trim_matches(|c: char| "<>()[]{},;:!?\"'.".contains(c));
        if word.contains('@')
            && let Some(email) = Contact::email(word)
        {
            found.push(email);
        }
    }
    // Phone numbers: runs of digits and the separators people type between
    // them, one number per run.
    let mut run = String::new();
    let flush = |run: &mut String, found: &mut Vec<Contact>| {
        let trimmed = run.trim_matches(|c: char| !c.is_ascii_digit() && c != '+');
        if let Some(phone) = Contact::phone(trimmed) {
            found.push(phone);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit()
            || (" +-./()".contains(c) && !run.is_empty())
            || (c == '+' && run.is_empty())
        {
            run.push(c);
        } else {
            flush(&mut run, &mut found);
        }
    }
    flush(&mut run, &mut found);
    found.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_yields_its_email_addresses_and_phone_numbers() {
        let found = find("CANARY-1 Jane.Doe@Example.test +32 470 12 34 56, call me!");
        assert!(found.contains(&Contact::Email("jane.doe@example.test".into())));
        assert!(found.contains(&Contact::Phone("470123456".into())));
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            find("write to (Jane@Example.test)."),
            vec![Contact::Email("jane@example.test".into())]
        );
        assert!(find("a tent for 2 people under 150 euro").is_empty());
        assert!(find("size 42, order 2024").is_empty());
    }

    #[test]
    fn one_number_in_any_of_its_written_forms_is_one_contact() {
        let forms = [
            "+32 470 12 34 56",
            "0032470123456",
            "0470/12.34.56",
            "(0470) 12-34-56",
        ];
        for form in forms {
            assert_eq!(
                Contact::phone(form),
                Some(Contact::Phone("470123456".into())),
                "{form}"
            );
            assert_eq!(
                find(&format!("call {form} please")),
                vec![Contact::Phone("470123456".into())],
                "{form}"
            );
        }
        assert_eq!(Contact::phone("12345"), None);
        assert_eq!(Contact::phone("call 0470123456"), None);
        assert_eq!(
            Contact::email("JANE@example.TEST"),
            Contact::email("jane@example.test")
        );
        assert_eq!(Contact::email("not an address"), None);
        assert_eq!(Contact::email("a@localhost"), None);
    }
}
