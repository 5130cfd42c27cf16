//! Store knowledge pages end to end: written through the store API and the
//! dashboard, refused with stable codes, answered from by the offline
//! responder in the shopper's language, kept across a restart, and gone
//! with the store.

use serde_json::{Value, json};

use crate::dashboard::{created_store, node_with_mail, signed_up};
use crate::helpers::{Shopper, SmtpSink, TestApp, spawn_app, spawn_app_in};

const TOKEN: &str = "operator-test-token-5e1f0a9b2c8d7e6f";

const RETURNS: &str = "# Returns\n\nYou can send any item back within 30 days of delivery for a full \
    refund. Use the label in your parcel.\n\n# Exchanges\n\nWe exchange sizes for free.";

async fn node() -> TestApp {
    spawn_app(|s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
    })
    .await
}

async fn call(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{}/v1/stores/demo/pages{path}", app.port);
    let client = reqwest::Client::new();
    let request = match method {
        "PUT" => client.put(&url),
        "DELETE" => client.delete(&url),
        _ => client.get(&url),
    };
    let request = request.bearer_auth(TOKEN);
    let request = match body {
        Some(body) => request.body(body.to_string()),
        None => request,
    };
    let response = request.send().await.expect("the node answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn answer(app: &TestApp, question: &str) -> String {
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("q", question).await;
    assert_eq!(reply.end["type"], "done", "{}", reply.end);
    reply.text()
}

#[actix_web::test]
async fn pages_written_through_the_api_answer_shop_questions_in_any_language() {
    let app = node().await;
    // The demo store comes with its own returns page.
    let before = answer(&app, "What is your return policy?").await;
    assert!(before.contains("within 60 days"), "{before}");

    let page = json!({"title": "Returns & exchanges", "body": RETURNS, "url": "https://shop.example/returns"});
    let (status, body) = call(&app, "PUT", "/returns", Some(page)).await;
    assert_eq!(status, 200, "a PUT replaces the demo's page: {body}");
    assert_eq!(body["passages"], 2);

    let text = answer(&app, "What is your return policy?").await;
    assert!(text.contains("within 30 days of delivery"), "{text}");
    assert!(text.contains("https://shop.example/returns"), "{text}");
    // Asked in German of an English page: the lexicon finds it, the
    // responder introduces it in German.
    let text = answer(&app, "Kann ich meine Bestellung zurückschicken?").await;
    assert!(text.starts_with("Von unserer Seite"), "{text}");
    // A product question stays a product answer.
    let text = answer(&app, "a rain jacket").await;
    assert!(text.starts_with("Here is what I found"), "{text}");

    let (status, body) = call(&app, "GET", "", None).await;
    assert_eq!(status, 200);
    let listed: Vec<&Value> = body["pages"].as_array().expect("pages").iter().collect();
    assert!(
        listed
            .iter()
            .any(|p| p["slug"] == "returns" && p["passages"] == 2),
        "{body}"
    );
    assert!(
        body["pages"][0].get("body").is_none(),
        "the list has no bodies"
    );
    let (status, body) = call(&app, "GET", "/returns", None).await;
    assert_eq!((status, body["body"].as_str()), (200, Some(RETURNS)));

    // Kept across a restart.
    let dir = app.stop().await;
    let app = spawn_app_in(dir, |s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
    })
    .await;
    assert!(
        answer(&app, "How do I return an item?")
            .await
            .contains("30 days")
    );

    let (status, _) = call(&app, "DELETE", "/returns", None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&app, "DELETE", "/returns", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    assert!(
        !answer(&app, "What is your return policy?")
            .await
            .contains("30 days")
    );
}

#[actix_web::test]
async fn bad_pages_are_refused_with_stable_codes_and_change_nothing() {
    let app = node().await;
    let good = json!({"title": "FAQ", "body": "Ask us anything."});
    assert_eq!(call(&app, "PUT", "/faq", Some(good)).await.0, 201);
    let big = "x".repeat(mikabot_actors::knowledge::MAX_PAGE_BYTES + 1);
    for (slug, body, status, code, problem) in [
        (
            "faq",
            json!({"title": "", "body": "x"}),
            422,
            "invalid_page",
            "page_title_empty",
        ),
        (
            "faq",
            json!({"title": "FAQ", "body": " \n "}),
            422,
            "invalid_page",
            "page_body_empty",
        ),
        (
            "faq",
            json!({"title": "FAQ", "body": big}),
            422,
            "invalid_page",
            "page_too_large",
        ),
        (
            "faq",
            json!({"title": "FAQ", "body": "x", "url": "ftp://x"}),
            422,
            "invalid_page",
            "page_url_invalid",
        ),
        (
            "Bad%20Slug",
            json!({"title": "FAQ", "body": "x"}),
            422,
            "invalid_page",
            "page_slug_invalid",
        ),
        ("faq", json!({"title": "FAQ"}), 400, "invalid_body", ""),
        (
            "faq",
            json!({"title": "FAQ", "body": "x", "extra": 1}),
            400,
            "invalid_body",
            "",
        ),
    ] {
        let (got, answer) = call(&app, "PUT", &format!("/{slug}"), Some(body)).await;
        assert_eq!(got, status, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        if !problem.is_empty() {
            assert_eq!(answer["error"]["problem"], problem, "{answer}");
        }
    }
    let (_, body) = call(&app, "GET", "/faq", None).await;
    assert_eq!(
        body["body"], "Ask us anything.",
        "the refusals changed nothing"
    );

    // The page limit (the demo store comes with its own pages).
    let (_, listed) = call(&app, "GET", "", None).await;
    let existing = listed["pages"].as_array().map_or(0, Vec::len);
    for n in existing..mikabot_actors::knowledge::MAX_PAGES {
        let page = json!({"title": format!("Page {n}"), "body": "x"});
        assert_eq!(
            call(&app, "PUT", &format!("/p{n}"), Some(page)).await.0,
            201
        );
    }
    let (status, body) = call(
        &app,
        "PUT",
        "/one-more",
        Some(json!({"title": "T", "body": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("too_many_pages"))
    );
    // Without a token, or for an unknown store: refused.
    let url = format!("http://127.0.0.1:{}/v1/stores/demo/pages", app.port);
    let response = reqwest::get(&url).await.expect("answers");
    assert_eq!(response.status().as_u16(), 401);
    let url = format!("http://127.0.0.1:{}/v1/stores/nowhere/pages", app.port);
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 404);
}

#[actix_web::test]
async fn owners_write_pages_in_the_dashboard_and_they_go_with_the_store() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut owner, "Shop", "https://shop.example").await;
    let knowledge = format!("/dashboard/stores/{store}/knowledge");
    let page = owner.get(&knowledge).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("No pages yet."));
    let fields = [
        ("title", "Opening hours"),
        ("slug", ""),
        ("url", ""),
        (
            "body",
            "Our shop is open Monday to Saturday, 9:00 to 18:00.\r\n",
        ),
    ];
    let page = owner.post(&knowledge, &fields).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.text().contains("“Opening hours” saved."));
    let id = mikabot_actors::ids::StoreId::parse(&store).expect("id");
    let stored = app
        .storage()
        .page(&id, "opening-hours")
        .expect("read")
        .expect("kept");
    assert_eq!(
        stored.body,
        "Our shop is open Monday to Saturday, 9:00 to 18:00.\n"
    );

    // A new page at the same address is refused; the old one stays.
    let page = owner.get(&knowledge).await;
    assert_eq!(page.status, 200);
    let again = [
        ("title", "Opening hours"),
        ("slug", ""),
        ("url", ""),
        ("body", "Closed."),
    ];
    let page = owner.post(&knowledge, &again).await;
    assert_eq!(page.status, 422);
    assert!(page.text().contains("exists: edit it"), "{}", page.text());
    // Refused without the CSRF token.
    let page = owner
        .post(
            &knowledge,
            &[("csrf", "wrong"), ("title", "T"), ("body", "x")],
        )
        .await;
    assert_eq!(page.status, 403);
    // Editing replaces it.
    owner.get(&format!("{knowledge}/opening-hours")).await;
    let edited = [
        ("title", "Opening hours"),
        ("slug", "opening-hours"),
        ("editing", "1"),
        ("url", ""),
        ("body", "Open every day, 10:00 to 17:00."),
    ];
    let page = owner.post(&knowledge, &edited).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let stored = app
        .storage()
        .page(&id, "opening-hours")
        .expect("read")
        .expect("kept");
    assert_eq!(stored.body, "Open every day, 10:00 to 17:00.");

    // The store's shoppers are answered from it.
    let mut shopper =
        Shopper::connect_from(&app.ws_url(&store), Some("https://shop.example")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("q", "What are your opening hours?").await;
    assert!(reply.text().contains("10:00 to 17:00"), "{}", reply.text());

    // Deleted with the store.
    let page = owner
        .get(&format!("/dashboard/stores/{store}/settings"))
        .await;
    assert_eq!(page.status, 200);
    let page = owner
        .post(
            &format!("/dashboard/stores/{store}/delete"),
            &[("confirm", &store)],
        )
        .await;
    assert!(page.status < 400, "{}", page.body);
    assert!(app.storage().pages(&id).expect("read").is_empty());
}

#[actix_web::test]
async fn a_model_citing_the_shops_pages_shows_no_reference_and_names_its_source() {
    let fake = crate::helpers::FakeOpenAi::start().await;
    // The reference split over chunks, as a tokenizer would.
    fake.script([crate::helpers::Behavior::reply(&[
        "You can return items within 30 days [S",
        "1].",
    ])]);
    let app = crate::helpers::spawn_app_on(&fake, |s| {
        s.model.api_key = serde_json::from_value(json!("sk-test-key")).expect("secret");
    })
    .await;
    let text = answer(&app, "What is your return policy?").await;
    let system = fake.requests()[0].body["messages"][0]["content"]
        .as_str()
        .expect("a system prompt")
        .to_owned();
    let first = system
        .lines()
        .find_map(|line| line.strip_prefix("- [S1] "))
        .expect("a passage listed as S1");
    let title = first.split(" > ").next().expect("a title");
    assert_eq!(
        text,
        format!(
            "You can return items within 30 days.\n\nSource: \u{201c}{title}\u{201d} (http://localhost:8080/demo/)"
        )
    );
    assert!(!text.contains("[S"), "{text}");
    fake.stop().await;
}
