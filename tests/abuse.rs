//! Every bound an unauthenticated client meets, at and just over its
//! limit: open sessions per address and per node, new conversations per
//! address, messages per address across sockets, a store's daily model
//! budget, and the model's circuit breaker. Each refusal has its stable
//! code, and what was accepted before stays served.

use serde_json::{Value, json};

use crate::helpers::{Behavior, FakeOpenAi, Shopper, TestApp, spawn_app, spawn_app_on};

fn code(frame: &Value) -> &str {
    assert_eq!(frame["type"], "error", "{frame}");
    frame["code"].as_str().expect("code")
}

async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", app.port))
        .await
        .expect("answer")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().expect("a number"))
}

#[actix_web::test]
async fn open_sessions_are_bounded_per_address_and_per_node() {
    let app = spawn_app(|s| s.limits.sessions_per_address = 2).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
        shopper.hello(json!({})).await;
        open.push(shopper);
    }
    let mut third = Shopper::connect(&app.ws_url("demo")).await;
    let (frames, close, reason) = third.until_closed().await;
    assert_eq!(code(&frames[0]), "too_many_sessions");
    assert_eq!((close, reason.as_str()), (4429, "too_many_sessions"));
    // Closing one frees its place.
    open.pop().expect("a shopper").close().await;
    app.wait_for_live_sessions(1).await;
    let mut again = Shopper::connect(&app.ws_url("demo")).await;
    again.hello(json!({})).await;
    assert_eq!(
        metric(&app, "mikabot_errors_total{code=\"too_many_sessions\"}").await,
        1.0
    );

    let app = spawn_app(|s| s.limits.sessions_per_node = 1).await;
    let mut one = Shopper::connect(&app.ws_url("demo")).await;
    one.hello(json!({})).await;
    let mut two = Shopper::connect(&app.ws_url("demo")).await;
    let (frames, close, _) = two.until_closed().await;
    assert_eq!(code(&frames[0]), "node_busy");
    assert!(frames[0]["retry_after_ms"].as_u64().is_some());
    assert_eq!(close, 1013);
    let reply = one.ask("c1", "tent").await;
    assert_eq!(reply.end["type"], "done", "the open session is served");
}

#[actix_web::test]
async fn new_conversations_per_address_are_bounded_and_a_return_is_not_one() {
    let app = spawn_app(|s| s.limits.new_conversations_per_address_per_hour = 1).await;
    let mut first = Shopper::connect(&app.ws_url("demo")).await;
    let ready = first.hello(json!({})).await;
    first.ask("c1", "tent").await;
    first.close().await;

    // A second conversation from the same address this hour is refused
    // before anything is stored.
    let mut second = Shopper::connect(&app.ws_url("demo")).await;
    let other = second.hello(json!({})).await;
    second.message("c1", "lamp").await;
    let refusal = second.next().await.json();
    assert_eq!(code(&refusal), "too_many_conversations");
    assert_eq!(refusal["client_id"], "c1");
    assert!(
        refusal["retry_after_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 60_000)
    );
    use mikabot_actors::log::ConversationLog;
    let session = mikabot_actors::ids::SessionId::parse(other["session_id"].as_str().expect("id"))
        .expect("uuid");
    let store = mikabot_actors::ids::StoreId::parse("demo").expect("valid");
    assert_eq!(
        app.storage().find_session(&store, session).expect("lookup"),
        None,
        "nothing was stored for it"
    );

    // The first conversation, resumed, goes on.
    let mut back = Shopper::connect(&app.ws_url("demo")).await;
    back.hello(json!({"session_id": ready["session_id"]})).await;
    let reply = back.ask("c2", "and a lamp").await;
    assert_eq!(reply.end["type"], "done");
}

#[actix_web::test]
async fn messages_per_address_are_bounded_across_sockets() {
    let app = spawn_app(|s| {
        s.limits.messages_per_address_per_minute = 2;
        s.widget.messages_per_minute = 100;
    })
    .await;
    let mut a = Shopper::connect(&app.ws_url("demo")).await;
    a.hello(json!({})).await;
    let mut b = Shopper::connect(&app.ws_url("demo")).await;
    b.hello(json!({})).await;
    assert_eq!(a.ask("a1", "tent").await.end["type"], "done");
    assert_eq!(b.ask("b1", "lamp").await.end["type"], "done");
    a.message("a2", "stove").await;
    let refusal = a.next().await.json();
    assert_eq!(code(&refusal), "rate_limited");
    assert_eq!(refusal["client_id"], "a2");
    assert!(
        refusal["message"]
            .as_str()
            .is_some_and(|m| m.contains("from one address")),
        "{refusal}"
    );
}

#[actix_web::test]
async fn a_store_past_its_daily_budget_is_answered_offline_with_a_notice() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::reply(&["The ", "Alpine ", "tent."]));
    let app = spawn_app_on(&fake, |s| s.limits.store_daily_tokens = 50).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    // The first reply is the provider's; its usage (the fake counts the
    // prompt at four bytes a token) spends the budget.
    let first = shopper.ask("c1", "a tent").await;
    assert_eq!(first.text(), "The Alpine tent.");
    let asked = fake.requests();
    assert_eq!(asked[0].body["stream_options"]["include_usage"], true);

    let second = shopper.ask("c2", "a tent for two").await;
    assert_eq!(second.end["type"], "done");
    let text = second.text();
    assert!(
        text.starts_with("Our assistant is in basic mode for the rest of the day"),
        "{text}"
    );
    assert_eq!(fake.requests().len(), 1, "the provider was not asked again");
    assert_eq!(
        metric(&app, "mikabot_replies_degraded_total{reason=\"budget\"}").await,
        1.0
    );
}

