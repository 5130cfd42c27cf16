//! The shopper's path: hello, message, streamed reply, cards, done.

use std::collections::HashSet;

use serde_json::json;

use crate::helpers::{Behavior, FakeOpenAi, Shopper, spawn_app};

#[actix_web::test]
async fn a_shopper_gets_a_streamed_reply_with_cards_from_the_catalog() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    assert_eq!(ready["v"], 1);
    assert_eq!(ready["resumed"], false);
    assert_eq!(ready["language"], "en");
    assert!(ready["session_id"].as_str().is_some_and(|s| s.len() == 36));

    let reply = shopper.ask("c1", "I need a waterproof rain jacket").await;
    assert!(reply.ack["message_id"].as_str().is_some());
    assert!(reply.tokens.len() > 5, "the reply streams in many tokens");
    let reply_id = reply.end["reply_id"].clone();
    for (seq, token) in reply.tokens.iter().enumerate() {
        assert_eq!(token["seq"], seq as u64, "sequence numbers count up from 0");
        assert_eq!(token["reply_id"], reply_id);
    }
    assert_eq!(reply.end["type"], "done");
    assert_eq!(reply.end["finish_reason"], "stop");
    let text = reply.text();
    assert!(text.starts_with("Here is what I found"), "{text}");

    let products = reply.products.expect("cards for the recommended products");
    assert_eq!(products["reply_id"], reply_id);
    let cards = products["cards"].as_array().expect("cards");
    assert!(!cards.is_empty());
    for card in cards {
        let name = card["name"].as_str().expect("name");
        assert!(
            text.contains(name),
            "a card is only sent for a product the reply names"
        );
        assert!(name.contains("Rain Jacket"), "{name}");
        assert_eq!(card["currency"], "EUR");
        assert!(card["price"].as_str().expect("price").contains('.'));
        assert!(
            card["image"]
                .as_str()
                .expect("image")
                .starts_with("http://localhost:8080/demo/images/")
        );
        assert!(
            card["url"]
                .as_str()
                .expect("url")
                .starts_with("http://localhost:8080/demo/products/")
        );
    }
    shopper.close().await;
}

#[actix_web::test]
async fn replies_come_in_the_language_the_shopper_writes() {
    let app = spawn_app(|_| {}).await;
    let cases = [
        (
            "Ik zoek een warme winterjas voor de stad",
            "Dit heb ik voor je gevonden:",
        ),
        (
            "Je cherche une crème hydratante pour le visage",
            "Voici ce que j'ai trouvé pour vous",
        ),
        (
            "Ich suche Kopfhörer mit Geräuschunterdrückung",
            "Das habe ich für Sie gefunden:",
        ),
        (
            "Do you sell a tent for two people?",
            "Here is what I found for you:",
        ),
    ];
    for (i, (question, opening)) in cases.into_iter().enumerate() {
        let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
        shopper.hello(json!({"language": "en-US"})).await;
        let reply = shopper.ask(&format!("c{i}"), question).await;
        let text = reply.text();
        assert!(text.starts_with(opening), "{question:?} got {text:?}");
        assert!(reply.products.is_some(), "{question:?} found products");
        shopper.close().await;
    }
}

#[actix_web::test]
async fn the_browser_language_sets_the_greeting_language() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({"language": "nl-BE"})).await;
    assert_eq!(ready["language"], "nl");
    // Too short to detect: the browser's language answers.
    let reply = shopper.ask("c1", "tent").await;
    assert!(reply.text().starts_with("Dit heb ik"), "{}", reply.text());
}

