//! What was acknowledged survives a restart; what is stored about a shopper
//! is anonymised.

use serde_json::json;

use crate::helpers::{Shopper, spawn_app, spawn_app_in};

#[actix_web::test]
async fn acknowledged_messages_and_completed_replies_survive_a_restart() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({"page_url": "https://shop.example/tents", "referrer": "https://search.example/"})).await;
    let session_id = ready["session_id"].as_str().expect("session id").to_owned();
    let mut expected = Vec::new();
    for (i, question) in ["two-person tent", "sleeping bag", "insulated water bottle"]
        .iter()
        .enumerate()
    {
        let reply = shopper.ask(&format!("c{i}"), question).await;
        assert_eq!(reply.end["type"], "done");
        expected.push((reply.ack["message_id"].clone(), question.to_string()));
        expected.push((reply.end["reply_id"].clone(), reply.text()));
    }
    drop(shopper);
    let dir = app.stop().await;

    let app = spawn_app_in(dir, |_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({"session_id": session_id})).await;
    assert_eq!(ready["resumed"], true);
    assert_eq!(ready["session_id"], session_id.as_str());
    let history = ready["history"].as_array().expect("history");
    let found: Vec<_> = history
        .iter()
        .map(|m| {
            (
                m["message_id"].clone(),
                m["text"].as_str().expect("text").to_owned(),
            )
        })
        .collect();
    assert_eq!(found, expected);
    assert_eq!(history[1]["role"], "assistant");
    assert_eq!(history[1]["incomplete"], false);
    assert!(!history[1]["cards"].as_array().expect("cards").is_empty());

    // The resumed conversation goes on where it was.
    let reply = shopper.ask("c9", "yoga mat").await;
    assert_eq!(reply.end["type"], "done");
}

#[actix_web::test]
async fn an_unknown_session_id_starts_a_new_conversation() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let unknown = "0b7c9b5e-3f0e-4a53-9a57-3c2b1f8f7e11";
    let ready = shopper.hello(json!({"session_id": unknown})).await;
    assert_eq!(ready["resumed"], false);
    assert_ne!(
        ready["session_id"], unknown,
        "a client cannot choose its session id"
    );
    let ready = Shopper::connect(&app.ws_url("demo"))
        .await
        .hello(json!({"session_id": "not-a-uuid"}))
        .await;
    assert_eq!(ready["resumed"], false);
}

#[actix_web::test]
async fn stored_conversations_hold_an_anonymised_address_and_no_raw_one() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper
        .hello(json!({"page_url": "https://shop.example/p/1"}))
        .await;
    shopper.ask("c1", "tent").await;
    drop(shopper);
    let session = mikabot_actors::ids::SessionId::parse(ready["session_id"].as_str().expect("id"))
        .expect("uuid");
    let store = mikabot_actors::ids::StoreId::parse("demo").expect("valid");
    use mikabot_actors::log::ConversationLog;
    let meta = app
        .storage()
        .find_session(&store, session)
        .expect("lookup")
        .expect("the conversation is stored");
    assert_eq!(meta.ip.as_deref(), Some("127.0.0.0"));
    assert_eq!(meta.page_url.as_deref(), Some("https://shop.example/p/1"));
    assert_eq!(meta.client.device, "other");

    let dir = app.stop().await;
    let mut raw_address_found = Vec::new();
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).expect("read data file");
        if bytes.windows(9).any(|w| w == b"127.0.0.1") {
            raw_address_found.push(entry);
        }
    }
    assert!(
        raw_address_found.is_empty(),
        "raw address in {raw_address_found:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[actix_web::test]
async fn a_page_is_stored_without_its_query_and_a_referrer_as_its_origin() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    // As an older widget sends them: whole.
    let ready = shopper
        .hello(json!({
            "page_url": "https://shop.example/account/reset?token=r3set-s3cret#top",
            "referrer": "https://mail.example/inbox/msg-991?to=ann@example.com",
        }))
        .await;
    shopper.ask("c1", "tent").await;
    drop(shopper);
    let session = mikabot_actors::ids::SessionId::parse(ready["session_id"].as_str().expect("id"))
        .expect("uuid");
    let store = mikabot_actors::ids::StoreId::parse("demo").expect("valid");
    use mikabot_actors::log::ConversationLog;
    let meta = app
        .storage()
        .find_session(&store, session)
        .expect("lookup")
        .expect("the conversation is stored");
    assert_eq!(
        meta.page_url.as_deref(),
        Some("https://shop.example/account/reset")
    );
    assert_eq!(meta.referrer.as_deref(), Some("https://mail.example"));
    let dir = app.stop().await;
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).expect("read data file");
        for secret in [&b"r3set-s3cret"[..], b"ann@example.com", b"msg-991"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{} holds {:?}",
                entry.display(),
                String::from_utf8_lossy(secret)
            );
        }
    }
}
