//! Catalog data as the assistant sees it: stores, products, money and the
//! product cards shown to shoppers. Cards are always built from these records,
//! never from model text.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{ProductId, StoreId};
use crate::language::Language;

/// An ISO 4217 currency code such as `EUR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// The currencies the catalog accepts, with their number of minor units.
const CURRENCIES: &[(&str, u32)] = &[
    ("EUR", 2),
    ("USD", 2),
    ("GBP", 2),
    ("CHF", 2),
    ("SEK", 2),
    ("NOK", 2),
    ("DKK", 2),
    ("PLN", 2),
    ("CZK", 2),
    ("CAD", 2),
    ("AUD", 2),
    ("JPY", 0),
];

/// Why a currency code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency {0:?}: expected an ISO 4217 code such as EUR or USD")]
pub struct UnknownCurrency(pub String);

impl Currency {
    /// The euro (the first entry of the table).
    pub const EUR: Currency = Currency(*b"EUR");

    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        let upper = code.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == upper)
            .map(|(c, _)| {
                let b = c.as_bytes();
                Currency([b[0], b[1], b[2]])
            })
            .ok_or_else(|| UnknownCurrency(code.to_owned()))
    }

    pub fn code(&self) -> &str {
        // The bytes always come from the ASCII table above.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (2 for EUR, 0 for JPY).
    pub fn minor_digits(&self) -> u32 {
        CURRENCIES
            .iter()
            .find(|(c, _)| c.as_bytes() == self.0)
            .map_or(2, |(_, d)| *d)
    }
}

impl TryFrom<String> for Currency {
    type Error = UnknownCurrency;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

/// An amount in minor units (cents), so prices never round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    /// The amount as a plain decimal string (`"49.95"`, `"1200"` for JPY).
    pub fn decimal(&self) -> String {
        let digits = self.currency.minor_digits();
        if digits == 0 {
            return self.minor.to_string();
        }
        let scale = 10_i64.pow(digits);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let scale = scale.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = digits as usize
        )
    }
}

/// Why a price text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("price {text:?} {problem}")]
pub struct InvalidPrice {
    pub text: String,
    pub problem: PriceProblem,
}

/// What is wrong with a price text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PriceProblem {
    #[error("is not a non-negative decimal amount such as 49.95, 1,249.00 or 1.249,00")]
    NotAnAmount,
    /// One `.` or `,` followed by exactly three digits: a thousands
    /// separator (1,249 = 1249) or a decimal point (1,249 = 1.249).
    #[error(
        "is ambiguous: its one separator may mark thousands or decimals; write the decimals too (1,249.00 or 1.249,00) or no separator (1249)"
    )]
    Ambiguous,
    #[error("has more decimals than its currency has")]
    TooManyDecimals,
    #[error("is too large")]
    TooLarge,
}

/// Characters that only ever group thousands: spaces (plain, no-break,
/// narrow no-break) and the apostrophe of Swiss prices.
const GROUPING_ONLY: [char; 4] = [' ', '\u{a0}', '\u{202f}', '\''];

