//! Understanding a shopper's words before searching: price bounds ("under
//! 50 euro", "onder de 30", "moins de 40 €", "zwischen 20 und 40") and "in
//! stock only", in every supported language. What is understood as a filter
//! is taken out of the text that is searched.

use crate::search::analysis::fold;

/// Exact constraints taken from the shopper's words. Prices are in minor
/// units; `max_price` is exclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock_only: bool,
    /// Set by the index when the shopper names one of the store's categories.
    pub category: Option<String>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }
}

/// A query split into the words to search and the filters to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedQuery {
    pub text: String,
    pub filters: Filters,
}

/// Bounds whose number is an exclusive maximum ("under 50").
const BELOW: &[&str] = &[
    "under",
    "below",
    "less than",
    "cheaper than",
    "onder",
    "minder dan",
    "goedkoper dan",
    "moins de",
    "moins que",
    "sous",
    "unter",
    "weniger als",
    "gunstiger als",
    "billiger als",
    "menos de",
    "por debajo de",
    "meno di",
    "sotto",
    "sotto i",
];
/// Bounds whose number is an inclusive maximum ("up to 50").
const UP_TO: &[&str] = &[
    "up to",
    "max",
    "maximum",
    "at most",
    "tot",
    "maximaal",
    "hooguit",
    "jusqu a",
    "jusqu'a",
    "au plus",
    "bis",
    "hochstens",
    "maximal",
    "hasta",
    "como maximo",
    "fino a",
    "al massimo",
];
/// Bounds whose number is an exclusive minimum ("over 50").
const ABOVE: &[&str] = &[
    "over",
    "above",
    "more than",
    "boven",
    "meer dan",
    "plus de",
    "uber",
    "mehr als",
    "mas de",
    "piu di",
    "sopra",
];
/// Bounds whose number is an inclusive minimum ("from 50").
const FROM: &[&str] = &[
    "from",
    "at least",
    "vanaf",
    "minstens",
    "a partir de",
    "au moins",
    "ab",
    "mindestens",
    "desde",
    "almeno",
    "da",
];
/// Openers of a range ("between 20 and 40").
const BETWEEN: &[&str] = &[
    "between", "tussen", "entre", "zwischen", "tra", "fra", "van", "von", "de",
];
/// Words joining the two ends of a range.
const AND: &[&str] = &[
    "and", "to", "en", "tot", "et", "a", "und", "bis", "y", "e", "-",
];
/// Words that may stand between a bound and its number ("onder de 30").
const ARTICLES: &[&str] = &["the", "de", "les", "die", "den", "los", "i", "le"];
/// Currency words and symbols around a number.
pub(crate) const CURRENCY: &[&str] = &[
    "€", "eur", "euro", "euros", "$", "usd", "dollar", "dollars", "£", "gbp", "pound", "pounds",
    "chf", "franken",
];
/// Phrases meaning "only what is in stock".
const IN_STOCK: &[&str] = &[
    "in stock",
    "available now",
    "op voorraad",
    "leverbaar",
    "en stock",
    "disponible",
    "disponibles",
    "auf lager",
    "lieferbar",
    "verfugbar",
    "en existencias",
    "disponibile",
    "disponibili",
    "in magazzino",
];

