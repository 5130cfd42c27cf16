//! Properties of the edges that read bytes from anyone: the widget's frame
//! decoding and every catalog feed parser. Over arbitrary input (and over
//! input built to be nearly right) nothing panics, what is accepted obeys
//! the documented grammar, and an accepted feed row makes a valid product.

use mikabot::import;
use mikabot::protocol::{self, MAX_LANGUAGE_TAG_BYTES, MAX_URL_BYTES};
use mikabot_actors::catalog::Currency;
use mikabot_actors::events::ClientEvent;
use proptest::prelude::*;
use serde_json::{Value, json};

const MAX_FRAME_BYTES: usize = 16 * 1024;

/// Unicode text with the hard cases over-weighted.
fn text() -> impl Strategy<Value = String> {
    let hard = prop_oneof![
        Just("ı".to_owned()),
        Just("İ".to_owned()),
        Just("e\u{301}".to_owned()),
        Just("שלום".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("\u{0}".to_owned()),
        Just("🏕️".to_owned()),
    ];
    prop::collection::vec(
        prop_oneof![3 => any::<char>().prop_map(String::from), 1 => hard],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// A JSON value of any shape, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("v".to_owned()),
                    Just("text".to_owned()),
                    Just("client_id".to_owned()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..5
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A frame that is nearly a client frame: a known type with fields of any
/// shape.
fn nearly_a_frame() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["hello", "message", "retry", "ping", "dance"]),
        prop::collection::btree_map(
            prop::sample::select(vec![
                "v",
                "text",
                "client_id",
                "session_id",
                "language",
                "page_url",
                "referrer",
                "resume",
                "nonce",
            ]),
            json_value(),
            0..5,
        ),
    )
        .prop_map(|(kind, fields)| {
            let mut frame = serde_json::Map::new();
            frame.insert("type".into(), json!(kind));
            for (k, v) in fields {
                frame.insert(k.to_owned(), v);
            }
            Value::Object(frame)
        })
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
    fn any_text_frame_decodes_to_an_event_or_a_coded_refusal(raw in prop_oneof![
        text(),
        json_value().prop_map(|v| v.to_string()),
        nearly_a_frame().prop_map(|v| v.to_string()),
    ]) {
        let event = protocol::decode(&raw, MAX_FRAME_BYTES);
        let accepted = !matches!(event, ClientEvent::Invalid { .. });
        if accepted {
            prop_assert!(raw.len() <= MAX_FRAME_BYTES);
            let value: Value = serde_json::from_str(&raw).expect("accepted frames are JSON");
            let kind = value["type"].as_str().expect("with a string type");
            prop_assert!(["hello", "message", "retry", "ping"].contains(&kind), "{raw}");
        }
        match event {
            ClientEvent::Message { client_id, text } => {
                let value: Value = serde_json::from_str(&raw).expect("JSON");
                prop_assert_eq!(Some(client_id.as_str()), value["client_id"].as_str());
                prop_assert_eq!(Some(text.as_str()), value["text"].as_str());
            }
            ClientEvent::Hello(hello) => {
                let too_long = |field: &Option<String>, max: usize| {
                    field.as_ref().is_some_and(|f| f.len() > max)
                };
                prop_assert!(!too_long(&hello.page_url, MAX_URL_BYTES));
                prop_assert!(!too_long(&hello.referrer, MAX_URL_BYTES));
                prop_assert!(!too_long(&hello.language, MAX_LANGUAGE_TAG_BYTES));
                prop_assert!(!too_long(&hello.session_id, 64));
            }
            ClientEvent::Ping { nonce } => {
                prop_assert!(nonce.is_none_or(|n| n.len() <= 64));
            }
            _ => {}
        }
    }

    #[test]
    fn a_valid_message_frame_is_always_accepted(client_id in "[a-zA-Z0-9-]{1,64}", words in text()) {
        let frame = json!({"type": "message", "client_id": client_id, "text": words}).to_string();
        prop_assume!(frame.len() <= MAX_FRAME_BYTES);
        let event = protocol::decode(&frame, MAX_FRAME_BYTES);
        prop_assert_eq!(event, ClientEvent::Message { client_id, text: words });
    }

    #[test]
    fn any_bytes_as_a_feed_parse_or_are_refused_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let parsed = import::parse(bytes.as_slice(), "https://shop.example", eur());
        if let Ok(parsed) = parsed {
            for product in &parsed.products {
                valid_product(product)?;
            }
            prop_assert_eq!(parsed.products.len() + parsed.rejected.len() <= parsed.rows, true);
        }
    }

    #[test]
    fn nearly_right_feeds_of_every_format_keep_their_promises(
        rows in prop::collection::vec((text(), text(), prop_oneof![text(), "[0-9]{1,6}([.,][0-9]{0,3})?"]), 1..6),
        format in 0_usize..4,
    ) {
        let feed = match format {
            0 => csv_feed(&rows, ','),
            1 => csv_feed(&rows, '\t'),
            2 => json_feed(&rows),
            _ => merchant_feed(&rows),
        };
        // Well-formed in its format whatever the cells hold: it parses.
        let parsed = import::parse(feed.as_bytes(), "https://shop.example", eur());
        prop_assert!(parsed.is_ok(), "{:?} for {}", parsed.as_ref().err(), feed);
        if let Ok(parsed) = parsed {
            prop_assert_eq!(parsed.rows, rows.len(), "{}", feed);
            prop_assert_eq!(parsed.products.len() + parsed.rejected.len(), parsed.rows);
            for product in &parsed.products {
                valid_product(product)?;
            }
            for rejection in &parsed.rejected {
                prop_assert!(rejection.row >= 1 && rejection.row <= rows.len());
                prop_assert!(!rejection.reason.is_empty());
            }
        }
    }
}