#[actix_web::test]
async fn a_message_during_a_reply_is_acknowledged_and_answered_after_it() {
    let app = spawn_app(|s| s.offline.token_delay_ms = 5).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    shopper.message("c1", "yoga mat").await;
    shopper.message("c2", "sleeping bag").await;
    let mut acks = HashSet::new();
    let mut ends = Vec::new();
    while ends.len() < 2 {
        let frame = shopper.next().await.json();
        match frame["type"].as_str() {
            Some("ack") => {
                acks.insert(frame["client_id"].as_str().expect("id").to_owned());
            }
            Some("done") => ends.push(frame["reply_id"].clone()),
            Some("token" | "products") => {}
            _ => panic!("unexpected {frame}"),
        }
    }
    assert_eq!(acks, HashSet::from(["c1".to_owned(), "c2".to_owned()]));
    assert_ne!(ends[0], ends[1], "two distinct replies");
}

#[actix_web::test]
async fn a_resent_message_is_acknowledged_again_and_stored_once() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    let first = shopper.ask("same", "hiking boots").await;
    shopper.message("same", "hiking boots").await;
    let again = shopper.next().await.json();
    assert_eq!(again["type"], "ack");
    assert_eq!(again["message_id"], first.ack["message_id"]);
    assert_eq!(
        app.stored_history(&ready).len(),
        2,
        "one shopper message and one reply"
    );
}

#[actix_web::test]
async fn the_openai_path_streams_through_a_compatible_server() {
    let fake = FakeOpenAi::start().await;
    fake.script([Behavior::reply(&[
        "The ",
        "Nordwind Rain Jacket Navy",
        " keeps you dry.",
    ])]);
    let base_url = fake.base_url.clone();
    let app = spawn_app(|s| {
        s.model.provider = mikabot::config::ProviderChoice::Openai;
        s.model.base_url = base_url;
        s.model.api_key = serde_json::from_value(json!("sk-test-key")).expect("secret");
        s.model.model = "fake-model".into();
        s.model.max_tokens = 321;
        s.model.temperature = 0.5;
    })
    .await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "a rain jacket please").await;
    assert_eq!(reply.text(), "The Nordwind Rain Jacket Navy keeps you dry.");
    assert_eq!(reply.end["type"], "done");
    let cards = reply.products.expect("the named product becomes a card");
    assert_eq!(cards["cards"][0]["name"], "Nordwind Rain Jacket Navy");
    assert_eq!(cards["cards"].as_array().map(Vec::len), Some(1));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.authorization.as_deref(), Some("Bearer sk-test-key"));
    assert_eq!(request.body["model"], "fake-model");
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["max_tokens"], 321);
    assert_eq!(request.body["temperature"], 0.5);
    let messages = request.body["messages"].as_array().expect("messages");
    let system = messages[0]["content"].as_str().expect("system prompt");
    assert_eq!(messages[0]["role"], "system");
    assert!(
        system.contains("Shipping is free above 50 euro"),
        "owner instructions"
    );
    assert!(
        system.contains("Nordwind Rain Jacket Navy"),
        "retrieved products"
    );
    assert!(system.contains("Always answer in English"));
    assert_eq!(
        messages.last().expect("user")["content"],
        "a rain jacket please"
    );

    // A second turn carries the first one as history.
    let second = shopper.ask("c2", "in black?").await;
    assert_eq!(second.end["type"], "done");
    let requests = fake.requests();
    let messages = requests[1].body["messages"]
        .as_array()
        .expect("messages")
        .clone();
    let roles: Vec<_> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(
        messages[2]["content"],
        "The Nordwind Rain Jacket Navy keeps you dry."
    );
    fake.stop().await;
}

/// The names the system prompt lists under their references, in order.
fn listed_products(fake: &FakeOpenAi) -> Vec<String> {
    let requests = fake.requests();
    let system = requests.last().expect("a request").body["messages"][0]["content"]
        .as_str()
        .expect("a system prompt")
        .to_owned();
    system
        .lines()
        .filter_map(|line| line.strip_prefix("- [P"))
        .map(|rest| {
            let name = rest.split_once("] ").expect("a reference").1;
            name.split(" | ").next().expect("a name").to_owned()
        })
        .collect()
}

