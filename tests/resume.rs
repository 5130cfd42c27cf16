//! Replies that survive the shopper's socket: a reconnect catches up from
//! the last token the client rendered, a newer connection takes a
//! conversation over, a message left unanswered is answered on return, a
//! failed reply can be asked for again, and only allowed origins connect.

use std::time::Duration;

use mikabot_actors::prompt::Role;
use serde_json::{Value, json};

use crate::helpers::{Behavior, FakeOpenAi, Shopper, TestApp, spawn_app, spawn_app_on};

async fn node_on(fake: &FakeOpenAi) -> TestApp {
    spawn_app_on(fake, |s| s.model.retry_budget_secs = 1).await
}

fn words(n: usize) -> Vec<String> {
    (0..n).map(|i| format!(" w{i}")).collect()
}

fn slow_reply(n: usize, delay_ms: u64) -> Behavior {
    Behavior::Stream {
        tokens: words(n),
        delay: Duration::from_millis(delay_ms),
    }
}

/// Reads frames until `count` tokens have arrived; returns them.
async fn read_tokens(shopper: &mut Shopper, count: usize) -> Vec<Value> {
    let mut tokens = Vec::new();
    while tokens.len() < count {
        let frame = shopper.next().await.json();
        if frame["type"] == "token" {
            tokens.push(frame);
        }
    }
    tokens
}

fn seqs(tokens: &[Value]) -> Vec<u64> {
    tokens.iter().filter_map(|t| t["seq"].as_u64()).collect()
}

/// Token frames after a resume: what was missed comes folded into one
/// frame (whose seq is its last token's), then one frame per token. Checks
/// that the seqs rise, the first frame starts right after the client's
/// last token, and the last is token `count - 1`; the caller checks the
/// text, which shows nothing was repeated or skipped.
fn assert_resumed_tokens(tokens: &[Value], from: u64, count: u64) {
    let seqs = seqs(tokens);
    assert!(!seqs.is_empty(), "no tokens after the resume");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs rise: {seqs:?}");
    assert!(
        seqs[0] >= from,
        "the first frame starts at {from}: {seqs:?}"
    );
    assert_eq!(seqs.last(), Some(&(count - 1)), "{seqs:?}");
    // After the folded catch-up, each frame is one live token.
    assert!(
        seqs.windows(2).skip(1).all(|w| w[1] == w[0] + 1),
        "live tokens one by one: {seqs:?}"
    );
}

fn joined(tokens: &[Value]) -> String {
    tokens.iter().filter_map(|t| t["text"].as_str()).collect()
}

#[actix_web::test]
async fn a_reconnect_mid_reply_replays_what_was_missed_and_continues() {
    let fake = FakeOpenAi::start().await;
    fake.always(slow_reply(40, 25));
    let app = node_on(&fake).await;

    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    let session_id = ready["session_id"].clone();
    shopper.message("c1", "a tent please").await;
    assert_eq!(shopper.next().await.json()["type"], "ack");
    let first = read_tokens(&mut shopper, 5).await;
    let reply_id = first[0]["reply_id"].clone();
    // The client rendered tokens 0..=4, then its connection died.
    drop(shopper);
    tokio::time::sleep(Duration::from_millis(120)).await;

    let mut back = Shopper::connect(&app.ws_url("demo")).await;
    let ready = back
        .hello(json!({"session_id": session_id, "resume": {"reply_id": reply_id, "last_seq": 4}}))
        .await;
    assert_eq!(ready["resumed"], true);
    assert_eq!(ready["pending_reply"], reply_id, "{ready}");
    let rest = back.read_reply(Value::Null).await;
    assert_eq!(rest.end["type"], "done", "{}", rest.end);
    assert_resumed_tokens(&rest.tokens, 5, 40);
    assert!(rest.tokens.iter().all(|t| t["reply_id"] == reply_id));
    assert_eq!(
        joined(&rest.tokens),
        words(40)[5..].concat(),
        "every missed token once, in order"
    );
    let whole = joined(&first) + &joined(&rest.tokens);
    assert_eq!(whole, words(40).concat());
    assert_eq!(
        fake.requests().len(),
        1,
        "the reply was not generated twice"
    );

    let stored = app.stored_history(&ready);
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].role, Role::Assistant);
    assert_eq!(stored[1].text, whole);
    assert!(!stored[1].reply.as_ref().expect("a reply").incomplete);
}

