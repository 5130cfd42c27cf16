//! Golden conversations: the demo store's list replayed through the store
//! API and `mikabot golden` against the offline responder (the project's own
//! check of the demo store), what changed after a new feed, and refusals.

use serde_json::{Value, json};

use crate::dashboard::{created_store, node_with_mail, signed_up};
use crate::helpers::{Behavior, FakeOpenAi, Shopper, SmtpSink, TestApp, spawn_app, spawn_app_on};

const TOKEN: &str = "operator-test-token-5e1f0a9b2c8d7e6f";

async fn node() -> TestApp {
    spawn_app(|s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
    })
    .await
}

async fn call(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{}/v1/stores/demo/{path}", app.port);
    let client = reqwest::Client::new();
    let request = match method {
        "PUT" => client.put(&url),
        "POST" => client.post(&url),
        _ => client.get(&url),
    }
    .bearer_auth(TOKEN);
    let request = match body {
        Some(body) => request.body(body.to_string()),
        None => request,
    };
    let response = request.send().await.expect("the node answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn failures(run: &Value) -> Vec<String> {
    run["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["passed"] != true)
        .map(|r| format!("{}: {} {}", r["question"], r["checks"], r["text"]))
        .collect()
}

#[actix_web::test]
async fn the_demo_stores_golden_conversations_pass_and_a_new_feed_shows_what_changed() {
    let app = node().await;
    let (status, listed) = call(&app, "GET", "golden", None).await;
    assert_eq!(status, 200);
    let count = listed["goldens"].as_array().map_or(0, Vec::len);
    assert!(count >= 5, "{listed}");
    assert!(listed["last_run"].is_null());

    let (status, run) = call(&app, "POST", "golden/run", None).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["model"], "offline");
    assert_eq!(run["passed"], count, "{:#?}", failures(&run));
    assert!(
        run["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r["changes"] == json!([]))
    );

    // A feed without the cheap rain jacket: its question now fails, and
    // the run says what changed.
    let feed = "id,title,price,currency,link,image_link\n\
        rain-jacket-01,Nordwind Rain Jacket Navy,108.50,EUR,https://shop.example/1,https://shop.example/1.jpg\n\
        tent-01,Alpine Tent,199.00,EUR,https://shop.example/2,https://shop.example/2.jpg\n";
    let url = format!("http://127.0.0.1:{}/v1/stores/demo/catalog", app.port);
    let imported = reqwest::Client::new()
        .put(&url)
        .bearer_auth(TOKEN)
        .body(feed)
        .send()
        .await
        .expect("answers");
    assert_eq!(imported.status().as_u16(), 200);
    let (_, run) = call(&app, "POST", "golden/run", None).await;
    let first = &run["results"][0];
    assert_eq!(first["passed"], false, "{first}");
    let changes: Vec<&str> = first["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(changes.contains(&"now fails"), "{changes:?}");
    assert!(
        changes
            .iter()
            .any(|c| c.starts_with("cards gone: rain-jacket-04")),
        "{changes:?}"
    );
    // The run is kept.
    let (_, listed) = call(&app, "GET", "golden", None).await;
    assert_eq!(listed["last_run"]["outcomes"][0]["passed"], Value::Null);
    assert_eq!(listed["last_run"]["outcomes"][0]["cards"], first["cards"]);
}

#[actix_web::test]
async fn golden_lists_are_checked_and_the_command_replays_them() {
    let app = node().await;
    for (body, status, code) in [
        (
            json!({"goldens": [{"question": " "}]}),
            422,
            "invalid_goldens",
        ),
        (
            json!({"goldens": [{"question": "q", "expect": {"min_price": 5, "max_price": 1}}]}),
            422,
            "invalid_goldens",
        ),
        (
            json!({"goldens": [{"question": "q", "expect": {"prodcts": []}}]}),
            400,
            "invalid_body",
        ),
        (json!({"questions": []}), 400, "invalid_body"),
    ] {
        let (got, answer) = call(&app, "PUT", "golden", Some(body)).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
    }
    let list = json!({"goldens": [
        {"question": "a rain jacket", "expect": {"products": ["rain-jacket-01"], "language": "en"}},
        {"question": "a hiking tent", "expect": {"products": ["no-such-product"]}}
    ]});
    let (status, _) = call(&app, "PUT", "golden", Some(list)).await;
    assert_eq!(status, 200);

    let url = format!("http://127.0.0.1:{}", app.port);
    let dir = tempfile::tempdir().expect("temp dir");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_mikabot"))
        .args(["golden", "--store", "demo", "--url", &url])
        .env("MIKABOT__STORAGE__DATA_DIR", dir.path().join("unused"))
        .env("MIKABOT__LOG__FILTER", "warn")
        .env("MIKABOT__OPERATOR__API_TOKEN", TOKEN)
        .env_remove("MIKABOT_TOKEN")
        .output()
        .await
        .expect("run the CLI");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "one question fails: {stdout}");
    assert!(stdout.contains("pass  a rain jacket"), "{stdout}");
    assert!(stdout.contains("FAIL  a hiking tent"), "{stdout}");
    assert!(
        stdout.contains("product: no-such-product not shown"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 passed, 1 failed (model: offline)"),
        "{stdout}"
    );
}

#[actix_web::test]
async fn owners_keep_and_replay_golden_questions_in_the_dashboard() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut owner, "Shop", "https://shop.example").await;
    let golden = format!("/dashboard/stores/{store}/golden");
    let page = owner.get(&golden).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Not replayed yet."));
    // A refused list is shown again with the reason, and nothing is kept.
    let page = owner
        .post(&golden, &[("list", "[{\"question\": \"\"}]")])
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.text().contains("question 1: the question is empty"),
        "{}",
        page.text()
    );
    let list = r#"[{"question": "Can I talk to a person?", "expect": {"handover": true}},
                   {"question": "a tent", "expect": {"products": ["tent-1"]}}]"#;
    let page = owner.post(&golden, &[("list", list)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.text().contains("2 questions saved."));
    let page = owner.post(&format!("{golden}/run"), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let text = page.text();
    assert!(text.contains("Replayed: 1 passed, 1 failed."), "{text}");
    assert!(text.contains("tent-1 not shown"), "{text}");
    // Without the CSRF token nothing runs.
    let page = owner
        .post(&format!("{golden}/run"), &[("csrf", "wrong")])
        .await;
    assert_eq!(page.status, 403);

    // One question added from the form, its price in the store's currency.
    let add = format!("{golden}/add");
    let page = owner
        .post(
            &add,
            &[
                ("question", "Een warme jas onder 150 euro"),
                ("language", "nl"),
                ("products", "parka-1, parka-2"),
                ("max_price", "149,95"),
                ("mentions", "warm"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let text = page.text();
    assert!(text.contains("Question added; 3 in all."), "{text}");
    assert!(
        text.contains(
            "shows parka-1, parka-2; answers in Dutch; cards up to 149.95; mentions warm"
        ),
        "{text}"
    );
    // Bad fields are refused where they are, the form kept, nothing added.
    let page = owner
        .post(&add, &[("question", "a coat"), ("max_price", "cheap")])
        .await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"e-max_price\""), "{}", page.body);
    assert!(page.body.contains("value=\"a coat\""));
    let page = owner.post(&add, &[("question", "  ")]).await;
    assert_eq!(page.status, 422);
    assert!(
        page.text().contains("the question is empty"),
        "{}",
        page.text()
    );
    let page = owner
        .post(
            &add,
            &[
                ("question", "a coat"),
                ("min_price", "90"),
                ("max_price", "10"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.text().contains("min_price is above max_price"));
    assert!(
        owner
            .get(&golden)
            .await
            .text()
            .contains("3 questions, replayed")
    );

    // Removing checks the question is still the one the page showed.
    let page = owner
        .post(&format!("{golden}/3/delete"), &[("question", "a tent")])
        .await;
    assert_eq!(page.status, 404, "a list changed meanwhile is not cut");
    let page = owner
        .post(
            &format!("{golden}/3/delete"),
            &[("question", "Een warme jas onder 150 euro")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.text().contains("Question removed."));
    assert!(page.text().contains("2 questions, replayed"));
    let page = owner
        .post(
            &format!("{golden}/1/delete"),
            &[("csrf", "wrong"), ("question", "Can I talk to a person?")],
        )
        .await;
    assert_eq!(page.status, 403);
}

#[actix_web::test]
async fn a_replay_asks_the_stores_model_and_is_charged_to_its_budget() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::reply(&["The ", "Alpine ", "tent."]));
    let app = spawn_app_on(&fake, |s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
        s.limits.store_daily_tokens = 50;
    })
    .await;
    let list =
        json!({"goldens": [{"question": "a tent", "expect": {"mentions": ["Alpine tent"]}}]});
    assert_eq!(call(&app, "PUT", "golden", Some(list)).await.0, 200);
    let (status, run) = call(&app, "POST", "golden/run", None).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["passed"], 1, "{run}");
    assert_eq!(run["results"][0]["text"], "The Alpine tent.");
    assert_eq!(fake.requests().len(), 1, "the provider answered the replay");
    // The replay spent the day's budget: a shopper now gets basic mode.
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "a tent").await;
    assert!(
        reply.text().starts_with("Our assistant is in basic mode"),
        "{}",
        reply.text()
    );
    assert_eq!(fake.requests().len(), 1);
}

