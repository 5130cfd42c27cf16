//! What a name, an email address, a password, a store's id and URL must be.
//! The dashboard's forms and the `mikabot` sub-commands both call these, so
//! a refusal reads the same everywhere. Each error names its field.

use mikabot_actors::catalog::normal_origin;
use mikabot_actors::ids::StoreId;
use mikabot_actors::language::Language;

/// A refused field: which, and why (shown beside the field).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_BYTES: usize = 256;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_EMAIL_BYTES: usize = 254;
pub const MAX_STORE_NAME_CHARS: usize = 80;
pub const MAX_INSTRUCTIONS_CHARS: usize = 4000;
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// A person's or token's name: trimmed, 1 to 100 characters, one line.
pub fn name(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(FieldError::new(field, "required"));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_NAME_CHARS} characters on one line"),
        ));
    }
    Ok(name.to_owned())
}

/// An email address, normalised (trimmed, lower case). Checked for shape
/// only: `local@domain.tld` with no spaces; the verification link proves
/// the rest.
pub fn email(raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_lowercase();
    let refuse = || FieldError::new("email", "an address like name@example.com");
    if email.is_empty() {
        return Err(FieldError::new("email", "required"));
    }
    if email.len() > MAX_EMAIL_BYTES {
        return Err(FieldError::new(
            "email",
            format!("at most {MAX_EMAIL_BYTES} characters"),
        ));
    }
    let (local, domain) = email.split_once('@').ok_or_else(refuse)?;
    let labels_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    if !labels_ok || !local_ok {
        return Err(refuse());
    }
    Ok(email)
}

/// A new password: 10 characters at least, 256 bytes at most, not only
/// spaces. (Length is what matters; no composition rules, as NIST 800-63B
/// advises.)
pub fn new_password(field: &'static str, raw: &str) -> Result<(), FieldError> {
    if raw.chars().count() < MIN_PASSWORD_CHARS || raw.trim().is_empty() {
        return Err(FieldError::new(
            field,
            format!("at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if raw.len() > MAX_PASSWORD_BYTES {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A language tag of the six the node speaks.
pub fn language(raw: &str) -> Result<Language, FieldError> {
    Language::from_tag(raw.trim())
        .ok_or_else(|| FieldError::new("language", "one of en, nl, fr, de, es, it"))
}

/// A new store's id (`a-z`, `0-9`, `-`).
pub fn store_id(raw: &str) -> Result<StoreId, FieldError> {
    StoreId::parse(raw.trim()).map_err(|e| FieldError::new("id", e.to_string()))
}

/// A store's id made from its name: `Kaffee & Co.` gives `kaffee-co`.
pub fn store_id_from_name(name: &str) -> String {
    let mut id = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else if !id.ends_with('-') && !id.is_empty() {
            id.push('-');
        }
        if id.len() >= 40 {
            break;
        }
    }
    id.trim_end_matches('-').to_owned()
}

/// A store's name: 1 to 80 characters, one line.
pub fn store_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(FieldError::new("name", "required"));
    }
    if name.chars().count() > MAX_STORE_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name",
            format!("at most {MAX_STORE_NAME_CHARS} characters on one line"),
        ));
    }
    Ok(name.to_owned())
}

/// A shop's public address: an http(s) URL with a host.
pub fn shop_url(raw: &str) -> Result<String, FieldError> {
    let url = raw.trim();
    if url.len() > 2048 || url.contains(char::is_whitespace) || origin_of(url).is_none() {
        return Err(FieldError::new(
            "url",
            "the shop's address, like https://shop.example",
        ));
    }
    Ok(url.to_owned())
}

/// The origin (`https://shop.example`) of an http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    normal_origin(&format!("{scheme}://{}", &rest[..end]))
}

/// The owner's instructions for the assistant: at most 4000 characters.
pub fn instructions(raw: &str) -> Result<String, FieldError> {
    let text = raw.trim();
    let ok = text
        .chars()
        .all(|c| c == '\n' || c == '\r' || c == '\t' || !c.is_control());
    if text.chars().count() > MAX_INSTRUCTIONS_CHARS || !ok {
        return Err(FieldError::new(
            "instructions",
            format!("at most {MAX_INSTRUCTIONS_CHARS} characters of text"),
        ));
    }
    Ok(text.replace("\r\n", "\n"))
}

/// Conversation retention in days: empty for the node's default, else 1 to
/// 3650.
pub fn retention_days(raw: &str) -> Result<Option<u32>, FieldError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<u32>() {
        Ok(days) if (1..=MAX_RETENTION_DAYS).contains(&days) => Ok(Some(days)),
        _ => Err(FieldError::new(
            "retention_days",
            format!("a whole number of days from 1 to {MAX_RETENTION_DAYS}, or empty"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_shaped() {
        assert_eq!(
            email("  Ada@Example.COM ").as_deref(),
            Ok("ada@example.com")
        );
        assert_eq!(email("zoë@bücher.de").as_deref(), Ok("zoë@bücher.de"));
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@exa mple.com",
            "ada@-x.com",
            "a..b@example.com",
            "ada@example..com",
        ] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn passwords_need_ten_characters_and_fit_a_bound() {
        assert!(new_password("password", "123456789").is_err());
        assert!(new_password("password", "          ").is_err());
        assert!(new_password("password", "1234567890").is_ok());
        assert!(new_password("password", "ééééééééééé").is_ok());
        assert!(new_password("password", &"x".repeat(257)).is_err());
    }

    #[test]
    fn store_ids_come_from_names() {
        assert_eq!(store_id_from_name("Kaffee & Co."), "kaffee-co");
        assert_eq!(store_id_from_name("  Ünïcode shop "), "n-code-shop");
        assert_eq!(store_id_from_name("!!!"), "");
    }

    #[test]
    fn shop_urls_and_retention_are_checked() {
        assert!(shop_url("https://shop.example").is_ok());
        assert!(shop_url("ftp://shop.example").is_err());
        assert!(shop_url("https://").is_err());
        assert!(shop_url("https://shop.example/de?x=1").is_ok());
        assert_eq!(
            origin_of("https://Shop.example:8443/de").as_deref(),
            Some("https://shop.example:8443")
        );
        assert_eq!(retention_days(""), Ok(None));
        assert_eq!(retention_days("30"), Ok(Some(30)));
        for bad in ["0", "3651", "-1", "ten", "1.5"] {
            assert!(retention_days(bad).is_err(), "{bad}");
        }
    }
}