fn eur() -> Currency {
    Currency::parse("EUR").expect("EUR")
}

/// What the importer promises of every product it accepts.
fn valid_product(product: &mikabot_actors::catalog::Product) -> Result<(), TestCaseError> {
    prop_assert!(!product.id.0.trim().is_empty());
    prop_assert!(!product.name.trim().is_empty());
    prop_assert!(product.price.minor >= 0);
    prop_assert!(
        product.url.starts_with("https://") || product.url.starts_with("http://"),
        "{}",
        product.url
    );
    Ok(())
}

/// A cell quoted as CSV, and as Merchant Center TSV, quote it.
fn cell(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn csv_feed(rows: &[(String, String, String)], delimiter: char) -> String {
    let d = delimiter.to_string();
    let mut feed = ["id", "title", "price", "link"].join(&d) + "\n";
    for (i, (id, title, price)) in rows.iter().enumerate() {
        let line = [
            cell(&format!("{i}{id}")),
            cell(title),
            cell(price),
            cell(&format!("https://shop.example/{i}")),
        ]
        .join(&d);
        feed.push_str(&line);
        feed.push('\n');
    }
    feed
}

fn json_feed(rows: &[(String, String, String)]) -> String {
    let products: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, (id, title, price))| {
            json!({"id": format!("{i}{id}"), "name": title, "price": price, "url": format!("https://shop.example/{i}")})
        })
        .collect();
    json!({ "products": products }).to_string()
}

fn escape(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, '\u{9}' | '\u{a}' | '\u{d}' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..))
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn merchant_feed(rows: &[(String, String, String)]) -> String {
    let mut feed = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss xmlns:g="http://base.google.com/ns/1.0" version="2.0"><channel>"#,
    );
    for (i, (id, title, price)) in rows.iter().enumerate() {
        feed.push_str(&format!(
            "<item><g:id>{i}{}</g:id><g:title>{}</g:title><g:price>{} EUR</g:price><g:link>https://shop.example/{i}</g:link></item>",
            escape(id),
            escape(title),
            escape(price)
        ));
    }
    feed.push_str("</channel></rss>");
    feed
}
