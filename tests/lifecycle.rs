//! Every way a session ends deregisters it: the live-session count returns
//! to zero after a close, a protocol error, a heartbeat or hello timeout,
//! a dropped connection and a shutdown.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Shopper, spawn_app};

#[actix_web::test]
async fn a_closed_socket_deregisters_its_session() {
    let app = spawn_app(|_| {}).await;
    let mut a = Shopper::connect(&app.ws_url("demo")).await;
    a.hello(json!({})).await;
    let mut b = Shopper::connect(&app.ws_url("demo")).await;
    b.hello(json!({})).await;
    app.wait_for_live_sessions(2).await;
    a.close().await;
    app.wait_for_live_sessions(1).await;
    drop(b);
    app.wait_for_live_sessions(0).await;
}

#[actix_web::test]
async fn a_protocol_error_deregisters_its_session() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    app.wait_for_live_sessions(1).await;
    shopper
        .send_raw(Message::text("y".repeat(300 * 1024)))
        .await;
    let (_, close, _) = shopper.until_closed().await;
    assert_eq!(close, 1009);
    app.wait_for_live_sessions(0).await;
}

#[actix_web::test]
async fn a_silent_client_is_closed_by_the_heartbeat() {
    let app = spawn_app(|s| {
        s.widget.heartbeat_interval_secs = 0.2;
        s.widget.client_timeout_secs = 1.0;
    })
    .await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    app.wait_for_live_sessions(1).await;
    // The client reads raw bytes from here on and never answers a ping.
    let wire = shopper.raw_bytes_until_eof().await;
    app.wait_for_live_sessions(0).await;
    let contains = |needle: &[u8]| wire.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(br#""code":"heartbeat_timeout""#),
        "the error frame was sent"
    );
    // The close frame: opcode 0x8, code 4408 (0x1138), reason.
    let mut close = vec![0x88, 2 + 17, 0x11, 0x38];
    close.extend_from_slice(b"heartbeat_timeout");
    assert!(contains(&close), "the close frame was sent");
}

#[actix_web::test]
async fn an_answering_client_is_kept_alive_by_the_heartbeat() {
    let app = spawn_app(|s| {
        s.widget.heartbeat_interval_secs = 0.2;
        s.widget.client_timeout_secs = 1.0;
    })
    .await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    // Reading answers pings; three seconds of that span several timeouts.
    for i in 0..30 {
        shopper
            .send(json!({"type": "ping", "nonce": i.to_string()}))
            .await;
        assert_eq!(shopper.next().await.json()["type"], "pong");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.live_sessions(), 1);
}

#[actix_web::test]
async fn a_client_that_never_says_hello_is_closed() {
    let app = spawn_app(|s| s.widget.hello_timeout_secs = 0.2).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let (frames, close, _) = shopper.until_closed().await;
    assert_eq!(frames[0]["code"], "hello_timeout");
    assert_eq!(close, 4408);
    app.wait_for_live_sessions(0).await;
}

#[actix_web::test]
async fn shutdown_closes_every_session_with_going_away() {
    let app = spawn_app(|_| {}).await;
    let mut shoppers = Vec::new();
    for _ in 0..3 {
        let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
        shopper.hello(json!({})).await;
        shoppers.push(shopper);
    }
    app.wait_for_live_sessions(3).await;
    let stopper = app.stopper.clone();
    let stopping = actix_web::rt::spawn(async move { stopper.stop().await });
    for shopper in &mut shoppers {
        let (frames, close, reason) = shopper.until_closed().await;
        assert_eq!(
            frames.last().expect("an error frame")["code"],
            "server_shutdown"
        );
        assert_eq!((close, reason.as_str()), (1001, "server_shutdown"));
    }
    stopping.await.expect("stop completes");
    assert_eq!(app.live_sessions(), 0);
}

#[actix_web::test]
async fn readiness_is_reported_until_the_node_stops() {
    let fake = crate::helpers::FakeOpenAi::start().await;
    // A reply that never ends keeps the node stopping for its timeout.
    fake.always(crate::helpers::Behavior::Stall {
        tokens: vec!["Thinking".into()],
    });
    let app = crate::helpers::spawn_app_on(&fake, |_| {}).await;
    let ready = format!("http://127.0.0.1:{}/readyz", app.port);
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = client.get(&ready).send().await.expect("the node answers");
        if response.status() == 200 {
            let body: serde_json::Value = response.json().await.expect("JSON");
            assert_eq!(body["status"], "ready");
            break;
        }
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body["status"], "starting", "{body}");
        assert!(std::time::Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    shopper.message("c1", "a tent").await;
    assert_eq!(shopper.next().await.json()["type"], "ack");
    assert_eq!(shopper.next().await.json()["type"], "token");

    let stopper = app.stopper.clone();
    let stopping = actix_web::rt::spawn(async move { stopper.stop().await });
    let (_, close, _) = shopper.until_closed().await;
    assert_eq!(close, 1001);
    // The stalled reply holds the node in its stopping phase.
    let response = client.get(&ready).send().await.expect("the node answers");
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], "stopping", "{body}");
    // A new widget socket is turned away.
    let mut late = Shopper::connect(&app.ws_url("demo")).await;
    let (frames, close, reason) = late.until_closed().await;
    assert_eq!((close, reason.as_str()), (1001, "server_shutdown"));
    assert_eq!(frames[0]["code"], "server_shutdown");
    stopping.await.expect("stop completes");
}

#[actix_web::test]
async fn the_demo_store_is_served_only_while_enabled() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    shopper.close().await;
    let dir = app.stop().await;

    let app = crate::helpers::spawn_app_in(dir, |s| s.demo.enabled = false).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let (frames, close, _) = shopper.until_closed().await;
    assert_eq!(close, 4404);
    assert_eq!(frames[0]["code"], "unknown_store");
    let settings = reqwest::get(format!(
        "http://127.0.0.1:{}/v1/stores/demo/widget",
        app.port
    ))
    .await
    .expect("answer");
    assert_eq!(settings.status(), 404);
    let page = reqwest::get(format!("http://127.0.0.1:{}/demo/", app.port))
        .await
        .expect("answer");
    assert_eq!(page.status(), 404);
}
