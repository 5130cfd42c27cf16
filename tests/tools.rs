//! The `show_products` tool against the test provider's tool-call wire
//! format: a call becomes cards and the answer after it streams from a
//! second request; a provider that refuses tools is detected under `auto`.

use serde_json::{Value, json};

use crate::helpers::{Behavior, FakeOpenAi, Shopper, spawn_app};

async fn app_with(fake: &FakeOpenAi, tools: &str) -> crate::helpers::TestApp {
    let base_url = fake.base_url.clone();
    let tools: mikabot::config::ToolUse =
        serde_json::from_value(json!(tools)).expect("a tool setting");
    spawn_app(move |s| {
        s.model.provider = mikabot::config::ProviderChoice::Openai;
        s.model.base_url = base_url;
        s.model.api_key = serde_json::from_value(json!("sk-test-key")).expect("secret");
        s.model.show_products_tool = tools;
    })
    .await
}

/// The name listed under reference `n` in a request's system prompt.
fn listed(request: &Value, n: usize) -> String {
    let system = request["messages"][0]["content"].as_str().expect("system");
    let prefix = format!("- [P{n}] ");
    system
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(" | ").next())
        .expect("a listed product")
        .to_owned()
}

fn call(arguments: &[&str]) -> Behavior {
    Behavior::ToolCall {
        before: Vec::new(),
        name: "show_products".into(),
        arguments: arguments.iter().map(|a| (*a).to_owned()).collect(),
    }
}

#[actix_web::test]
async fn a_tool_call_shows_its_products_and_the_answer_after_it_streams() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        // The arguments split mid-word, as providers stream them.
        call(&["{\"prod", "ucts\": [\"P2\", ", "\"P1\"]}"]),
        Behavior::reply(&["These two ", "keep you dry."]),
    ]);
    let app = app_with(&fake, "on").await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "a rain jacket").await;
    assert_eq!(reply.end["type"], "done", "{}", reply.end);
    assert_eq!(reply.text(), "These two keep you dry.");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "the call, then the answer after it");
    let first = &requests[0].body;
    assert_eq!(first["tools"][0]["type"], "function");
    assert_eq!(first["tools"][0]["function"]["name"], "show_products");
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .is_some_and(|s| s.contains("show_products tool"))
    );
    let cards: Vec<String> = reply.products.expect("cards")["cards"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        cards,
        [listed(first, 2), listed(first, 1)],
        "in the call's order"
    );

    let second = &requests[1].body;
    let messages = second["messages"].as_array().expect("messages");
    let n = messages.len();
    assert_eq!(messages[n - 2]["role"], "assistant");
    let asked = &messages[n - 2]["tool_calls"][0];
    assert_eq!(asked["id"], "call_test");
    assert_eq!(asked["type"], "function");
    assert_eq!(
        asked["function"]["arguments"],
        "{\"products\": [\"P2\", \"P1\"]}"
    );
    assert_eq!(messages[n - 1]["role"], "tool");
    assert_eq!(messages[n - 1]["tool_call_id"], "call_test");
    assert_eq!(
        messages[n - 1]["content"],
        "Shown to the shopper as cards: P2, P1."
    );
    assert_eq!(second["tool_choice"], "none", "no second call");
    fake.stop().await;
}

#[actix_web::test]
async fn a_call_for_a_product_not_retrieved_shows_nothing_and_references_still_work() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        call(&["{\"products\": [\"P99\"]}"]),
        Behavior::reply(&["Sorry, no match."]),
        // A model that cites in its text instead, with the tool offered.
        Behavior::reply(&["Try this one [P1]."]),
    ]);
    let app = app_with(&fake, "on").await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let unknown = shopper.ask("c1", "a rain jacket").await;
    assert_eq!(unknown.text(), "Sorry, no match.");
    let none = unknown
        .products
        .as_ref()
        .and_then(|p| p["cards"].as_array())
        .map_or(0, Vec::len);
    assert_eq!(none, 0, "P99 was never retrieved");
    let told = fake.requests()[1].body["messages"]
        .as_array()
        .and_then(|m| m.last().cloned())
        .expect("the tool's answer");
    assert_eq!(
        told["content"], "No product of the list was named; nothing was shown.",
        "the model is not told a card it never got was shown"
    );

    let cited = shopper.ask("c2", "a rain jacket").await;
    assert_eq!(cited.text(), "Try this one.");
    let requests = fake.requests();
    let cards = cited.products.expect("a card");
    assert_eq!(cards["cards"][0]["name"], listed(&requests[2].body, 1));
    fake.stop().await;
}