#[actix_web::test]
async fn a_new_page_follows_a_running_reply_from_its_start() {
    let fake = FakeOpenAi::start().await;
    fake.always(slow_reply(20, 40));
    let app = node_on(&fake).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    shopper.message("c1", "a lamp").await;
    assert_eq!(shopper.next().await.json()["type"], "ack");
    read_tokens(&mut shopper, 2).await;
    shopper.close().await;

    // The next page knows the session, not the reply.
    let mut next_page = Shopper::connect(&app.ws_url("demo")).await;
    let again = next_page
        .hello(json!({"session_id": ready["session_id"]}))
        .await;
    assert!(again["pending_reply"].is_string(), "{again}");
    let history = again["history"].as_array().expect("history");
    assert_eq!(
        history.len(),
        1,
        "the shopper's message; the reply is pending"
    );
    let reply = next_page.read_reply(Value::Null).await;
    assert_resumed_tokens(&reply.tokens, 0, 20);
    assert!(
        reply.tokens[0]["seq"].as_u64() >= Some(1),
        "the two tokens already out came as one frame: {:?}",
        seqs(&reply.tokens)
    );
    assert_eq!(reply.text(), words(20).concat());
}

#[actix_web::test]
async fn a_finished_reply_is_in_the_history_not_replayed() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::reply(&["Here ", "it ", "is."]));
    let app = node_on(&fake).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "tent").await;
    assert_eq!(reply.end["type"], "done");
    let reply_id = reply.end["reply_id"].clone();
    shopper.close().await;

    let mut back = Shopper::connect(&app.ws_url("demo")).await;
    let again = back
        .hello(json!({"session_id": ready["session_id"], "resume": {"reply_id": reply_id, "last_seq": 0}}))
        .await;
    assert!(again["pending_reply"].is_null(), "{again}");
    let history = again["history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["message_id"], reply_id);
    assert_eq!(history[1]["text"], "Here it is.");
    back.send(json!({"type": "ping", "nonce": "n"})).await;
    assert_eq!(
        back.next().await.json()["type"],
        "pong",
        "no token frames follow"
    );
}

#[actix_web::test]
async fn a_newer_connection_takes_the_conversation_over() {
    let fake = FakeOpenAi::start().await;
    fake.always(slow_reply(30, 25));
    let app = node_on(&fake).await;
    let mut first = Shopper::connect(&app.ws_url("demo")).await;
    let ready = first.hello(json!({})).await;
    first.message("c1", "a stove").await;
    assert_eq!(first.next().await.json()["type"], "ack");
    let seen = read_tokens(&mut first, 3).await;
    let last_seq = seen[2]["seq"].clone();

    let mut second = Shopper::connect(&app.ws_url("demo")).await;
    second
        .hello(json!({"session_id": ready["session_id"], "resume": {"reply_id": seen[0]["reply_id"], "last_seq": last_seq}}))
        .await;
    let (frames, code, reason) = first.until_closed().await;
    assert_eq!(code, 4409);
    assert_eq!(reason, "session_replaced");
    let error = frames
        .iter()
        .find(|f| f["type"] == "error")
        .expect("told why");
    assert_eq!(error["code"], "session_replaced");
    let rest = second.read_reply(Value::Null).await;
    assert_eq!(rest.end["type"], "done");
    assert_resumed_tokens(&rest.tokens, 3, 30);
    assert_eq!(joined(&rest.tokens), words(30)[3..].concat());
}

#[actix_web::test]
async fn a_message_left_unanswered_is_answered_when_the_shopper_returns() {
    let fake = FakeOpenAi::start().await;
    // The first reply never starts streaming; the node stops meanwhile.
    fake.script([Behavior::Stall { tokens: Vec::new() }]);
    fake.always(Behavior::reply(&["Welcome ", "back."]));
    let app = node_on(&fake).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    shopper.message("c1", "a kettle").await;
    assert_eq!(shopper.next().await.json()["type"], "ack");
    // Stop once the model has the request and is stalling on it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fake.requests().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the model was asked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dir = app.stop().await;

    let base_url = fake.base_url.clone();
    let app = crate::helpers::spawn_app_in(dir, move |s| {
        s.model.provider = mikabot::config::ProviderChoice::Openai;
        s.model.base_url = base_url;
    })
    .await;
    let mut back = Shopper::connect(&app.ws_url("demo")).await;
    let again = back.hello(json!({"session_id": ready["session_id"]})).await;
    assert_eq!(again["history"].as_array().map(Vec::len), Some(1));
    let reply = back.read_reply(Value::Null).await;
    assert_eq!(reply.end["type"], "done", "{}", reply.end);
    assert_eq!(reply.text(), "Welcome back.");
}