impl Money {
    /// Parses a price into minor units, exactly (no floats): `49.95`,
    /// `49,95`, `49`, and with thousands grouped as `1,249.00`,
    /// `1.249,00`, `1 249,00`, `1'249.00` or `1,249,000`. Where both `.`
    /// and `,` appear, the last is the decimal separator; one separator
    /// repeated groups thousands. A single `.` or `,` followed by exactly
    /// three digits (`1,249`) is refused as ambiguous, except in a currency
    /// without minor units (it groups thousands) or with three (it marks
    /// the decimals, as those currencies write them).
    pub fn parse(text: &str, currency: Currency) -> Result<Self, InvalidPrice> {
        let refuse = |problem| InvalidPrice {
            text: text.to_owned(),
            problem,
        };
        let digits = currency.minor_digits() as usize;
        let trimmed = text.trim();
        let is_mark = |c: char| c == '.' || c == ',';
        if trimmed.is_empty()
            || !trimmed
                .chars()
                .all(|c| c.is_ascii_digit() || is_mark(c) || GROUPING_ONLY.contains(&c))
        {
            return Err(refuse(PriceProblem::NotAnAmount));
        }
        let dots = trimmed.matches('.').count();
        let commas = trimmed.matches(',').count();
        // The decimal separator, if any, and where it is.
        let decimal_at = match (dots, commas) {
            (0, 0) => None,
            (_, 0) | (0, _) => {
                let (mark, count) = if dots > 0 { ('.', dots) } else { (',', commas) };
                let at = trimmed.rfind(mark).unwrap_or(0);
                let after = trimmed.len() - at - 1;
                let grouped = trimmed.contains(GROUPING_ONLY);
                if count > 1 || grouped && after == 3 {
                    None
                } else if after == 3 && digits != 3 {
                    if digits == 0 {
                        None
                    } else {
                        return Err(refuse(PriceProblem::Ambiguous));
                    }
                } else {
                    Some(at)
                }
            }
            _ => {
                let last_dot = trimmed.rfind('.').unwrap_or(0);
                let last_comma = trimmed.rfind(',').unwrap_or(0);
                let (at, count) = if last_dot > last_comma {
                    (last_dot, dots)
                } else {
                    (last_comma, commas)
                };
                if count > 1 {
                    return Err(refuse(PriceProblem::NotAnAmount));
                }
                Some(at)
            }
        };
        let (whole, fraction) = match decimal_at {
            Some(at) => (&trimmed[..at], &trimmed[at + 1..]),
            None => (trimmed, ""),
        };
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse(PriceProblem::NotAnAmount));
        }
        if fraction.len() > digits {
            return Err(refuse(PriceProblem::TooManyDecimals));
        }
        let whole = ungrouped(whole).ok_or_else(|| refuse(PriceProblem::NotAnAmount))?;
        let too_large = || refuse(PriceProblem::TooLarge);
        let whole: i64 = whole.parse().map_err(|_| too_large())?;
        let fraction: i64 = if fraction.is_empty() {
            0
        } else {
            format!("{fraction:0<digits$}")
                .parse()
                .map_err(|_| refuse(PriceProblem::NotAnAmount))?
        };
        let minor = whole
            .checked_mul(10_i64.pow(digits as u32))
            .and_then(|m| m.checked_add(fraction))
            .ok_or_else(too_large)?;
        Ok(Money { minor, currency })
    }
}

/// The digits of a whole part, its thousands grouped by one kind of
/// separator (first group of one to three digits, then groups of three),
/// or not grouped at all.
fn ungrouped(whole: &str) -> Option<String> {
    let mut separators = whole.chars().filter(|c| !c.is_ascii_digit());
    let Some(separator) = separators.next() else {
        return (!whole.is_empty()).then(|| whole.to_owned());
    };
    if separators.any(|c| c != separator) {
        return None;
    }
    let mut groups = whole.split(separator);
    let first = groups.next()?;
    if first.is_empty() || first.len() > 3 {
        return None;
    }
    let mut digits = first.to_owned();
    for group in groups {
        if group.len() != 3 {
            return None;
        }
        digits.push_str(group);
    }
    Some(digits)
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal(), self.currency.code())
    }
}

/// One product of a store's catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    #[serde(default)]
    pub brand: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub description: String,
    /// Extra search words (Shopify tags, feed labels, translated keywords).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The lowest price.
    pub price: Money,
    /// The highest price, in the same currency, for products sold in
    /// variants at several prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_max: Option<i64>,
    pub image_url: String,
    pub url: String,
    #[serde(default = "in_stock_by_default")]
    pub in_stock: bool,
}

fn in_stock_by_default() -> bool {
    true
}

