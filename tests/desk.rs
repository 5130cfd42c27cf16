//! The live desk through real sockets: owners and agents watch a store's
//! conversations over the dashboard socket while a shopper chats on the
//! widget socket, against a real OpenAI-compatible server. Tokens reach
//! watchers once each, also when they join mid-reply; a slow watcher is
//! dropped without slowing the shopper; takeover stops the model's stream
//! and stores the partial reply; the agent's messages are durable and
//! reach a reconnecting shopper; hand back, idle return, races, refusals.

use std::time::{Duration, Instant};

use mikabot::accounts::Role;
use mikabot_actors::ids::{ConversationId, StoreId};
use mikabot_actors::log::ConversationLog;
use mikabot_actors::model::FinishReason;
use mikabot_actors::prompt::Role as Speaker;
use serde_json::{Value, json};

use crate::dashboard::{created_store, signed_up};
use crate::helpers::shopper::{Connect, Frame};
use crate::helpers::{Behavior, FakeOpenAi, Owner, Shopper, SmtpSink, TestApp, spawn_app_on};

/// The dashboard's origin in the test settings (`server.public_url`).
const DASHBOARD_ORIGIN: &str = "http://localhost:8080";
const SHOP_URL: &str = "https://desk-shop.example";

/// A store with its owner, an agent, a viewer and a stranger (who owns
/// another store), all signed in.
struct Team {
    app: TestApp,
    store: String,
    owner: Owner,
    agent: Owner,
    viewer: Owner,
    stranger: Owner,
    _sink: SmtpSink,
}

async fn team(fake: &FakeOpenAi, tweak: impl FnOnce(&mut mikabot::config::Settings)) -> Team {
    let sink = SmtpSink::start().await;
    let port = sink.port();
    let app = spawn_app_on(fake, move |s| {
        s.email.smtp_host = "127.0.0.1".into();
        s.email.smtp_port = port;
        s.email.smtp_security = mikabot::config::SmtpSecurity::None;
        s.dashboard.login_failures_per_address = 1000;
        s.dashboard.emails_per_address_per_hour = 1000;
        tweak(s);
    })
    .await;
    let mut owner = signed_up(&app, &sink, "Olga", "olga@example.com").await;
    let store = created_store(&mut owner, "Desk Shop", SHOP_URL).await;
    let agent = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let viewer = signed_up(&app, &sink, "Vic", "vic@example.com").await;
    let mut stranger = signed_up(&app, &sink, "Sam", "sam@example.com").await;
    created_store(&mut stranger, "Other Shop", "https://other.example").await;
    let id = StoreId::parse(&store).expect("a store id");
    let storage = app.storage();
    for (email, role) in [
        ("ada@example.com", Role::Agent),
        ("vic@example.com", Role::Viewer),
    ] {
        let account = storage
            .account_by_email(email)
            .expect("read")
            .expect("an account")
            .id;
        storage.set_member(&id, account, role).expect("member");
    }
    Team {
        app,
        store,
        owner,
        agent,
        viewer,
        stranger,
        _sink: sink,
    }
}

fn desk_url(app: &TestApp, store: &str) -> String {
    format!(
        "ws://127.0.0.1:{}/dashboard/stores/{store}/desk/socket",
        app.port
    )
}

fn cookie_of(person: &Owner) -> String {
    person
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Opens the desk socket as `person`; returns it and its ready frame.
async fn desk(app: &TestApp, store: &str, person: &Owner, small_buffers: bool) -> (Shopper, Value) {
    let options = Connect {
        origin: Some(DASHBOARD_ORIGIN.into()),
        headers: vec![("cookie".into(), cookie_of(person))],
        small_buffers,
        ..Connect::to(&desk_url(app, store))
    };
    let mut socket = Shopper::open(&options)
        .await
        .expect("the desk socket opens");
    let ready = socket.next().await.json();
    assert_eq!(ready["type"], "ready", "{ready}");
    (socket, ready)
}

/// The HTTP status a desk socket handshake gets.
async fn handshake_status(
    app: &TestApp,
    store: &str,
    origin: Option<&str>,
    cookie: Option<String>,
) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = desk_url(app, store)
        .into_client_request()
        .expect("a request");
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("a header"));
    }
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().expect("a header"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected handshake failure: {other}"),
    }
}