#[actix_web::test]
async fn a_failed_reply_can_be_asked_for_again() {
    let fake = FakeOpenAi::start().await;
    fake.script([Behavior::CutAfter {
        tokens: vec!["Half ".into()],
    }]);
    fake.always(Behavior::reply(&["Whole ", "answer."]));
    let app = node_on(&fake).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;

    shopper.send(json!({"type": "retry"})).await;
    let refused = shopper.next().await.json();
    assert_eq!(refused["code"], "nothing_to_retry", "{refused}");

    let failed = shopper.ask("c1", "tent").await;
    assert_eq!(failed.end["code"], "model_failed");
    shopper.send(json!({"type": "retry"})).await;
    let again = shopper.read_reply(Value::Null).await;
    assert_eq!(again.end["type"], "done", "{}", again.end);
    assert_eq!(again.text(), "Whole answer.");
    assert_ne!(again.end["reply_id"], failed.end["reply_id"]);

    let stored = app.stored_history(&ready);
    let roles: Vec<Role> = stored.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::Shopper, Role::Assistant, Role::Assistant]);
    assert!(stored[1].reply.as_ref().expect("a reply").incomplete);
    assert_eq!(stored[2].text, "Whole answer.");
    let prompt = &fake.requests()[1].body["messages"];
    let texts: Vec<&str> = prompt
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(
        !texts.contains(&"Half "),
        "the interrupted answer is not in the retried prompt: {texts:?}"
    );

    shopper.send(json!({"type": "retry"})).await;
    assert_eq!(shopper.next().await.json()["code"], "nothing_to_retry");
}

#[actix_web::test]
async fn only_allowed_origins_open_the_widget() {
    let app = spawn_app(|_| {}).await;
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let mut shopper = Shopper::connect_from(&app.ws_url("demo"), origin).await;
        shopper
            .send(json!({"type": "hello", "v": 1, "language": "en"}))
            .await;
        let (frames, code, reason) = shopper.until_closed().await;
        assert_eq!(
            (code, reason.as_str()),
            (4403, "origin_not_allowed"),
            "{origin:?}"
        );
        assert_eq!(frames[0]["code"], "origin_not_allowed");
        assert!(!frames.iter().any(|f| f["type"] == "ready"));
    }
    // The node's own pages, under the name the browser used.
    let own = format!("http://127.0.0.1:{}", app.port);
    let mut shopper = Shopper::connect_from(&app.ws_url("demo"), Some(&own)).await;
    shopper.hello(json!({})).await;
    let mut shopper =
        Shopper::connect_from(&app.ws_url("demo"), Some("http://localhost:8080")).await;
    let ready = shopper.hello(json!({})).await;
    assert_eq!(ready["type"], "ready");
}

#[actix_web::test]
async fn a_resume_that_missed_more_tokens_than_the_outgoing_bound_catches_up() {
    let fake = FakeOpenAi::start().await;
    fake.always(slow_reply(300, 4));
    // Fewer waiting frames allowed than the tokens the client will miss.
    let app = spawn_app_on(&fake, |s| s.widget.outgoing_buffer = 8).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    shopper.message("c1", "a long answer please").await;
    assert_eq!(shopper.next().await.json()["type"], "ack");
    let first = read_tokens(&mut shopper, 3).await;
    let reply_id = first[0]["reply_id"].clone();
    drop(shopper);
    tokio::time::sleep(Duration::from_millis(400)).await;

    let mut back = Shopper::connect(&app.ws_url("demo")).await;
    back.hello(
        json!({"session_id": ready["session_id"], "resume": {"reply_id": reply_id, "last_seq": 2}}),
    )
    .await;
    let rest = back.read_reply(Value::Null).await;
    assert_eq!(rest.end["type"], "done", "{}", rest.end);
    assert_resumed_tokens(&rest.tokens, 3, 300);
    assert!(
        rest.tokens[0]["seq"].as_u64() > Some(10),
        "the missed tokens came as one frame: {:?}",
        seqs(&rest.tokens)[..3].to_vec()
    );
    assert_eq!(joined(&rest.tokens), words(300)[3..].concat());
}