fn tokenize(folded: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = folded.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let inside_number = (c == '.' || c == ',')
            && current.chars().last().is_some_and(|p| p.is_ascii_digit())
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if c.is_alphanumeric() || inside_number || c == '\'' {
            // Digits and letters glued together ("2p", "100ml") stay one token.
            current.push(c);
        } else {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            if matches!(c, '€' | '$' | '£' | '-') {
                tokens.push(c.to_string());
            }
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// The amount a number token stands for, in minor units.
fn amount(token: &str, minor_digits: u32) -> Option<i64> {
    let normal = token.replace(',', ".");
    let (whole, fraction) = normal.split_once('.').unwrap_or((&normal, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > minor_digits as usize {
        return None;
    }
    let scale = 10_i64.checked_pow(minor_digits)?;
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<width$}", width = minor_digits as usize)
            .parse()
            .ok()?
    };
    whole.checked_mul(scale)?.checked_add(fraction)
}

/// The length in tokens of the longest phrase of `phrases` that starts at `at`.
fn phrase_at(tokens: &[String], at: usize, phrases: &[&str]) -> Option<usize> {
    phrases
        .iter()
        .filter_map(|phrase| {
            let mut length = 0;
            for word in phrase.split(' ') {
                if tokens.get(at + length).is_none_or(|t| t != word) {
                    return None;
                }
                length += 1;
            }
            Some(length)
        })
        .max()
}

/// Skips currency words; returns the index after them.
fn skip_currency(tokens: &[String], mut at: usize) -> usize {
    while at < tokens.len() && CURRENCY.contains(&tokens[at].as_str()) {
        at += 1;
    }
    at
}

/// Reads `[currency] NUMBER [currency]` at `at`: the amount and the index after it.
fn price_at(tokens: &[String], at: usize, minor_digits: u32) -> Option<(i64, usize)> {
    let at = skip_currency(tokens, at);
    let value = amount(tokens.get(at)?, minor_digits)?;
    Some((value, skip_currency(tokens, at + 1)))
}

/// Splits a shopper's words into search text and filters. `minor_digits`
/// is the store currency's (2 for EUR).
pub fn parse(query: &str, minor_digits: u32) -> ParsedQuery {
    let tokens = tokenize(&fold(query));
    let mut filters = Filters::default();
    let mut kept: Vec<&str> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if let Some(len) = phrase_at(&tokens, i, IN_STOCK) {
            filters.in_stock_only = true;
            i += len;
            continue;
        }
        // A range: [between] A (and|to|-) B.
        let opener = phrase_at(&tokens, i, BETWEEN).unwrap_or(0);
        if let Some((low, after_low)) = price_at(&tokens, i + opener, minor_digits)
            && let Some(join) = phrase_at(&tokens, after_low, AND)
            && let Some((high, after_high)) = price_at(&tokens, after_low + join, minor_digits)
            && (opener > 0 || tokens[after_low] == "-" || after_high > after_low + join + 1)
            && low <= high
        {
            filters.min_price = Some(low);
            // An exclusive bound; the highest amount keeps its own.
            filters.max_price = Some(high.saturating_add(1));
            i = after_high;
            continue;
        }
        let bound = [
            (BELOW, 0_i64, true),
            (UP_TO, 1, true),
            (ABOVE, 1, false),
            (FROM, 0, false),
        ]
        .into_iter()
        .find_map(|(phrases, offset, is_max)| {
            let len = phrase_at(&tokens, i, phrases)?;
            let mut at = i + len;
            if tokens
                .get(at)
                .is_some_and(|t| ARTICLES.contains(&t.as_str()))
            {
                at += 1;
            }
            let (value, after) = price_at(&tokens, at, minor_digits)?;
            Some((value.saturating_add(offset), is_max, after))
        });
        if let Some((value, is_max, after)) = bound {
            if is_max {
                filters.max_price = Some(value);
            } else {
                filters.min_price = Some(value);
            }
            i = after;
            continue;
        }
        // A lone amount with a currency ("40 €") stays text-free but sets
        // nothing: without a bound word it is not a filter.
        if let Some((_, after)) = price_at(&tokens, i, minor_digits)
            && (after > i + 1 || CURRENCY.contains(&tokens[i].as_str()))
        {
            i = after;
            continue;
        }
        if tokens[i] != "-" && !CURRENCY.contains(&tokens[i].as_str()) {
            kept.push(&tokens[i]);
        }
        i += 1;
    }
    ParsedQuery {
        text: kept.join(" "),
        filters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_at_the_edge_of_i64_neither_overflow_nor_panic() {
        let max = i64::MAX / 100;
        let (min, high, _) = bounds(&format!("between 1 and {max} euro"));
        assert_eq!((min, high), (Some(100), Some(max * 100 + 1)));
        let (_, high, _) = bounds(&format!("up to {max}.07 euro"));
        assert_eq!(high, Some(i64::MAX));
        let (low, _, _) = bounds(&format!("above {max}.07 euro"));
        assert_eq!(low, Some(i64::MAX));
        // Beyond i64 the number is not an amount at all.
        let (min, high, text) = bounds("under 99999999999999999999999 euro");
        assert_eq!((min, high), (None, None));
        assert!(text.contains("99999999999999999999999"), "{text}");
    }

    fn bounds(query: &str) -> (Option<i64>, Option<i64>, String) {
        let parsed = parse(query, 2);
        (
            parsed.filters.min_price,
            parsed.filters.max_price,
            parsed.text,
        )
    }

    #[test]
    fn price_bounds_are_understood_in_each_language() {
        assert_eq!(
            bounds("rain jacket under 50 euro"),
            (None, Some(5000), "rain jacket".into())
        );
        assert_eq!(
            bounds("regenjas onder de 30"),
            (None, Some(3000), "regenjas".into())
        );
        assert_eq!(
            bounds("veste moins de 40 €"),
            (None, Some(4000), "veste".into())
        );
        assert_eq!(
            bounds("Rucksack zwischen 20 und 40 Euro"),
            (Some(2000), Some(4001), "rucksack".into())
        );
        assert_eq!(
            bounds("mochila menos de 60"),
            (None, Some(6000), "mochila".into())
        );
        assert_eq!(
            bounds("zaino meno di 60 euro"),
            (None, Some(6000), "zaino".into())
        );
        assert_eq!(
            bounds("tent up to 199.99"),
            (None, Some(19_999 + 1), "tent".into())
        );
        assert_eq!(
            bounds("koksmes vanaf 50"),
            (Some(5000), None, "koksmes".into())
        );
        assert_eq!(
            bounds("headphones over 100"),
            (Some(10_001), None, "headphones".into())
        );
        assert_eq!(
            bounds("lamp 20-40"),
            (Some(2000), Some(4001), "lamp".into())
        );
        assert_eq!(
            bounds("lamp €20 to €40"),
            (Some(2000), Some(4001), "lamp".into())
        );
        assert_eq!(bounds("crème 49,95 €"), (None, None, "creme".into()));
    }

    #[test]
    fn numbers_that_are_not_prices_stay_words() {
        assert_eq!(
            bounds("shampoo 100 ml"),
            (None, None, "shampoo 100 ml".into())
        );
        assert_eq!(
            bounds("tent for 2 people"),
            (None, None, "tent for 2 people".into())
        );
        assert_eq!(
            bounds("spf 50 sunscreen"),
            (None, None, "spf 50 sunscreen".into())
        );
    }

    #[test]
    fn in_stock_phrases_set_the_filter() {
        for query in [
            "yoga mat in stock",
            "yogamat op voorraad",
            "Yogamatte auf Lager",
        ] {
            let parsed = parse(query, 2);
            assert!(parsed.filters.in_stock_only, "{query}");
            assert!(!parsed.text.contains("stock") && !parsed.text.contains("lager"));
        }
    }
}
