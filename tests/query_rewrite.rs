//! The model's query rewrite before a reply: asked within its budget, its
//! query searched beside the shopper's words, and a late or failed one
//! leaving the lexicon search alone.

use serde_json::json;

use crate::helpers::{Behavior, FakeOpenAi, Shopper, spawn_app};

/// A message whose words no lexicon maps to a demo product.
const DRY: &str = "iets voor als het giet";

async fn rewriting_app(fake: &FakeOpenAi, budget_ms: u64) -> crate::helpers::TestApp {
    let base_url = fake.base_url.clone();
    spawn_app(move |s| {
        // One failure counted against the provider would open its breaker.
        s.model.breaker_failures = 1;
        s.model.provider = mikabot::config::ProviderChoice::Openai;
        s.model.base_url = base_url;
        s.model.api_key = serde_json::from_value(json!("sk-test-key")).expect("secret");
        s.model.query_rewrite_ms = budget_ms;
    })
    .await
}

/// The product names a reply request's system prompt lists.
fn listed(request: &serde_json::Value) -> Vec<String> {
    request["messages"][0]["content"]
        .as_str()
        .expect("a system prompt")
        .lines()
        .filter_map(|line| line.strip_prefix("- [P"))
        .filter_map(|rest| rest.split_once("] "))
        .map(|(_, rest)| rest.split(" | ").next().unwrap_or("").to_owned())
        .collect()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn the_models_query_finds_what_the_shoppers_words_do_not() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Behavior::reply(&["rain jacket"]),
        Behavior::reply(&["Deze houdt je droog."]),
    ]);
    let app = rewriting_app(&fake, 2_000).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({"language": "nl"})).await;
    let reply = shopper.ask("c1", DRY).await;
    assert_eq!(reply.end["type"], "done", "{}", reply.end);

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one rewrite, one reply");
    let rewrite = &requests[0].body;
    assert_eq!(rewrite["stream"], false, "a rewrite is one short answer");
    assert_eq!(rewrite["temperature"], 0.0);
    assert_eq!(rewrite["max_tokens"], 32);
    let instructions = rewrite["messages"][0]["content"].as_str().expect("system");
    assert!(
        instructions.contains("Write the query in English"),
        "{instructions}"
    );
    assert_eq!(rewrite["messages"][1]["content"], DRY);
    let products = listed(&requests[1].body);
    assert!(
        products.iter().any(|name| name.contains("Rain Jacket")),
        "{products:?}"
    );
    // The reply itself is asked the shopper's words, not the query.
    let reply_messages = requests[1].body["messages"].as_array().expect("messages");
    assert_eq!(reply_messages.last().expect("user")["content"], DRY);

    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "mikabot_query_rewrites_total{outcome=\"rewritten\"}"
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "mikabot_query_rewrite_seconds_count"), 1.0);
    fake.stop().await;
}

#[actix_web::test]
async fn a_late_or_failed_rewrite_leaves_the_lexicon_search_and_the_reply_alone() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        // Never answers: a reply that waited for it would never come.
        Behavior::Stall {
            tokens: vec!["rain jacket".into()],
        },
        Behavior::reply(&["Waar zoek je naar?"]),
        Behavior::ServerError,
        Behavior::reply(&["Een rugzak misschien?"]),
    ]);
    let app = rewriting_app(&fake, 300).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({"language": "nl"})).await;

    let late = shopper.ask("c1", DRY).await;
    assert_eq!(late.end["type"], "done", "{}", late.end);
    assert_eq!(late.text(), "Waar zoek je naar?");
    let requests = fake.requests();
    let products = listed(&requests[1].body);
    assert!(
        !products.iter().any(|name| name.contains("Rain Jacket")),
        "without the rewrite the lexicon search alone answers: {products:?}"
    );

    let failed = shopper.ask("c2", "een rugzak voor de bergen").await;
    assert_eq!(failed.end["type"], "done", "{}", failed.end);
    assert_eq!(failed.text(), "Een rugzak misschien?");
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    assert!(
        listed(&requests[3].body)
            .iter()
            .any(|name| name.to_lowercase().contains("pack")),
        "the shopper's own words still find backpacks"
    );

    let metrics = app.metrics().await;
    let count = |outcome: &str| {
        metric(
            &metrics,
            &format!("mikabot_query_rewrites_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(count("late"), 1.0, "{metrics}");
    assert_eq!(count("failed"), 1.0);
    assert!(
        metrics.contains("mikabot_model_breaker{state=\"closed\"} 1"),
        "a failed rewrite does not count against the provider"
    );
    fake.stop().await;
}
