//! Every limit and every malformed input answers with a stable code; the
//! connection stays where that makes sense and nothing acknowledged is lost.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Shopper, spawn_app};

fn code(frame: &serde_json::Value) -> &str {
    assert_eq!(frame["type"], "error", "{frame}");
    frame["code"].as_str().expect("code")
}

#[actix_web::test]
async fn malformed_frames_get_error_frames_and_the_session_goes_on() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;

    shopper.message("early", "hello?").await;
    assert_eq!(code(&shopper.next().await.json()), "hello_required");

    shopper.hello(json!({})).await;
    let cases: Vec<(Message, &str)> = vec![
        (Message::text("{not json"), "invalid_json"),
        (Message::text("[1,2]"), "invalid_frame"),
        (
            Message::text(r#"{"type":"teleport"}"#),
            "unknown_frame_type",
        ),
        (
            Message::text(r#"{"type":"message","text":"no id"}"#),
            "invalid_frame",
        ),
        (
            Message::text(r#"{"type":"message","client_id":"x","text":42}"#),
            "invalid_frame",
        ),
        (Message::binary(vec![1_u8, 2, 3]), "binary_not_supported"),
        (
            Message::text(json!({"type":"hello","v":1}).to_string()),
            "duplicate_hello",
        ),
        (Message::text("x".repeat(20 * 1024)), "frame_too_large"),
        (
            Message::text(json!({"type":"message","client_id":"c","text":"   "}).to_string()),
            "message_empty",
        ),
        (
            Message::text(
                json!({"type":"message","client_id":"c","text":"é".repeat(2001)}).to_string(),
            ),
            "message_too_long",
        ),
        (
            Message::text(
                json!({"type":"message","client_id":"x".repeat(65),"text":"hi"}).to_string(),
            ),
            "invalid_frame",
        ),
    ];
    for (message, expected) in cases {
        shopper.send_raw(message).await;
        let frame = shopper.next().await.json();
        assert_eq!(code(&frame), expected, "{frame}");
        assert!(frame["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Exactly at the limit is accepted.
    let reply = shopper.ask("ok", &"tent ".repeat(400)).await;
    assert_eq!(reply.end["type"], "done");
    shopper.send(json!({"type": "ping", "nonce": "n1"})).await;
    assert_eq!(
        shopper.next().await.json(),
        json!({"type": "pong", "nonce": "n1"})
    );
}

#[actix_web::test]
async fn messages_beyond_the_per_session_rate_are_refused_with_retry_after() {
    let app = spawn_app(|s| s.widget.messages_per_minute = 2).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    shopper.ask("c1", "tent").await;
    shopper.ask("c2", "tent").await;
    shopper.message("c3", "tent").await;
    let frame = shopper.next().await.json();
    assert_eq!(code(&frame), "rate_limited");
    assert_eq!(frame["client_id"], "c3");
    let retry_after = frame["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(retry_after > 1000 && retry_after <= 30_000, "{retry_after}");
    // The connection stays open.
    shopper.send(json!({"type": "ping"})).await;
    assert_eq!(shopper.next().await.json()["type"], "pong");
}

#[actix_web::test]
async fn new_sessions_beyond_the_per_address_rate_are_refused() {
    let app = spawn_app(|s| s.widget.new_sessions_per_ip_per_minute = 2).await;
    let mut first = Shopper::connect(&app.ws_url("demo")).await;
    first.hello(json!({})).await;
    let mut second = Shopper::connect(&app.ws_url("demo")).await;
    second.hello(json!({})).await;
    let mut third = Shopper::connect(&app.ws_url("demo")).await;
    let (frames, close, reason) = third.until_closed().await;
    assert_eq!(code(&frames[0]), "too_many_sessions");
    assert!(frames[0]["retry_after_ms"].as_u64().is_some());
    assert_eq!((close, reason.as_str()), (4429, "too_many_sessions"));
    // Sessions already open are unaffected.
    let reply = first.ask("c1", "tent").await;
    assert_eq!(reply.end["type"], "done");
}

#[actix_web::test]
async fn an_unknown_store_is_refused_with_a_close_code() {
    let app = spawn_app(|_| {}).await;
    for url in [
        app.ws_url("no-such-store"),
        app.ws_url("Not%20Valid"),
        format!("ws://127.0.0.1:{}/v1/widget/ws", app.port),
    ] {
        let mut shopper = Shopper::connect(&url).await;
        let (frames, close, reason) = shopper.until_closed().await;
        assert_eq!(code(&frames[0]), "unknown_store");
        assert_eq!((close, reason.as_str()), (4404, "unknown_store"), "{url}");
    }
    assert_eq!(app.live_sessions(), 0);
}

#[actix_web::test]
async fn an_unsupported_protocol_version_is_refused() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.send(json!({"type": "hello", "v": 2})).await;
    let (frames, close, _) = shopper.until_closed().await;
    assert_eq!(code(&frames[0]), "unsupported_version");
    assert_eq!(close, 4400);
}

#[actix_web::test]
async fn a_frame_far_above_the_limit_closes_the_socket_and_keeps_what_was_acknowledged() {
    let app = spawn_app(|_| {}).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    let acked = shopper.ask("kept", "sleeping bag").await;
    shopper
        .send_raw(Message::text("x".repeat(200 * 1024)))
        .await;
    let (frames, close, _) = shopper.until_closed().await;
    assert_eq!(code(&frames[0]), "frame_too_large");
    assert_eq!(close, 1009);
    app.wait_for_live_sessions(0).await;

    let history = app.stored_history(&ready);
    assert_eq!(history.len(), 2, "the message and its reply");
    assert_eq!(
        history[0].id.to_string(),
        acked.ack["message_id"].as_str().expect("id")
    );
    assert_eq!(history[0].text, "sleeping bag");
}

#[actix_web::test]
async fn repeated_garbage_closes_the_session() {
    let app = spawn_app(|s| s.widget.max_protocol_errors = 3).await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    for _ in 0..4 {
        shopper.send_raw(Message::text("garbage")).await;
    }
    let (frames, close, reason) = shopper.until_closed().await;
    let codes: Vec<_> = frames.iter().map(code).collect();
    assert_eq!(
        codes,
        [
            "invalid_json",
            "invalid_json",
            "invalid_json",
            "too_many_errors"
        ]
    );
    assert_eq!((close, reason.as_str()), (1008, "too_many_errors"));
    app.wait_for_live_sessions(0).await;
}

#[actix_web::test]
async fn a_plain_http_request_to_the_socket_gets_a_json_error() {
    let app = spawn_app(|_| {}).await;
    let url = format!("http://127.0.0.1:{}/v1/widget/ws?store=demo", app.port);
    let response = reqwest::get(url).await.expect("the node answers");
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "websocket_required");
}

#[actix_web::test]
async fn a_client_that_never_reads_is_disconnected_instead_of_buffered() {
    use futures_util::SinkExt;
    use std::time::Duration;

    // Heartbeats stay at their defaults (a 45 s timeout): the bound on
    // waiting frames is what must end this session.
    let app = spawn_app(|s| s.widget.outgoing_buffer = 16).await;
    // A small receive window, and no reads: the node's answers pile up.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let stream = socket
        .connect(([127, 0, 0, 1], app.port).into())
        .await
        .expect("connects");
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            app.ws_url("demo"),
        )
        .expect("request");
    request.headers_mut().insert(
        "origin",
        crate::helpers::shopper::NODE_ORIGIN
            .parse()
            .expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("handshake");
    ws.send(Message::text(r#"{"type":"hello","v":1}"#))
        .await
        .expect("hello");
    app.wait_for_live_sessions(1).await;

    let ping = r#"{"type":"ping","nonce":"a nonce long enough to fill buffers sooner"}"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut sent = 0_u64;
    while app.live_sessions() == 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session outlived {sent} unread answers"
        );
        // Writes fail once the node has dropped the connection, and stall
        // while the node, its answers unread, stops reading.
        match tokio::time::timeout(Duration::from_millis(100), ws.send(Message::text(ping))).await {
            Ok(Ok(())) => sent += 1,
            Ok(Err(_)) => break,
            Err(_) => {}
        }
        if sent.is_multiple_of(1000) {
            tokio::task::yield_now().await;
        }
    }
    app.wait_for_live_sessions(0).await;
    // The node is well: a new shopper is served.
    let mut next = Shopper::connect(&app.ws_url("demo")).await;
    next.hello(json!({})).await;
}

#[actix_web::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let app = spawn_app(|_| {}).await;
    for fragmented in [false, true] {
        let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
        shopper.hello(json!({})).await;
        // "caf" then a lone continuation byte: not UTF-8.
        let bytes = b"caf\xa9".to_vec();
        if fragmented {
            let first = Frame::message(bytes[..2].to_vec(), OpCode::Data(Data::Text), false);
            let rest = Frame::message(bytes[2..].to_vec(), OpCode::Data(Data::Continue), true);
            shopper.send_raw(Message::Frame(first)).await;
            shopper.send_raw(Message::Frame(rest)).await;
        } else {
            let frame = Frame::message(bytes, OpCode::Data(Data::Text), true);
            shopper.send_raw(Message::Frame(frame)).await;
        }
        let (frames, close, reason) = shopper.until_closed().await;
        assert_eq!(
            (close, reason.as_str()),
            (1007, "invalid_utf8"),
            "{frames:?}"
        );
        assert_eq!(code(frames.last().expect("an error frame")), "invalid_utf8");
    }
    app.wait_for_live_sessions(0).await;
}

/// A shopper connecting from `source` with an `X-Forwarded-For` header.
async fn forwarded(app: &crate::helpers::TestApp, source: &str, chain: &str) -> Shopper {
    let mut options = crate::helpers::shopper::Connect::to(&app.ws_url("demo"));
    options.source = Some(source.parse().expect("an address"));
    options.headers = vec![("x-forwarded-for".into(), chain.into())];
    Shopper::open(&options).await.expect("the socket opens")
}

async fn refused_as_too_many(mut shopper: Shopper) -> bool {
    shopper.send(json!({"type": "hello", "v": 1})).await;
    let frame = shopper.next().await.json();
    frame["code"] == "too_many_sessions"
}

#[actix_web::test]
async fn limits_count_the_client_behind_a_trusted_proxy_and_ignore_forged_headers() {
    let app = spawn_app(|s| {
        s.widget.new_sessions_per_ip_per_minute = 2;
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    // Behind the proxy: two shoppers from one client, then a third refused,
    // while another client is still welcome. What a client writes into the
    // header itself (the leftmost entry) is not believed.
    for chain in ["9.9.9.9, 198.51.100.1", "8.8.8.8, 198.51.100.1"] {
        let shopper = forwarded(&app, "127.0.0.1", chain).await;
        assert!(!refused_as_too_many(shopper).await);
    }
    // A Forwarded header of the client's own, passed through by the proxy,
    // is not read: it cannot choose another address to be counted under.
    let mut options = crate::helpers::shopper::Connect::to(&app.ws_url("demo"));
    options.source = Some("127.0.0.1".parse().expect("an address"));
    options.headers = vec![
        ("x-forwarded-for".into(), "198.51.100.1".into()),
        ("forwarded".into(), "for=203.0.113.200".into()),
    ];
    let spoofing = Shopper::open(&options).await.expect("the socket opens");
    assert!(
        refused_as_too_many(spoofing).await,
        "counted as 198.51.100.1"
    );
    let third = forwarded(&app, "127.0.0.1", "7.7.7.7, 198.51.100.1").await;
    assert!(
        refused_as_too_many(third).await,
        "198.51.100.1 is at its limit"
    );
    let other = forwarded(&app, "127.0.0.1", "198.51.100.2").await;
    assert!(
        !refused_as_too_many(other).await,
        "another client is served"
    );

    // An IPv6 client is counted by its /64.
    for host in ["2001:db8:5:6::1", "2001:db8:5:6::2"] {
        let shopper = forwarded(&app, "127.0.0.1", host).await;
        assert!(!refused_as_too_many(shopper).await);
    }
    let same_net = forwarded(&app, "127.0.0.1", "2001:db8:5:6:ffff::9").await;
    assert!(refused_as_too_many(same_net).await, "the same /64");

    // A peer that is not a trusted proxy is itself, whatever it claims.
    for i in 0..2 {
        let chain = format!("203.0.113.{i}");
        let shopper = forwarded(&app, "127.0.0.9", &chain).await;
        assert!(!refused_as_too_many(shopper).await);
    }
    let forged = forwarded(&app, "127.0.0.9", "203.0.113.99").await;
    assert!(
        refused_as_too_many(forged).await,
        "127.0.0.9 is at its limit"
    );
}

#[actix_web::test]
async fn frames_the_rfc_forbids_close_with_1002() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let app = spawn_app(|_| {}).await;
    let reserved = {
        let mut frame = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Text), true);
        frame.header_mut().rsv1 = true;
        vec![frame]
    };
    let interleaved = vec![
        Frame::message(b"{\"ty".to_vec(), OpCode::Data(Data::Text), false),
        Frame::message(b"{}".to_vec(), OpCode::Data(Data::Text), true),
    ];
    for frames in [reserved, interleaved] {
        let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
        shopper.hello(json!({})).await;
        for frame in frames {
            shopper.send_raw(Message::Frame(frame)).await;
        }
        let (errors, close, reason) = shopper.until_closed().await;
        assert_eq!(
            (close, reason.as_str()),
            (1002, "protocol_error"),
            "{errors:?}"
        );
    }
    app.wait_for_live_sessions(0).await;
}

#[actix_web::test]
async fn an_ipv6_network_is_bounded_however_many_64s_it_holds() {
    let app = spawn_app(|s| {
        s.limits.sessions_per_ipv6_network = 2;
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let mut open = Vec::new();
    for net in ["2001:db8:7:1::1", "2001:db8:7:2::1"] {
        let mut shopper = forwarded(&app, "127.0.0.1", net).await;
        shopper.hello(json!({})).await;
        open.push(shopper);
    }
    // A third /64 of the same /48.
    let third = forwarded(&app, "127.0.0.1", "2001:db8:7:3::1").await;
    assert!(refused_as_too_many(third).await);
    // Another /48 is welcome.
    let mut other = forwarded(&app, "127.0.0.1", "2001:db8:8:1::1").await;
    other.hello(json!({})).await;
}
