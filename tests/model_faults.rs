//! Model faults through the real async-openai path: retries before the
//! first token only, Retry-After honoured, and partial replies kept.

use std::time::{Duration, Instant};

use mikabot_actors::prompt::Role;
use serde_json::json;

use crate::helpers::{Behavior, FakeOpenAi, Shopper, spawn_app_on};

#[actix_web::test]
async fn a_rate_limited_model_is_retried_after_its_retry_after() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Behavior::RateLimited {
            retry_after_secs: 1,
        },
        Behavior::reply(&["Sorry ", "for the wait."]),
    ]);
    let app = spawn_app_on(&fake, |_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let started = Instant::now();
    let reply = shopper.ask("c1", "tent").await;
    assert_eq!(reply.end["type"], "done", "{}", reply.end);
    assert_eq!(reply.text(), "Sorry for the wait.");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(fake.requests().len(), 2);
}

#[actix_web::test]
async fn server_errors_are_retried_then_reported_when_the_budget_runs_out() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::ServerError);
    let app = spawn_app_on(&fake, |s| s.model.retry_budget_secs = 1).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "tent").await;
    assert!(reply.tokens.is_empty());
    assert_eq!(reply.end["type"], "error");
    assert_eq!(reply.end["code"], "model_unavailable");
    assert!(reply.end["reply_id"].is_string());
    assert!(
        fake.requests().len() >= 3,
        "retried: {}",
        fake.requests().len()
    );
    // The session stays usable.
    fake.script([Behavior::reply(&["Back ", "again."])]);
    let retry = shopper.ask("c2", "tent").await;
    assert_eq!(retry.end["type"], "done");

    // The metrics tell the operator what happened, status by status.
    let attempts = fake.requests().len() as f64;
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", app.port))
        .await
        .expect("answer")
        .text()
        .await
        .expect("text");
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
            .parse()
            .expect("a number")
    };
    let failed = value(
        "mikabot_model_requests_total{provider=\"openai\",outcome=\"unavailable\",status=\"500\"}",
    );
    assert_eq!(failed + 1.0, attempts, "every attempt is counted");
    assert_eq!(
        value("mikabot_model_requests_total{provider=\"openai\",outcome=\"ok\",status=\"200\"}"),
        1.0
    );
    assert_eq!(value("mikabot_model_retries_total"), failed - 1.0);
    assert_eq!(value("mikabot_replies_total{finish=\"failed\"}"), 1.0);
    assert_eq!(
        value("mikabot_errors_total{code=\"model_unavailable\"}"),
        1.0
    );
}

#[actix_web::test]
async fn a_refused_request_is_not_retried() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::Unauthorized);
    let app = spawn_app_on(&fake, |_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "tent").await;
    assert_eq!(reply.end["code"], "model_unavailable");
    assert_eq!(fake.requests().len(), 1);
}

#[actix_web::test]
async fn a_stream_cut_after_tokens_ends_the_reply_and_keeps_the_partial_text() {
    let fake = FakeOpenAi::start().await;
    fake.script([Behavior::CutAfter {
        tokens: vec!["Half ".into(), "a reply".into()],
    }]);
    let app = spawn_app_on(&fake, |_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "tent").await;
    assert_eq!(reply.text(), "Half a reply");
    assert_eq!(reply.end["type"], "error");
    assert_eq!(reply.end["code"], "model_failed");
    assert_eq!(reply.end["reply_id"], reply.tokens[0]["reply_id"]);
    assert_eq!(
        fake.requests().len(),
        1,
        "no retry once tokens reached the shopper"
    );

    let history = app.stored_history(&ready);
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].role, Role::Assistant);
    assert_eq!(history[1].text, "Half a reply");
    let outcome = history[1].reply.as_ref().expect("reply outcome");
    assert!(outcome.incomplete);
    assert_eq!(outcome.finish, None);
}

#[actix_web::test]
async fn a_stalled_stream_times_out_into_an_error() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::Stall {
        tokens: vec!["Thinking".into()],
    });
    let app = spawn_app_on(&fake, |s| s.model.timeout_secs = 1).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "tent").await;
    assert_eq!(reply.text(), "Thinking");
    assert_eq!(reply.end["code"], "model_failed");
}

#[actix_web::test]
async fn a_slow_stream_arrives_whole_and_in_order() {
    let fake = FakeOpenAi::start().await;
    let tokens: Vec<String> = (0..20).map(|i| format!(" t{i}")).collect();
    fake.script([Behavior::Stream {
        tokens: tokens.clone(),
        delay: Duration::from_millis(20),
    }]);
    let app = spawn_app_on(&fake, |_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "tent").await;
    assert_eq!(reply.text(), tokens.concat());
    assert_eq!(reply.tokens.len(), 20);
    assert_eq!(reply.end["type"], "done");
}

#[actix_web::test]
async fn a_huge_retry_after_ends_the_reply_at_once_and_frees_the_session() {
    let fake = FakeOpenAi::start().await;
    fake.script([Behavior::RateLimited {
        retry_after_secs: u64::MAX,
    }]);
    fake.always(Behavior::reply(&["Fine ", "now."]));
    let app = spawn_app_on(&fake, |_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let started = Instant::now();
    let reply = shopper.ask("c1", "tent").await;
    assert_eq!(reply.end["code"], "model_unavailable", "{}", reply.end);
    // The wait asked for is beyond the retry budget: no retry, no panic.
    assert_eq!(fake.requests().len(), 1);
    let retry_after = reply.end["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms");
    assert_eq!(retry_after, 3_600_000, "clamped to an hour");
    assert!(started.elapsed() < Duration::from_secs(10));
    let next = shopper.ask("c2", "tent").await;
    assert_eq!(next.text(), "Fine now.");
}
