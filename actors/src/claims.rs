//! Prices and stock a reply states, checked against the catalog records of
//! the products it cites. A model may write "89 euro" for a jacket that
//! costs 129, or call an out-of-stock product available; the node then
//! ends the same reply with a correction in the shopper's language
//! ("Correction: Nordwind Rain Jacket Navy costs 129.00 EUR."), so what was
//! stated is never left standing as if it were true. The cards carry the
//! catalog's prices in any case.
//!
//! A stated price belongs to the cited product nearest to it in the same
//! sentence (or to the only product the reply cites). A price is right when
//! it lies in the product's range, or is that price rounded to a whole unit
//! ("about 90 euro" for 89.95).

use std::sync::Arc;

use crate::catalog::{Currency, Money, Product};
use crate::language::Language;

/// What a correction corrects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    Price,
    Stock,
}

impl Claim {
    pub fn as_str(self) -> &'static str {
        match self {
            Claim::Price => "price",
            Claim::Stock => "stock",
        }
    }
}

/// The text that ends a reply whose claims were wrong, and what it fixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correction {
    pub text: String,
    pub claims: Vec<Claim>,
}

/// Currency marks before an amount (`€89`, `EUR 89`).
const BEFORE: &[&str] = &["€", "$", "£", "eur", "usd", "gbp", "chf"];
/// Currency marks after an amount (`89 €`, `89 euro`): the ones shoppers'
/// price bounds understand.
const AFTER: &[&str] = crate::search::query::CURRENCY;
/// Characters on either side of a number looked at for its currency mark
/// (longer than the longest mark and the character after it).
const MARK_WINDOW: usize = 10;
/// Words that say "available now", per language (lower case).
const IN_STOCK: &[&str] = &[
    "in stock",
    "available",
    "op voorraad",
    "beschikbaar",
    "leverbaar",
    "en stock",
    "disponible",
    "auf lager",
    "lieferbar",
    "verfügbar",
    "disponibile",
    "in magazzino",
];
/// Words that turn "in stock" round when they come just before it.
const NEGATIONS: &[&str] = &[
    "not",
    "no",
    "isn't",
    "niet",
    "geen",
    "pas",
    "plus",
    "nicht",
    "kein",
    "keine",
    "non",
    "nein",
    "unavailable",
    "out",
];

/// A price the reply states: where it is and the amount as written.
#[derive(Debug)]
struct Stated<'a> {
    at: usize,
    amount: &'a str,
}

/// Checks the reply's prices and stock claims against `cited`: each cited
/// product with the byte offset in `reply` where it was cited.
pub fn check(
    reply: &str,
    cited: &[(Arc<Product>, usize)],
    language: Language,
) -> Option<Correction> {
    if cited.is_empty() {
        return None;
    }
    let mut notes: Vec<String> = Vec::new();
    let mut claims: Vec<Claim> = Vec::new();
    let mut corrected: Vec<(&str, Claim)> = Vec::new();
    for stated in stated_prices(reply) {
        let Some(product) = owner(reply, stated.at, cited) else {
            continue;
        };
        let key = (product.id.0.as_str(), Claim::Price);
        if corrected.contains(&key) || price_holds(stated.amount, product) {
            continue;
        }
        corrected.push(key);
        notes.push(price_note(product, language));
        push_once(&mut claims, Claim::Price);
    }
    for (product, at) in cited {
        let key = (product.id.0.as_str(), Claim::Stock);
        if product.in_stock || corrected.contains(&key) {
            continue;
        }
        let (start, end) = sentence_around(reply, *at);
        if claims_in_stock(&reply[start..end]) {
            corrected.push(key);
            notes.push(stock_note(product, language));
            push_once(&mut claims, Claim::Stock);
        }
    }
    if notes.is_empty() {
        return None;
    }
    Some(Correction {
        text: format!("\n\n{}", notes.join(" ")),
        claims,
    })
}

fn push_once(claims: &mut Vec<Claim>, claim: Claim) {
    if !claims.contains(&claim) {
        claims.push(claim);
    }
}