/// The next frame of `kind`, skipping others (list updates, typing).
async fn next_of(socket: &mut Shopper, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "no {kind} frame in time");
        match socket.next().await {
            Frame::Json(frame) if frame["type"] == kind => return frame,
            Frame::Json(_) => {}
            Frame::Closed { code, reason } => panic!("closed {code} {reason} before {kind}"),
        }
    }
}

/// The next list update about `conversation` in `state`.
async fn state_becomes(socket: &mut Shopper, conversation: &str, state: &str) -> Value {
    loop {
        let frame = next_of(socket, "conversation").await;
        if frame["conversation"]["conversation_id"] == conversation
            && frame["conversation"]["state"] == state
        {
            return frame;
        }
    }
}

async fn shopper_of(app: &TestApp, store: &str) -> (Shopper, Value) {
    let mut shopper = Shopper::connect_from(&app.ws_url(store), Some(SHOP_URL)).await;
    let ready = shopper.hello(json!({})).await;
    (shopper, ready)
}

fn conversation_of(ready: &Value) -> String {
    ready["conversation_id"].as_str().expect("an id").to_owned()
}

fn words(count: usize) -> Vec<String> {
    (0..count).map(|i| format!(" w{i}")).collect()
}

/// Collects a reply's `tokens` frames until `reply_done`; checks that they
/// cover every seq once, in order, and returns the text.
async fn watched_reply(watcher: &mut Shopper, conversation: &str) -> (String, Value) {
    let mut text = String::new();
    let mut next_seq = 0_u64;
    loop {
        let frame = match watcher.next().await {
            Frame::Json(frame) => frame,
            Frame::Closed { code, .. } => panic!("the watcher closed with {code}"),
        };
        if frame["conversation_id"] != conversation {
            continue;
        }
        match frame["type"].as_str() {
            Some("tokens") => {
                assert_eq!(
                    frame["from_seq"], next_seq,
                    "each token once, in order: {frame}"
                );
                next_seq = frame["seq"].as_u64().expect("a seq") + 1;
                text.push_str(frame["text"].as_str().expect("text"));
            }
            Some("reply_done") => return (text, frame),
            _ => {}
        }
    }
}

#[actix_web::test]
async fn watchers_get_every_token_once_also_when_they_join_mid_reply() {
    let fake = FakeOpenAi::start().await;
    let t = team(&fake, |_| {}).await;
    let (mut first, _) = desk(&t.app, &t.store, &t.owner, false).await;
    let (mut shopper, ready) = shopper_of(&t.app, &t.store).await;
    let conversation = conversation_of(&ready);
    // The new conversation appears on the list without reload.
    state_becomes(&mut first, &conversation, "waiting_for_shopper").await;
    first
        .send(json!({"type": "watch", "conversation_id": conversation}))
        .await;
    next_of(&mut first, "history").await;

    fake.script([Behavior::Stream {
        tokens: words(30),
        delay: Duration::from_millis(40),
    }]);
    shopper.message("c1", "a tent for two").await;
    // The second watcher joins once the shopper has seen some tokens.
    let mut seen_by_shopper = 0;
    while seen_by_shopper < 8 {
        if let Frame::Json(frame) = shopper.next().await
            && frame["type"] == "token"
        {
            seen_by_shopper += 1;
        }
    }
    let (mut second, ready) = desk(&t.app, &t.store, &t.agent, false).await;
    let listed = ready["conversations"].as_array().expect("a list");
    assert!(
        listed
            .iter()
            .any(|c| c["conversation_id"] == conversation && c["state"] == "assistant_replying"),
        "{ready}"
    );
    second
        .send(json!({"type": "watch", "conversation_id": conversation}))
        .await;
    let history = next_of(&mut second, "history").await;
    assert_eq!(history["messages"][0]["role"], "shopper", "{history}");

    let (first_text, done) = watched_reply(&mut first, &conversation).await;
    let (second_text, _) = watched_reply(&mut second, &conversation).await;
    let expected = words(30).concat();
    assert_eq!(first_text, expected);
    assert_eq!(
        second_text, expected,
        "the late watcher got the catch-up and the rest"
    );
    assert_eq!(done["finish_reason"], "stop");
    // The shopper's own copy is the same reply.
    let mut shopper_text = String::new();
    loop {
        match shopper.next().await.json() {
            frame if frame["type"] == "done" => break,
            frame if frame["type"] == "token" => {
                shopper_text.push_str(frame["text"].as_str().unwrap_or(""))
            }
            _ => {}
        }
    }
    assert!(expected.ends_with(&shopper_text));
    fake.stop().await;
}

