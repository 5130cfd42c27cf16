//! The per-token and per-reply hot paths: encoding a token frame and
//! handing it to the socket, building a prompt's system text from
//! retrieved products, and choosing the product cards a reply names.
//! `cargo bench --bench hot_paths`.

use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::FromRequest;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::test::TestRequest;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use mikabot::http::widget::SocketOutbox;
use mikabot::protocol::encode;
use mikabot_actors::events::ServerEvent;
use mikabot_actors::ids::{MessageId, StoreId};
use mikabot_actors::language::Language;
use mikabot_actors::outbox::Outbox;
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
        passages: Vec::new(),
        history: bounded_history(&history, 2000),
        message: "Which of these is the warmest?".into(),
    }
}

/// A widget socket as the node holds it after the upgrade: the outbox the
/// session writes to, and the response body the HTTP layer turns into
/// WebSocket frames for the connection.
fn socket() -> (SocketOutbox, BoxBody, actix_ws::MessageStream) {
    let (req, mut payload) = TestRequest::default()
        .insert_header(("upgrade", "websocket"))
        .insert_header(("connection", "upgrade"))
        .insert_header(("sec-websocket-version", "13"))
        .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
        .to_http_parts();
    let payload = actix_web::web::Payload::from_request(&req, &mut payload)
        .now_or_never()
        .unwrap_or_else(|| panic!("the payload is ready"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (response, session, stream) =
        actix_ws::handle(&req, payload).unwrap_or_else(|e| panic!("upgrade: {e}"));
    (
        SocketOutbox::new(session, 256),
        response.into_body(),
        stream,
    )
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

    // Encode, hand to the socket's queue, and take the WebSocket frame out
    // as the connection would: everything a token costs before the write
    // system call.
    let (mut outbox, mut body, _stream) = socket();
    c.bench_function("token_frame_encode_and_send", |b| {
        b.iter(|| {
            outbox
                .push(black_box(token.clone()))
                .unwrap_or_else(|e| panic!("{e:?}"));
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx))
                .now_or_never()
                .flatten()
                .unwrap_or_else(|| panic!("a frame is ready"))
                .unwrap_or_else(|e| panic!("{e}"));
            black_box(frame)
        })
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

    // Encryption at rest: a stored message record of about 300 bytes
    // sealed and opened, and a shopper message scanned for contacts.
    let key = mikabot::storage::crypto::SecretKey::random();
    let record = vec![b'x'; 300];
    let aad = b"messages\0demo\0conversation-and-message-ids".to_vec();
    c.bench_function("seal_message_300_bytes", |b| {
        b.iter(|| {
            black_box(mikabot::storage::crypto::seal(
                &key,
                &aad,
                black_box(&record),
            ))
        })
    });
    let sealed = mikabot::storage::crypto::seal(&key, &aad, &record);
    c.bench_function("open_message_300_bytes", |b| {
        b.iter(|| {
            black_box(mikabot::storage::crypto::open(
                &key,
                &aad,
                black_box(&sealed),
            ))
        })
    });
    let text = "Do you have a waterproof jacket in size M? Mail me at jane@example.test or call +32 470 12 34 56";
    c.bench_function("contacts_in_a_shopper_message", |b| {
        b.iter(|| black_box(mikabot::storage::contacts::find(black_box(text))))
    });
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