impl Product {
    /// The card a shopper sees, built from catalog data only.
    pub fn card(&self) -> ProductCard {
        ProductCard {
            id: self.id.clone(),
            name: self.name.clone(),
            price: self.price,
            price_max: self.price_max.map(|minor| Money {
                minor,
                currency: self.price.currency,
            }),
            image_url: self.image_url.clone(),
            url: self.url.clone(),
        }
    }
}

/// What the widget renders for a recommended product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductCard {
    pub id: ProductId,
    pub name: String,
    pub price: Money,
    /// Set when variants are sold at several prices ("from" `price`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_max: Option<Money>,
    pub image_url: String,
    pub url: String,
}

/// A store's settings as the assistant needs them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreProfile {
    pub id: StoreId,
    pub name: String,
    /// The shop's public address.
    pub url: String,
    /// The owner's instructions for the assistant (tone, policies, focus).
    #[serde(default)]
    pub instructions: String,
    pub default_language: Language,
    pub currency: Currency,
    /// Origins allowed to open the widget socket (`https://shop.example`).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Groups of words the store's shoppers use for the same thing
    /// (`["hoodie", "sweatshirt"]`).
    #[serde(default)]
    pub synonyms: Vec<Vec<String>>,
    /// How the widget looks on the store's pages.
    #[serde(default)]
    pub branding: Branding,
    /// Days a conversation is kept; `None` is the node's default.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

/// The allowed-origins entry that stands for the node's own pages (the demo
/// shop): an Origin whose host and port are the request's Host.
pub const SELF_ORIGIN: &str = "self";

impl StoreProfile {
    /// Whether a page at `origin` may open the store's widget socket. `host`
    /// is the Host the request reached the node with, for [`SELF_ORIGIN`].
    pub fn allows_origin(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin.and_then(normal_origin) else {
            return false;
        };
        self.allowed_origins.iter().any(|allowed| {
            if allowed == SELF_ORIGIN {
                let authority = origin.split_once("://").map_or("", |(_, a)| a);
                host.is_some_and(|h| {
                    strip_default_port(&origin, &h.to_ascii_lowercase()) == authority
                })
            } else {
                normal_origin(allowed).is_some_and(|a| a == origin)
            }
        })
    }
}

/// `scheme://host[:port]`, lower case, without a default port or a slash;
/// `None` for anything else (including the browser's `null`).
pub fn normal_origin(raw: &str) -> Option<String> {
    let raw = raw.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = raw.split_once("://")?;
    if !matches!(scheme, "http" | "https")
        || authority.is_empty()
        || authority.contains(['/', '?', '#', '@', ' '])
    {
        return None;
    }
    let authority = strip_default_port(&raw, authority);
    Some(format!("{scheme}://{authority}"))
}

fn strip_default_port(origin: &str, authority: &str) -> String {
    let default = if origin.starts_with("https://") {
        ":443"
    } else {
        ":80"
    };
    authority
        .strip_suffix(default)
        .unwrap_or(authority)
        .to_owned()
}

/// Which corner the widget's launcher sits in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Corner {
    #[default]
    Right,
    Left,
}

/// A store's widget look. Empty strings mean the widget's own default
/// (the store's name as title, a greeting in the shopper's language).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Branding {
    /// Accent colour, `#rrggbb`.
    pub color: String,
    pub title: String,
    /// An http(s) image URL, or empty for none.
    pub avatar_url: String,
    pub greeting: String,
    pub position: Corner,
}