#[actix_web::test]
async fn a_replay_that_takes_the_breakers_probe_settles_it_and_says_no_provider_detail() {
    let fake = FakeOpenAi::start().await;
    let app = spawn_app_on(&fake, |s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
        s.model.breaker_failures = 1;
        s.model.breaker_cooldown_secs = 0;
        s.model.retry_budget_secs = 0;
    })
    .await;
    let list = json!({"goldens": [{"question": "a tent", "expect": {}}]});
    assert_eq!(call(&app, "PUT", "golden", Some(list)).await.0, 200);

    // A shopper's failed reply opens the breaker; it cools down at once.
    fake.script([Behavior::ServerError]);
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let failed = shopper.ask("c1", "a tent").await;
    assert_eq!(failed.end["type"], "error", "{}", failed.end);

    // The replay is the half-open breaker's probe; its failure reopens it
    // and the owner is told the kind of failure only.
    fake.script([Behavior::ServerError]);
    let (status, run) = call(&app, "POST", "golden/run", None).await;
    assert_eq!(status, 200, "{run}");
    let error = run["results"][0]["error"].as_str().expect("an error");
    assert_eq!(error, "the model provider is unavailable (HTTP 500)");
    assert!(!error.contains("127.0.0.1"), "{error}");

    // The next replay probes again and succeeds: the breaker closes, and a
    // shopper is answered by the provider, not the offline responder.
    fake.script([Behavior::reply(&["The ", "Alpine ", "tent."])]);
    let (_, run) = call(&app, "POST", "golden/run", None).await;
    assert_eq!(run["results"][0]["text"], "The Alpine tent.", "{run}");
    fake.script([Behavior::reply(&["Here you are."])]);
    let reply = shopper.ask("c2", "a tent").await;
    assert_eq!(reply.text(), "Here you are.");
    assert!(
        app.metrics()
            .await
            .contains("mikabot_model_breaker{state=\"closed\"} 1")
    );
}

#[actix_web::test]
async fn a_run_whose_client_gives_up_still_ends_and_is_kept() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::Stream {
        tokens: vec!["The ".into(), "Alpine ".into(), "tent.".into()],
        delay: std::time::Duration::from_millis(300),
    });
    let app = spawn_app_on(&fake, |s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
    })
    .await;
    let list = json!({"goldens": [{"question": "a tent", "expect": {}}]});
    assert_eq!(call(&app, "PUT", "golden", Some(list)).await.0, 200);
    let url = format!("http://127.0.0.1:{}/v1/stores/demo/golden/run", app.port);
    // A proxy that waits 200 ms for an answer that takes about a second.
    let gave_up = reqwest::Client::new()
        .post(&url)
        .bearer_auth(TOKEN)
        .timeout(std::time::Duration::from_millis(200))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client gave up first");
    let mut kept = Value::Null;
    for _ in 0..100 {
        let (_, listed) = call(&app, "GET", "golden", None).await;
        if !listed["last_run"].is_null() {
            kept = listed["last_run"].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(kept["outcomes"][0]["text"], "The Alpine tent.", "{kept}");
    fake.stop().await;
}
