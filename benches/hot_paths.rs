//! The per-token and per-reply hot paths: encoding a token frame for the
//! socket, building a prompt's system text from retrieved products, and
//! choosing the product cards a reply names.
//! `cargo bench --bench hot_paths`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mikabot::protocol::encode;
use mikabot_actors::events::ServerEvent;
use mikabot_actors::ids::{MessageId, StoreId};
use mikabot_actors::language::Language;
use mikabot_actors::prompt::{Prompt, Role, Turn, bounded_history};
use mikabot_actors::reply::recommended_cards;

fn prompt() -> Prompt {
    let store = StoreId::parse("demo").unwrap_or_else(|e| panic!("{e}"));
    let (profile, products) = mikabot::demo::demo_store(store, "https://shop.example")
        .unwrap_or_else(|e| panic!("demo catalog: {e}"));
    let history: Vec<Turn> = (0..20)
        .map(|i| Turn {
            role: if i % 2 == 0 {
                Role::Shopper
            } else {
                Role::Assistant
            },
            text: format!(
                "turn {i}: do you have a warm winter parka in navy, size M, under 200 euro?"
            ),
        })
        .collect();
    Prompt {
        store_name: profile.name,
        store_url: profile.url,
        instructions: profile.instructions,
        language: Language::En,
        products: products.into_iter().take(6).map(Arc::new).collect(),
        history: bounded_history(&history, 2000),
        message: "Which of these is the warmest?".into(),
    }
}

fn hot_paths(c: &mut Criterion) {
    let token = ServerEvent::Token {
        reply_id: MessageId::new(),
        seq: 42,
        text: " waterproof".into(),
    };
    c.bench_function("token_frame_encode", |b| {
        b.iter(|| black_box(encode(black_box(&token))))
    });

    let prompt = prompt();
    c.bench_function("prompt_system_text", |b| {
        b.iter(|| black_box(prompt.system_text()))
    });

    let history: Vec<Turn> = prompt.history.clone();
    c.bench_function("bounded_history_20_turns", |b| {
        b.iter(|| black_box(bounded_history(black_box(&history), 2000)))
    });

    let names: Vec<String> = prompt
        .products
        .iter()
        .take(3)
        .map(|p| p.name.clone())
        .collect();
    let reply = format!(
        "Here is what I found for you:\n- {}, a good pick.\n- {}, lighter.\n- {}, the warmest. Would you like to know more?",
        names[0], names[1], names[2]
    );
    c.bench_function("recommended_cards", |b| {
        b.iter(|| black_box(recommended_cards(black_box(&prompt), black_box(&reply))))
    });
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