#[actix_web::test]
async fn a_failing_provider_opens_the_breaker_and_replies_come_offline_until_a_probe_succeeds() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::ServerError);
    let app = spawn_app_on(&fake, |s| {
        s.model.breaker_failures = 2;
        s.model.breaker_cooldown_secs = 1;
        s.model.retry_budget_secs = 0;
    })
    .await;
    let health = || async {
        let body: Value = reqwest::get(format!("http://127.0.0.1:{}/healthz", app.port))
            .await
            .expect("answer")
            .json()
            .await
            .expect("JSON");
        body["model_breaker"].as_str().expect("a state").to_owned()
    };
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    // Two failed requests in a row: the reply, then its retry.
    let reply = shopper.ask("f1", "tent").await;
    assert_eq!(code(&reply.end), "model_unavailable");
    assert_eq!(health().await, "closed", "one failure is not enough");
    shopper.send(json!({"type": "retry"})).await;
    let again = shopper.read_reply(Value::Null).await;
    assert_eq!(code(&again.end), "model_unavailable");
    assert_eq!(health().await, "open");
    let asked = fake.requests().len();
    let offline = shopper.ask("o1", "a lamp").await;
    assert_eq!(offline.end["type"], "done");
    assert!(
        offline
            .text()
            .starts_with("Our assistant is having trouble right now"),
        "{}",
        offline.text()
    );
    assert_eq!(fake.requests().len(), asked, "the provider was left alone");
    assert_eq!(
        metric(&app, "mikabot_model_breaker{state=\"open\"}").await,
        1.0
    );

    // After the cool-down one reply probes; it succeeds and closes it.
    fake.always(Behavior::reply(&["Back ", "again."]));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(health().await, "half_open");
    let probe = shopper.ask("p1", "a stove").await;
    assert_eq!(probe.text(), "Back again.");
    assert_eq!(health().await, "closed");
}

#[actix_web::test]
async fn requests_the_provider_refuses_for_their_content_do_not_open_the_breaker() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::Error {
        status: 400,
        body: json!({"error": {"message": "flagged", "type": "invalid_request_error", "code": "content_filter"}}),
    });
    let app = spawn_app_on(&fake, |s| s.model.breaker_failures = 2).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    for n in 0..4 {
        let reply = shopper
            .ask(&format!("c{n}"), "words the provider refuses")
            .await;
        assert_eq!(code(&reply.end), "model_unavailable");
    }
    let body: Value = reqwest::get(format!("http://127.0.0.1:{}/healthz", app.port))
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(body["model_breaker"], "closed");
    assert_eq!(fake.requests().len(), 4, "every reply asked the provider");
}