#[actix_web::test]
async fn a_watcher_too_slow_to_read_is_dropped_and_the_shopper_is_not_slowed() {
    let fake = FakeOpenAi::start().await;
    let t = team(&fake, |s| s.desk.watcher_buffer = 8).await;
    let (mut shopper, ready) = shopper_of(&t.app, &t.store).await;
    let conversation = conversation_of(&ready);
    let (mut slow, _) = desk(&t.app, &t.store, &t.owner, true).await;
    slow.send(json!({"type": "watch", "conversation_id": conversation}))
        .await;
    // A long reply: far more than the kernel's socket buffers hold, so a
    // watcher that never reads falls behind.
    let long: Vec<String> = (0..60_000).map(|i| format!("token-{i:06} ")).collect();
    let expected = long.concat();
    fake.script([Behavior::Stream {
        tokens: long,
        delay: Duration::ZERO,
    }]);
    shopper.message("c1", "tell me everything").await;
    let mut text = String::new();
    loop {
        let frame = shopper.next().await.json();
        match frame["type"].as_str() {
            Some("token") => text.push_str(frame["text"].as_str().unwrap_or("")),
            Some("done") => break,
            Some("ack") => {}
            _ => panic!("unexpected {frame}"),
        }
    }
    assert_eq!(text, expected, "the shopper got the whole reply");
    // Only now does the slow watcher read: it was dropped and told why.
    let (frames, code, reason) = slow.until_closed().await;
    assert_eq!(code, 4001, "{reason}");
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "error" && f["code"] == "too_slow"),
        "told to reload"
    );
    let metrics = t.app.metrics().await;
    assert!(
        metrics.contains("mikabot_desk_watchers_dropped_total 1"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("desk"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    fake.stop().await;
}

#[actix_web::test]
async fn strangers_signed_out_sockets_other_sites_and_viewers_are_refused() {
    let fake = FakeOpenAi::start().await;
    let t = team(&fake, |_| {}).await;
    let origin = Some(DASHBOARD_ORIGIN);
    assert_eq!(handshake_status(&t.app, &t.store, origin, None).await, 401);
    assert_eq!(
        handshake_status(&t.app, &t.store, origin, Some(cookie_of(&t.stranger))).await,
        404,
        "an owner of another store"
    );
    assert_eq!(
        handshake_status(
            &t.app,
            &t.store,
            Some("https://evil.example"),
            Some(cookie_of(&t.owner))
        )
        .await,
        403,
        "a page of another site, with the owner's cookie"
    );
    assert_eq!(
        handshake_status(&t.app, &t.store, None, Some(cookie_of(&t.owner))).await,
        403
    );
    assert_eq!(
        handshake_status(&t.app, "no-such-store", origin, Some(cookie_of(&t.owner))).await,
        404
    );
    assert_eq!(
        handshake_status(&t.app, &t.store, origin, Some(cookie_of(&t.viewer))).await,
        403,
        "a viewer may not read what shoppers write"
    );

    let (mut shopper, ready) = shopper_of(&t.app, &t.store).await;
    let conversation = conversation_of(&ready);
    shopper.ask("c1", "hello").await;
    let (mut socket, _) = desk(&t.app, &t.store, &t.agent, false).await;
    // Frames that are not understood get a code and the socket stays.
    for (raw, code) in [
        ("not json", "invalid_json"),
        (r#"{"type":"dance"}"#, "unknown_frame_type"),
        (r#"{"type":"take_over"}"#, "invalid_frame"),
        (
            r#"{"type":"take_over","conversation_id":"nope"}"#,
            "invalid_frame",
        ),
    ] {
        socket
            .send_raw(tokio_tungstenite::tungstenite::Message::text(raw))
            .await;
        let error = next_of(&mut socket, "error").await;
        assert_eq!(error["code"], code, "{raw}: {error}");
    }
    socket
        .send(json!({"type": "watch", "conversation_id": ConversationId::new().to_string()}))
        .await;
    assert_eq!(next_of(&mut socket, "error").await["code"], "not_live");
    socket.send(json!({"type": "ping", "nonce": "n1"})).await;
    assert_eq!(next_of(&mut socket, "pong").await["nonce"], "n1");

    // Demoted to viewer while connected: the next takeover closes the socket.
    let id = StoreId::parse(&t.store).expect("an id");
    let ada = t
        .app
        .storage()
        .account_by_email("ada@example.com")
        .expect("read")
        .expect("an account")
        .id;
    t.app
        .storage()
        .set_member(&id, ada, Role::Viewer)
        .expect("member");
    socket
        .send(json!({"type": "take_over", "conversation_id": conversation}))
        .await;
    let (frames, code, _) = socket.until_closed().await;
    assert_eq!(code, 4403);
    assert!(
        frames.iter().any(|f| f["code"] == "access_revoked"),
        "{frames:?}"
    );
    assert!(
        !frames.iter().any(|f| f["type"] == "done"),
        "nothing was taken over"
    );
    fake.stop().await;
}

#[actix_web::test]
async fn a_takeover_stops_the_model_and_the_agent_answers_until_they_hand_back() {
    let fake = FakeOpenAi::start().await;
    let t = team(&fake, |_| {}).await;
    let (mut agent, _) = desk(&t.app, &t.store, &t.agent, false).await;
    let (mut shopper, ready) = shopper_of(&t.app, &t.store).await;
    let session_id = ready["session_id"].as_str().expect("a session").to_owned();
    let conversation = conversation_of(&ready);
    agent
        .send(json!({"type": "watch", "conversation_id": conversation}))
        .await;
    next_of(&mut agent, "history").await;

    fake.script([Behavior::Stream {
        tokens: words(40),
        delay: Duration::from_millis(250),
    }]);
    shopper.message("c1", "which stove should I take?").await;
    loop {
        if shopper.next().await.json()["type"] == "token" {
            break;
        }
    }
    agent
        .send(json!({"type": "take_over", "conversation_id": conversation}))
        .await;
    assert_eq!(next_of(&mut agent, "done").await["action"], "take_over");

    // The shopper's reply stops, marked taken over, and they see who joined.
    let mut joined = None;
    let mut finish = None;
    while joined.is_none() || finish.is_none() {
        let frame = shopper.next().await.json();
        match frame["type"].as_str() {
            Some("agent_joined") => joined = Some(frame["name"].clone()),
            Some("done") => finish = Some(frame["finish_reason"].clone()),
            _ => {}
        }
    }
    assert_eq!(joined, Some(json!("Ada")));
    assert_eq!(finish, Some(json!("taken_over")));
    // The model's request was cancelled, not left running.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.cancelled_streams() == 0 {
        assert!(Instant::now() < deadline, "the model's stream is cancelled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let id = StoreId::parse(&t.store).expect("id");
    let conversation_id = ConversationId::parse(&conversation).expect("id");
    let stored = ConversationLog::history(t.app.storage(), &id, conversation_id, 50).expect("read");
    let partial = stored
        .iter()
        .find(|m| m.role == Speaker::Assistant)
        .expect("the partial reply is stored");
    let outcome = partial.reply.as_ref().expect("a reply");
    assert!(outcome.incomplete);
    assert_eq!(outcome.finish, Some(FinishReason::TakenOver));
    assert!(!partial.text.is_empty() && words(40).concat().starts_with(&partial.text));

    // The shopper's next message goes to the agent, not the model.
    shopper.message("c2", "is someone there?").await;
    assert_eq!(shopper.next().await.json()["type"], "ack");
    let said = next_of(&mut agent, "message").await;
    assert_eq!(said["message"]["text"], "is someone there?");
    assert_eq!(fake.request_count(), 1, "the model is not asked");

    // Typing both ways.
    shopper.send(json!({"type": "typing"})).await;
    assert_eq!(next_of(&mut agent, "typing").await["who"], "shopper");
    agent
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    let typing = loop {
        let frame = shopper.next().await.json();
        if frame["type"] == "agent_typing" {
            break frame;
        }
    };
    assert_eq!(typing["name"], "Ada");

    // The agent's message is on disk before it is acknowledged and shown.
    agent
        .send(json!({"type": "message", "conversation_id": conversation, "client_id": "a1", "text": "Hi, Ada here. The Trail 2 stove."}))
        .await;
    let sent = next_of(&mut agent, "sent").await;
    assert_eq!(sent["client_id"], "a1");
    let stored = ConversationLog::history(t.app.storage(), &id, conversation_id, 50).expect("read");
    let by_agent = stored
        .iter()
        .find(|m| m.role == Speaker::Agent)
        .expect("stored");
    assert_eq!(by_agent.author.as_deref(), Some("Ada"));
    assert_eq!(sent["message_id"], by_agent.id.to_string());
    let shown = loop {
        let frame = shopper.next().await.json();
        if frame["type"] == "agent_message" {
            break frame;
        }
    };
    assert_eq!(shown["name"], "Ada");
    assert_eq!(shown["text"], "Hi, Ada here. The Trail 2 stove.");
    // A resend is stored once.
    agent
        .send(json!({"type": "message", "conversation_id": conversation, "client_id": "a1", "text": "Hi, Ada here. The Trail 2 stove."}))
        .await;
    assert_eq!(
        next_of(&mut agent, "sent").await["message_id"],
        sent["message_id"]
    );

    // A shopper who changes page sees the person and their message.
    shopper.close().await;
    let mut shopper = Shopper::connect_from(&t.app.ws_url(&t.store), Some(SHOP_URL)).await;
    let ready = shopper.hello(json!({"session_id": session_id})).await;
    assert_eq!(ready["agent"], "Ada", "{ready}");
    let history = ready["history"].as_array().expect("history");
    assert!(
        history.iter().any(|m| m["role"] == "agent"
            && m["name"] == "Ada"
            && m["text"] == "Hi, Ada here. The Trail 2 stove."),
        "{ready}"
    );

    // Hand back: the assistant answers the next message, with the
    // person's words in its history.
    agent
        .send(json!({"type": "hand_back", "conversation_id": conversation}))
        .await;
    assert_eq!(next_of(&mut agent, "done").await["action"], "hand_back");
    let back = loop {
        let frame = shopper.next().await.json();
        if frame["type"] == "handed_back" {
            break frame;
        }
    };
    assert_eq!(back["reason"], "agent");
    fake.script([Behavior::reply(&["Glad", " to", " help."])]);
    let reply = shopper.ask("c3", "and a pot?").await;
    assert_eq!(reply.end["type"], "done");
    assert_eq!(fake.request_count(), 2);
    let asked = fake.requests().last().expect("a request").body.to_string();
    assert!(
        asked.contains("[a person from the store wrote] Hi, Ada here."),
        "the model sees what the person said: {asked}"
    );
    fake.stop().await;
}

#[actix_web::test]
async fn one_agent_holds_a_conversation_through_reconnects_and_loses_it_when_away() {
    let fake = FakeOpenAi::start().await;
    let t = team(&fake, |s| s.desk.idle_return_secs = 1.0).await;
    let (mut shopper, ready) = shopper_of(&t.app, &t.store).await;
    let conversation = conversation_of(&ready);
    shopper.ask("c1", "hello").await;
    let (mut owner, _) = desk(&t.app, &t.store, &t.owner, false).await;
    let (mut agent, _) = desk(&t.app, &t.store, &t.agent, false).await;
    // Both press "Take over" at once: exactly one holds it.
    let take = json!({"type": "take_over", "conversation_id": conversation});
    owner.send(take.clone()).await;
    agent.send(take).await;
    let mut outcomes = Vec::new();
    for socket in [&mut owner, &mut agent] {
        loop {
            let frame = socket.next().await.json();
            if frame["type"] == "done" || frame["type"] == "error" {
                outcomes.push(frame);
                break;
            }
        }
    }
    let won: Vec<&Value> = outcomes.iter().filter(|f| f["type"] == "done").collect();
    let lost: Vec<&Value> = outcomes.iter().filter(|f| f["type"] == "error").collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    assert_eq!(lost[0]["code"], "held_by_other");
    let holder = lost[0]["holder"]
        .as_str()
        .expect("the holder's name")
        .to_owned();
    assert!(holder == "Olga" || holder == "Ada");
    let (holder_socket, holder_person) = if holder == "Ada" {
        (agent, &t.agent)
    } else {
        (owner, &t.owner)
    };
    // The holder reconnects quickly: the conversation is still theirs.
    holder_socket.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut back, ready) = desk(&t.app, &t.store, holder_person, false).await;
    let line = ready["conversations"]
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|c| c["conversation_id"] == conversation)
                .cloned()
        })
        .expect("listed");
    assert_eq!(line["state"], "human_active");
    assert_eq!(line["holder"], holder.as_str());
    back.send(json!({"type": "message", "conversation_id": conversation, "client_id": "m1", "text": "still here"}))
        .await;
    next_of(&mut back, "sent").await;
    // Then they leave for longer than the idle time: the assistant is back
    // and the shopper is told.
    back.close().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let reason = loop {
        assert!(Instant::now() < deadline, "the conversation returns");
        let frame = shopper.next().await.json();
        if frame["type"] == "handed_back" {
            break frame["reason"].clone();
        }
    };
    assert_eq!(reason, "idle");
    fake.script([Behavior::reply(&["Back", " again."])]);
    assert_eq!(shopper.ask("c2", "anyone?").await.text(), "Back again.");
    fake.stop().await;
}

#[actix_web::test]
async fn a_shopper_asking_for_a_person_waits_for_a_human_on_the_desk() {
    let fake = FakeOpenAi::start().await;
    let t = team(&fake, |_| {}).await;
    let (mut owner, _) = desk(&t.app, &t.store, &t.owner, false).await;
    let (mut shopper, ready) = shopper_of(&t.app, &t.store).await;
    let conversation = conversation_of(&ready);
    shopper.send(json!({"type": "request_human"})).await;
    assert_eq!(shopper.next().await.json()["type"], "human_requested");
    state_becomes(&mut owner, &conversation, "waiting_for_human").await;

    // The phrase works as well as the button, on a second conversation.
    let (mut other, ready) = shopper_of(&t.app, &t.store).await;
    let second = conversation_of(&ready);
    fake.script([Behavior::reply(&["Someone", " will", " join."])]);
    other.ask("c1", "can I talk to a human please").await;
    state_becomes(&mut owner, &second, "waiting_for_human").await;
    drop(shopper);
    fake.stop().await;
}

#[actix_web::test]
async fn the_history_filters_by_takeover_and_words_and_deletes_a_selection() {
    let fake = FakeOpenAi::start().await;
    let mut t = team(&fake, |_| {}).await;
    t.owner
        .get(&format!("/dashboard/stores/{}/settings", t.store))
        .await;
    let feed = format!(
        "id,title,price,currency,link,image_link\n\
         l-1,Storm Lantern,24.00,EUR,{SHOP_URL}/l-1,{SHOP_URL}/l-1.jpg\n"
    );
    let upload = format!("/dashboard/stores/{}/catalog", t.store);
    let page = t.owner.put(&upload, feed.into_bytes()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (mut plain, ready) = shopper_of(&t.app, &t.store).await;
    let lantern = conversation_of(&ready);
    fake.script([Behavior::reply(&["Try", " the", " Storm Lantern."])]);
    let reply = plain.ask("c1", "a lantern for camping").await;
    assert_eq!(reply.card_ids(), vec!["l-1".to_owned()]);
    let (mut helped, ready) = shopper_of(&t.app, &t.store).await;
    let taken = conversation_of(&ready);
    helped.ask("c1", "hello").await;
    let (mut agent, _) = desk(&t.app, &t.store, &t.agent, false).await;
    agent
        .send(json!({"type": "take_over", "conversation_id": taken}))
        .await;
    next_of(&mut agent, "done").await;
    // Taken over, as the history counts it: a person wrote in it.
    agent
        .send(json!({"type": "message", "conversation_id": taken, "client_id": "a1", "text": "Hello from the shop"}))
        .await;
    next_of(&mut agent, "sent").await;

    let list = format!("/dashboard/stores/{}/conversations", t.store);
    let page = t.owner.get(&format!("{list}?taken_over=yes")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&taken) && !page.body.contains(&lantern));
    let page = t
        .owner
        .get(&format!("{list}?taken_over=no&q=LANTERN"))
        .await;
    assert!(page.body.contains(&lantern) && !page.body.contains(&taken));
    let page = t.owner.get(&format!("{list}?products=yes")).await;
    assert!(page.body.contains(&lantern) && !page.body.contains(&taken));
    // The conversation view shows the reply's cards and who took part.
    let view = t.owner.get(&format!("{list}/{lantern}")).await;
    assert!(
        view.body.contains(&format!("href=\"{SHOP_URL}/l-1\"")),
        "{}",
        view.body
    );
    assert!(view.body.contains("24.00 EUR"));
    let view = t.owner.get(&format!("{list}/{taken}")).await;
    assert!(view.body.contains("Ada") && view.body.contains("Hello from the shop"));
    let page = t.owner.get(&format!("{list}?from=2099-01-01")).await;
    assert!(!page.body.contains(&lantern) && !page.body.contains(&taken));
    let long = format!("q={}", "a".repeat(201));
    for bad in [
        "language=xx",
        "from=2026-02-30",
        "taken_over=maybe",
        long.as_str(),
    ] {
        assert_eq!(
            t.owner.get(&format!("{list}?{bad}")).await.status,
            400,
            "{bad}"
        );
    }

    // A forged selection naming a conversation that is not there deletes
    // nothing; a real one is erased.
    t.owner.get(&list).await;
    let page = t
        .owner
        .post(
            &format!("{list}/delete"),
            &[
                ("id", lantern.as_str()),
                ("id", &ConversationId::new().to_string()),
            ],
        )
        .await;
    assert_eq!(page.status, 404);
    let page = t
        .owner
        .post(&format!("{list}/delete"), &[("id", lantern.as_str())])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = t.owner.get(&list).await;
    assert!(!page.body.contains(&lantern), "the selection is gone");
    assert!(page.body.contains(&taken));
    fake.stop().await;
}