#[actix_web::test]
async fn under_auto_a_provider_refusing_tools_is_asked_again_without_them_and_not_offered_again() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        // llama-server started without --jinja.
        Behavior::Error {
            status: 500,
            body: json!({"error": {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"}}),
        },
        Behavior::reply(&["Hello."]),
        Behavior::reply(&["Hello again."]),
    ]);
    let app = app_with(&fake, "auto").await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let first = shopper.ask("c1", "a tent").await;
    assert_eq!(first.text(), "Hello.");
    let second = shopper.ask("c2", "a tent").await;
    assert_eq!(second.text(), "Hello again.");
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[0].body.get("tools").is_some());
    assert!(
        requests[1].body.get("tools").is_none(),
        "asked again without"
    );
    assert!(
        requests[2].body.get("tools").is_none(),
        "and not offered again"
    );
    assert!(
        app.metrics()
            .await
            .contains("mikabot_model_breaker{state=\"closed\"} 1")
    );
    fake.stop().await;
}

#[actix_web::test]
async fn by_default_no_tool_is_offered() {
    let fake = FakeOpenAi::start().await;
    let app = app_with(&fake, "off").await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    shopper.ask("c1", "a tent").await;
    let request = &fake.requests()[0].body;
    assert!(request.get("tools").is_none(), "{request}");
    assert!(
        !request["messages"][0]["content"]
            .as_str()
            .unwrap_or("")
            .contains("show_products")
    );
    let defaults = mikabot::config::Settings::load_with_env(None, Vec::new()).expect("defaults");
    assert_eq!(
        defaults.model.show_products_tool,
        mikabot::config::ToolUse::Off
    );
    fake.stop().await;
}

#[actix_web::test]
async fn both_requests_of_a_tool_reply_are_charged_to_the_stores_budget() {
    // The test provider counts a prompt's tokens as its body's length / 4.
    let tokens = |body: &Value| body.to_string().len() as u64 / 4;
    let script = || {
        [
            call(&["{\"products\": [\"P1\"]}"]),
            Behavior::reply(&["Here."]),
            Behavior::reply(&["Again."]),
        ]
    };
    let fake = FakeOpenAi::start().await;
    fake.script(script());
    let app = app_with(&fake, "on").await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    shopper.ask("c1", "a rain jacket").await;
    let requests = fake.requests();
    // The call's answer reports 8 completion tokens, the reply 1.
    let first = tokens(&requests[0].body) + 8;
    let second = tokens(&requests[1].body) + 1;
    fake.stop().await;

    // A budget the second request alone stays under, both together reach.
    let fake = FakeOpenAi::start().await;
    fake.script(script());
    let budget = second + first / 2;
    let base_url = fake.base_url.clone();
    let app = spawn_app(move |s| {
        s.model.provider = mikabot::config::ProviderChoice::Openai;
        s.model.base_url = base_url;
        s.model.api_key = serde_json::from_value(json!("sk-test-key")).expect("secret");
        s.model.show_products_tool = mikabot::config::ToolUse::On;
        s.limits.store_daily_tokens = budget;
    })
    .await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "a rain jacket").await;
    assert_eq!(reply.text(), "Here.");
    let next = shopper.ask("c2", "a rain jacket").await;
    assert!(
        next.text().starts_with("Our assistant is in basic mode"),
        "{}",
        next.text()
    );
    assert_eq!(fake.requests().len(), 2, "the budget was spent");
    fake.stop().await;
}