async fn openai_app(fake: &FakeOpenAi) -> crate::helpers::TestApp {
    let base_url = fake.base_url.clone();
    spawn_app(|s| {
        s.model.provider = mikabot::config::ProviderChoice::Openai;
        s.model.base_url = base_url;
        s.model.api_key = serde_json::from_value(json!("sk-test-key")).expect("secret");
    })
    .await
}

#[actix_web::test]
async fn cited_products_become_cards_and_no_reference_reaches_the_shopper() {
    let fake = FakeOpenAi::start().await;
    // References split across chunks, a list, and one to a product that was
    // not retrieved.
    fake.script([Behavior::reply(&[
        "Take the navy one [",
        "P",
        "1] or these [P2, ",
        "P3",
        "]; not [P99]. Sizes [S, M] too.",
    ])]);
    let app = openai_app(&fake).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "a rain jacket please").await;
    assert_eq!(reply.end["type"], "done", "{}", reply.end);
    let shown = "Take the navy one or these; not. Sizes [S, M] too.";
    assert_eq!(reply.text(), shown);
    for token in &reply.tokens {
        let text = token["text"].as_str().expect("text");
        assert!(!text.contains("[P") && !text.ends_with('['), "{token}");
    }
    let listed = listed_products(&fake);
    assert!(listed.len() >= 3, "{listed:?}");
    let cards = reply.products.expect("cards");
    let names: Vec<&str> = cards["cards"]
        .as_array()
        .expect("cards")
        .iter()
        .map(|c| c["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        names,
        [&listed[0], &listed[1], &listed[2]],
        "cited, in order"
    );
    // The stored reply is what the shopper saw, with the cited cards.
    let stored = app.stored_history(&ready);
    let last = stored.last().expect("the reply");
    assert_eq!(last.text, shown);
    let stored_cards = last.reply.as_ref().map(|r| r.cards.len());
    assert_eq!(stored_cards, Some(3));
}

#[actix_web::test]
async fn a_model_that_paraphrases_a_name_and_cites_nothing_still_gets_its_card() {
    let fake = FakeOpenAi::start().await;
    fake.script([Behavior::reply(&[
        "The navy ",
        "Nordwind rain jacket",
        " keeps you dry.",
    ])]);
    let app = openai_app(&fake).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "a rain jacket please").await;
    assert_eq!(reply.end["type"], "done", "{}", reply.end);
    assert!(
        listed_products(&fake).contains(&"Nordwind Rain Jacket Navy".to_owned()),
        "retrieved"
    );
    let cards = reply.products.expect("a card from the paraphrase");
    assert_eq!(cards["cards"][0]["name"], "Nordwind Rain Jacket Navy");
    assert_eq!(cards["cards"].as_array().map(Vec::len), Some(1));
}

#[actix_web::test]
async fn a_wrong_price_in_a_reply_is_corrected_before_it_ends() {
    let fake = FakeOpenAi::start().await;
    fake.script([Behavior::reply(&[
        "This one [P1] costs",
        " only 1.50 euro",
        " and is in stock.",
    ])]);
    let app = openai_app(&fake).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "a rain jacket please").await;
    assert_eq!(reply.end["type"], "done", "{}", reply.end);
    let listed = listed_products(&fake);
    let store = mikabot_actors::ids::StoreId::parse("demo").expect("valid");
    let catalog = app.storage().catalog(&store).expect("catalog");
    let first = catalog
        .iter()
        .find(|p| p.name == listed[0])
        .expect("the cited product");
    let mut expected = format!(
        "This one costs only 1.50 euro and is in stock.\n\nCorrection: {} costs {}.",
        first.name, first.price
    );
    if !first.in_stock {
        expected.push_str(&format!(
            " Correction: {} is out of stock at the moment.",
            first.name
        ));
    }
    assert_eq!(reply.text(), expected);
    let cards = reply.products.expect("the cited card");
    assert_eq!(cards["cards"][0]["name"], first.name.as_str());
    assert_eq!(
        app.stored_history(&ready).last().expect("reply").text,
        expected
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("mikabot_replies_corrected_total{reason=\"price\"} 1"),
        "{metrics}"
    );
}