/// Amounts next to a currency mark.
fn stated_prices(reply: &str) -> Vec<Stated<'_>> {
    let bytes = reply.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_number = bytes[i].is_ascii_digit()
            && (i == 0
                || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'.' | b',')));
        if !starts_number {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        while end < bytes.len()
            && (bytes[end].is_ascii_digit()
                || (matches!(bytes[end], b'.' | b',')
                    && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)))
        {
            end += 1;
        }
        // Only the few characters around the number can be its mark.
        let before = reply[..start].trim_end();
        let before = before[last_chars(before, MARK_WINDOW)..].to_lowercase();
        let after = reply[end..].trim_start();
        let after = after[..first_chars(after, MARK_WINDOW)].to_lowercase();
        let marked_before = BEFORE.iter().any(|m| {
            before.ends_with(m)
                && before[..before.len() - m.len()]
                    .chars()
                    .last()
                    .is_none_or(|c| !c.is_alphanumeric())
        });
        let marked_after = AFTER.iter().any(|m| {
            after.starts_with(m)
                && after[m.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric())
        });
        if marked_before || marked_after {
            found.push(Stated {
                at: start,
                amount: &reply[start..end],
            });
        }
        i = end.max(start + 1);
    }
    found
}

/// Where the last `n` characters of `text` start.
fn last_chars(text: &str, n: usize) -> usize {
    text.char_indices()
        .rev()
        .nth(n.saturating_sub(1))
        .map_or(0, |(at, _)| at)
}

/// Where the first `n` characters of `text` end.
fn first_chars(text: &str, n: usize) -> usize {
    text.char_indices().nth(n).map_or(text.len(), |(at, _)| at)
}

/// The byte range of the sentence holding `at` (a `.` between digits ends
/// nothing).
fn sentence_around(text: &str, at: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let ends_sentence = |i: usize| match bytes[i] {
        b'!' | b'?' | b'\n' | b';' => true,
        b'.' => {
            !(i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        }
        _ => false,
    };
    let at = at.min(text.len());
    let start = (0..at)
        .rev()
        .find(|&i| ends_sentence(i))
        .map_or(0, |i| i + 1);
    let end = (at..bytes.len())
        .find(|&i| ends_sentence(i))
        .unwrap_or(bytes.len());
    (start, end)
}

/// The cited product a stated price is about.
fn owner<'a>(reply: &str, at: usize, cited: &'a [(Arc<Product>, usize)]) -> Option<&'a Product> {
    let (start, end) = sentence_around(reply, at);
    let nearest = cited
        .iter()
        .filter(|(_, place)| (start..=end).contains(place))
        .min_by_key(|(_, place)| place.abs_diff(at))
        .map(|(p, _)| p.as_ref());
    nearest.or_else(|| {
        let first = &cited[0].0;
        cited
            .iter()
            .all(|(p, _)| p.id == first.id)
            .then_some(first.as_ref())
    })
}

/// Whether `amount` (as written) is the product's price: within its range,
/// or its price rounded to a whole unit.
fn price_holds(amount: &str, product: &Product) -> bool {
    let currency = product.price.currency;
    let Ok(stated) = Money::parse(amount, currency) else {
        // Not an amount this currency can have ("1,249" is ambiguous):
        // nothing to hold it against.
        return true;
    };
    let low = product.price.minor;
    let high = product.price_max.unwrap_or(low).max(low);
    if (low..=high).contains(&stated.minor) {
        return true;
    }
    let unit = 10_i64.pow(currency.minor_digits());
    let whole = !amount.contains(['.', ',']) || currency.minor_digits() == 0;
    let rounds_to = |minor: i64| (minor + unit / 2) / unit * unit;
    whole && (rounds_to(low) == stated.minor || rounds_to(high) == stated.minor)
}

fn claims_in_stock(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    IN_STOCK.iter().any(|phrase| {
        lower.match_indices(phrase).any(|(at, _)| {
            let whole_word = lower[at + phrase.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric())
                && lower[..at]
                    .chars()
                    .last()
                    .is_none_or(|c| !c.is_alphanumeric());
            let negated = lower[..at]
                .split(|c: char| !c.is_alphanumeric() && c != '\'')
                .filter(|w| !w.is_empty())
                .rev()
                .take(3)
                .any(|w| NEGATIONS.contains(&w));
            whole_word && !negated
        })
    })
}

fn price_text(product: &Product) -> String {
    let currency: Currency = product.price.currency;
    match product.price_max.filter(|max| *max > product.price.minor) {
        Some(max) => {
            let high = Money {
                minor: max,
                currency,
            };
            format!("{}–{}", product.price.decimal(), high)
        }
        None => product.price.to_string(),
    }
}

fn price_note(product: &Product, language: Language) -> String {
    let (name, price) = (&product.name, price_text(product));
    match language {
        Language::En => format!("Correction: {name} costs {price}."),
        Language::Nl => format!("Correctie: {name} kost {price}."),
        Language::Fr => format!("Correction : {name} coûte {price}."),
        Language::De => format!("Korrektur: {name} kostet {price}."),
        Language::Es => format!("Corrección: {name} cuesta {price}."),
        Language::It => format!("Correzione: {name} costa {price}."),
    }
}

