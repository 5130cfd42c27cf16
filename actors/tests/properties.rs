//! Properties of what the behaviour does with text from anyone: prices,
//! shoppers' query words and search analysis, over arbitrary Unicode
//! (Greek, Turkish dotless and dotted i, combining marks, right-to-left
//! scripts, emoji). Nothing panics, and nothing is accepted that the
//! documented grammar refuses.

use std::sync::Arc;

use mikabot_actors::catalog::{Currency, Money, Product};
use mikabot_actors::ids::ProductId;
use mikabot_actors::language::Language;
use mikabot_actors::search::SearchIndex;
use mikabot_actors::search::analysis::{fold, tokens};
use mikabot_actors::search::query;
use proptest::prelude::*;

/// Text as shoppers and feeds write it, with the hard cases over-weighted.
fn text() -> impl Strategy<Value = String> {
    let hard = prop_oneof![
        Just("ı".to_owned()),
        Just("İ".to_owned()),
        Just("ς".to_owned()),
        Just("Σ".to_owned()),
        Just("e\u{301}".to_owned()),
        Just("\u{338}".to_owned()),
        Just("ß".to_owned()),
        Just("שלום".to_owned()),
        Just("مرحبا".to_owned()),
        Just("\u{200f}".to_owned()),
        Just("🏕️".to_owned()),
        Just("ﬀ".to_owned()),
        Just("€".to_owned()),
        Just(" 49,95 ".to_owned()),
        Just("under".to_owned()),
        Just("between".to_owned()),
        Just("9223372036854775807".to_owned()),
    ];
    prop::collection::vec(
        prop_oneof![3 => any::<char>().prop_map(String::from), 2 => hard, 2 => "[a-z0-9 .,-]{1,8}"],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

fn eur() -> Currency {
    Currency::parse("EUR").expect("EUR")
}

/// The documented price grammar (EUR), written out independently of the
/// parser: plain amounts and amounts with thousands grouped, surrounding
/// space allowed.
fn grammar_accepts(text: &str) -> bool {
    let t = text.trim();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    // Plain: digits, then at most one mark and up to two decimals.
    let (whole, fraction) = t.split_once(['.', ',']).unwrap_or((t, ""));
    let plain = !whole.is_empty()
        && digits(whole)
        && digits(fraction)
        && fraction.len() <= 2
        && !fraction.contains(['.', ',']);
    // Grouped: 1-3 digits, then groups of three joined by one separator,
    // then optionally the other mark and up to two decimals. A mark that
    // groups needs two groups or decimals after it (1,249 alone is
    // ambiguous).
    let grouped = |group: char, decimal: Option<char>| {
        let (whole, fraction) = match decimal {
            Some(mark) => match t.split_once(mark) {
                Some((w, f)) if digits(f) && f.len() <= 2 => (w, Some(f)),
                _ => return false,
            },
            None => (t, None),
        };
        let parts: Vec<&str> = whole.split(group).collect();
        let mark_groups = group == '.' || group == ',';
        parts.len() >= 2
            && (1..=3).contains(&parts[0].len())
            && parts.iter().all(|p| digits(p))
            && parts[1..].iter().all(|p| p.len() == 3)
            && (!mark_groups || parts.len() >= 3 || fraction.is_some())
    };
    plain
        || [
            (',', Some('.')),
            ('.', Some(',')),
            (',', None),
            ('.', None),
            (' ', None),
            (' ', Some('.')),
            (' ', Some(',')),
        ]
        .into_iter()
        .any(|(group, decimal)| grouped(group, decimal))
}

proptest! {
    // Failures found are kept next to this file, for every later run.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_price_is_accepted_only_as_the_grammar_says(raw in prop_oneof![text(), "[ 0-9.,]{0,24}"]) {
        match Money::parse(&raw, eur()) {
            Ok(money) => {
                prop_assert!(grammar_accepts(&raw), "accepted {raw:?}");
                prop_assert!(money.minor >= 0);
                // What it shows parses back to itself.
                prop_assert_eq!(Money::parse(&money.decimal(), eur()), Ok(money));
            }
            // Refused: outside the grammar, or beyond i64 minor units.
            Err(_) => prop_assert!(
                !grammar_accepts(&raw) || raw.bytes().filter(u8::is_ascii_digit).count() > 17,
                "refused {raw:?}"
            ),
        }
    }

    #[test]
    fn query_filters_never_panic_and_bounds_are_ordered(words in text(), digits in 0_u32..4) {
        let parsed = query::parse(&words, digits);
        if let (Some(min), Some(max)) = (parsed.filters.min_price, parsed.filters.max_price) {
            prop_assert!(min < max || (min == i64::MAX && max == i64::MAX), "{min} {max} from {words:?}");
        }
        // The search text keeps only what was in the query.
        let folded = fold(&words);
        for kept in parsed.text.split(' ').filter(|w| !w.is_empty()) {
            prop_assert!(folded.contains(kept), "{kept:?} not in {words:?}");
        }
    }

    #[test]
    fn folding_is_stable_and_tokens_are_alphanumeric(words in text()) {
        let once = fold(&words);
        prop_assert_eq!(fold(&once), once.clone(), "fold of {:?}", words);
        for token in tokens(&once) {
            prop_assert!(!token.is_empty());
            prop_assert!(token.chars().all(char::is_alphanumeric), "{token:?}");
        }
    }

    #[test]
    fn search_never_panics_on_any_catalog_or_query(
        names in prop::collection::vec(text(), 1..8),
        query in text(),
        language in prop::sample::select(Language::ALL.to_vec()),
    ) {
        let products: Vec<Arc<Product>> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                Arc::new(Product {
                    id: ProductId(format!("p{i}")),
                    name: name.clone(),
                    brand: String::new(),
                    category: name.chars().rev().collect(),
                    description: format!("{name} {query}"),
                    tags: vec![name.clone()],
                    price: Money { minor: i as i64 * 100, currency: eur() },
                    price_max: None,
                    image_url: String::new(),
                    url: format!("https://shop.example/{i}"),
                    in_stock: i % 2 == 0,
                })
            })
            .collect();
        let index = SearchIndex::build_with_synonyms(
            products,
            language,
            &[vec![query.clone(), "tent".into()]],
        );
        let hits = index.find(&query, language, 5);
        prop_assert!(hits.len() <= 5);
        for hit in &hits {
            prop_assert!(hit.product.id.0.starts_with('p'));
        }
    }
}