impl Default for Branding {
    fn default() -> Self {
        Self {
            color: "#1f5fbf".into(),
            title: String::new(),
            avatar_url: String::new(),
            greeting: String::new(),
            position: Corner::Right,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_prints_minor_units_exactly() {
        let eur = Currency::parse("eur").expect("EUR is in the table");
        let jpy = Currency::parse("JPY").expect("JPY is in the table");
        assert_eq!(
            Money {
                minor: 4995,
                currency: eur
            }
            .decimal(),
            "49.95"
        );
        assert_eq!(
            Money {
                minor: 5,
                currency: eur
            }
            .decimal(),
            "0.05"
        );
        assert_eq!(
            Money {
                minor: 1200,
                currency: jpy
            }
            .decimal(),
            "1200"
        );
        assert_eq!(
            Money {
                minor: -150,
                currency: eur
            }
            .to_string(),
            "-1.50 EUR"
        );
    }

    #[test]
    fn prices_parse_exactly() {
        let eur = Currency::parse("EUR").expect("EUR is known");
        assert_eq!(Money::parse("49.95", eur).map(|m| m.minor), Ok(4995));
        assert_eq!(Money::parse("49,9", eur).map(|m| m.minor), Ok(4990));
        assert_eq!(Money::parse("12", eur).map(|m| m.minor), Ok(1200));
        for bad in ["", "-1", "1e3", "abc", "99999999999999999999"] {
            assert!(Money::parse(bad, eur).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn thousands_separators_are_read_where_they_are_unambiguous() {
        let eur = Currency::parse("EUR").expect("EUR is known");
        let jpy = Currency::parse("JPY").expect("JPY is known");
        let minor = |text: &str, currency| Money::parse(text, currency).map(|m| m.minor);
        for (text, expected) in [
            ("1,249.00", 124_900),
            ("1.249,00", 124_900),
            ("1 249,00", 124_900),
            ("1\u{202f}249,00", 124_900),
            ("1'249.50", 124_950),
            ("12,345,678.9", 1_234_567_890),
            ("1.249.000", 124_900_000),
            ("1,249,000", 124_900_000),
            ("1 249", 124_900),
            ("49,95", 4995),
            ("1249", 124_900),
        ] {
            assert_eq!(minor(text, eur), Ok(expected), "{text:?}");
        }
        assert_eq!(
            minor("1,249", jpy),
            Ok(1249),
            "no minor units: only thousands"
        );
        let problem = |text: &str| Money::parse(text, eur).map_err(|e| e.problem);
        assert_eq!(problem("1,249"), Err(PriceProblem::Ambiguous));
        assert_eq!(problem("1.234"), Err(PriceProblem::Ambiguous));
        assert_eq!(problem("1.2345"), Err(PriceProblem::TooManyDecimals));
        for malformed in [
            "1,24.00",
            "12,49,000",
            "1.249.00,0,0",
            "1 249.000,00",
            ",50",
            "1,,249",
        ] {
            assert_eq!(
                problem(malformed),
                Err(PriceProblem::NotAnAmount),
                "{malformed:?}"
            );
        }
        let message = Money::parse("1,249", eur)
            .expect_err("ambiguous")
            .to_string();
        assert!(message.contains("\"1,249\" is ambiguous"), "{message}");
    }

    #[test]
    fn origins_match_exactly_after_normalising() {
        let profile = StoreProfile {
            id: crate::ids::StoreId::parse("s").expect("valid id"),
            name: "S".into(),
            url: "https://shop.example".into(),
            instructions: String::new(),
            default_language: crate::language::Language::En,
            currency: Currency::parse("EUR").expect("known"),
            allowed_origins: vec!["https://Shop.example/".into(), SELF_ORIGIN.into()],
            synonyms: Vec::new(),
            branding: Branding::default(),
            retention_days: None,
        };
        let node = Some("node.example:8080");
        for ok in [
            "https://shop.example",
            "https://shop.example:443",
            "http://node.example:8080",
        ] {
            assert!(profile.allows_origin(Some(ok), node), "{ok}");
        }
        for refused in [
            "http://shop.example",
            "https://shop.example.evil",
            "https://evil.example",
            "null",
            "",
            "http://node.example:8081",
        ] {
            assert!(!profile.allows_origin(Some(refused), node), "{refused}");
        }
        assert!(!profile.allows_origin(None, node));
        assert!(!profile.allows_origin(Some("http://node.example:8080"), None));
    }

    #[test]
    fn unknown_currencies_are_refused() {
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("").is_err());
    }
}