fn stock_note(product: &Product, language: Language) -> String {
    let name = &product.name;
    match language {
        Language::En => format!("Correction: {name} is out of stock at the moment."),
        Language::Nl => format!("Correctie: {name} is op dit moment niet op voorraad."),
        Language::Fr => format!("Correction : {name} est en rupture de stock pour le moment."),
        Language::De => format!("Korrektur: {name} ist derzeit nicht auf Lager."),
        Language::Es => format!("Corrección: {name} está agotado en este momento."),
        Language::It => format!("Correzione: {name} al momento non è disponibile."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProductId;

    fn product(id: &str, name: &str, euros_cents: i64, in_stock: bool) -> Arc<Product> {
        Arc::new(Product {
            id: ProductId(id.into()),
            name: name.into(),
            brand: String::new(),
            category: String::new(),
            description: String::new(),
            tags: Vec::new(),
            price: Money {
                minor: euros_cents,
                currency: Currency::parse("EUR").expect("EUR"),
            },
            price_max: None,
            image_url: String::new(),
            url: String::new(),
            in_stock,
        })
    }

    #[test]
    fn a_wrong_price_is_corrected_in_the_shoppers_language() {
        let jacket = product("j", "Rain Jacket", 12_900, true);
        let reply = "The Rain Jacket costs 89 euro and keeps you dry.";
        let cited = [(jacket.clone(), 15)];
        let correction = check(reply, &cited, Language::En).expect("corrected");
        assert_eq!(
            correction.text,
            "\n\nCorrection: Rain Jacket costs 129.00 EUR."
        );
        assert_eq!(correction.claims, [Claim::Price]);
        let dutch = check("De jas kost €89.", &[(jacket, 6)], Language::Nl).expect("corrected");
        assert_eq!(dutch.text, "\n\nCorrectie: Rain Jacket kost 129.00 EUR.");
    }

    #[test]
    fn right_and_rounded_prices_stand() {
        let kettle = product("k", "Kettle", 8_995, true);
        for reply in [
            "The Kettle is 89.95 EUR.",
            "The Kettle is €89,95.",
            "The Kettle is about 90 euros.",
            "The Kettle, 2 years warranty, for 89.95 €.",
            "Buy 2 Kettles.",
        ] {
            assert_eq!(
                check(reply, &[(kettle.clone(), 4)], Language::En),
                None,
                "{reply}"
            );
        }
        assert!(check("The Kettle is 89.00 EUR.", &[(kettle, 4)], Language::En).is_some());
    }

    #[test]
    fn each_price_goes_to_the_product_cited_nearest_in_its_sentence() {
        let kettle = product("k", "Kettle", 4_900, true);
        let mill = product("m", "Mill", 8_900, true);
        let reply = "The Kettle costs 49 euro. The Mill costs 89 euro.";
        let cited = [(kettle.clone(), 10), (mill.clone(), 34)];
        assert_eq!(check(reply, &cited, Language::En), None);
        let swapped = "The Kettle costs 89 euro. The Mill costs 49 euro.";
        let correction = check(swapped, &cited, Language::En).expect("both wrong");
        assert_eq!(
            correction.text,
            "\n\nCorrection: Kettle costs 49.00 EUR. Correction: Mill costs 89.00 EUR."
        );
        // Two products, a price in a sentence citing neither: nobody's.
        let loose = "The Kettle and the Mill. Both under 20 euro!";
        assert_eq!(
            check(loose, &[(kettle, 10), (mill, 19)], Language::En),
            None
        );
    }

    #[test]
    fn an_out_of_stock_product_called_available_is_corrected() {
        let boots = product("b", "Trail Boots", 9_900, false);
        let cited = [(boots.clone(), 15)];
        let correction =
            check("The Trail Boots are in stock now!", &cited, Language::En).expect("corrected");
        assert_eq!(
            correction.text,
            "\n\nCorrection: Trail Boots is out of stock at the moment."
        );
        assert_eq!(correction.claims, [Claim::Stock]);
        for honest in [
            "The Trail Boots are not in stock right now.",
            "The Trail Boots are out of stock.",
            "The Trail Boots are great.",
        ] {
            assert_eq!(check(honest, &cited, Language::En), None, "{honest}");
        }
        let german = check(
            "Die Trail Boots sind auf Lager.",
            &[(boots, 20)],
            Language::De,
        )
        .expect("corrected");
        assert!(german.text.contains("nicht auf Lager"), "{}", german.text);
    }

    #[test]
    fn nothing_cited_nothing_checked() {
        assert_eq!(check("All jackets cost 5 euro.", &[], Language::En), None);
    }
}
