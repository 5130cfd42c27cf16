//! What a shop's page loads over HTTP: the widget script (type, ETag, 304,
//! gzip), a store's public widget settings (CORS for allowed origins only),
//! the operator's widget settings API with its refusals, and the demo shop.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::shopper::NODE_ORIGIN;
use crate::helpers::{Shopper, TestApp, spawn_app, spawn_app_in};

const TOKEN: &str = "operator-test-token-5e1f0a9b2c8d7e6f";

fn url(app: &TestApp, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", app.port)
}

async fn node() -> TestApp {
    spawn_app(|s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
    })
    .await
}

async fn patch(app: &TestApp, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .patch(url(app, "/v1/stores/demo/widget"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the node answers");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

async fn settings(app: &TestApp, origin: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url(app, "/v1/stores/demo/widget"));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.expect("the node answers")
}

#[actix_web::test]
async fn the_script_is_served_with_a_validator_and_compressed() {
    let app = spawn_app(|_| {}).await;
    let client = reqwest::Client::new();
    let plain = client
        .get(url(&app, "/widget.js"))
        .send()
        .await
        .expect("answers");
    assert_eq!(plain.status(), StatusCode::OK);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&plain, "content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        header(&plain, "cache-control").as_deref(),
        Some("public, max-age=300")
    );
    assert_eq!(
        header(&plain, "cross-origin-resource-policy").as_deref(),
        Some("cross-origin")
    );
    let etag = header(&plain, "etag").expect("an ETag");
    let body = plain.bytes().await.expect("a body");
    assert_eq!(&body[..], mikabot::http::assets::WIDGET_JS.as_bytes());

    let cached = client
        .get(url(&app, "/widget.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("answers");
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert!(cached.bytes().await.expect("empty").is_empty());

    let gzipped = client
        .get(url(&app, "/widget.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("answers");
    assert_eq!(
        header(&gzipped, "content-encoding").as_deref(),
        Some("gzip")
    );
    assert_eq!(header(&gzipped, "vary").as_deref(), Some("Accept-Encoding"));
    let gzip_etag = header(&gzipped, "etag").expect("an ETag");
    assert_ne!(gzip_etag, etag, "each representation has its own validator");
    let wire = gzipped.bytes().await.expect("a body");
    assert_eq!(&wire[..2], &[0x1f, 0x8b], "a gzip stream");
    let mut unzipped = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&wire[..]), &mut unzipped)
        .expect("valid gzip");
    assert_eq!(unzipped, mikabot::http::assets::WIDGET_JS);
    let refused = client
        .get(url(&app, "/widget.js"))
        .header("accept-encoding", "gzip;q=0.0, identity")
        .send()
        .await
        .expect("answers");
    assert_eq!(
        header(&refused, "content-encoding"),
        None,
        "gzip;q=0.0 refuses gzip"
    );
    let head = client
        .head(url(&app, "/widget.js"))
        .send()
        .await
        .expect("answers");
    assert_eq!(head.status(), StatusCode::OK);
    assert!(
        wire.len() <= 15 * 1024,
        "{} bytes gzipped on the wire",
        wire.len()
    );
}

#[actix_web::test]
async fn public_settings_are_shared_with_allowed_origins_only() {
    let app = spawn_app(|_| {}).await;
    let allowed = settings(&app, Some(NODE_ORIGIN)).await;
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(NODE_ORIGIN.as_bytes())
    );
    assert_eq!(
        allowed.headers().get("vary").map(|v| v.as_bytes()),
        Some(&b"Origin"[..])
    );
    let body: Value = allowed.json().await.expect("JSON");
    assert_eq!(body["store"], "demo");
    assert_eq!(body["title"], "Mika");
    assert_eq!(body["language"], "en");
    assert_eq!(body["currency"], "EUR");
    assert_eq!(body["position"], "right");
    assert_eq!(body["color"], "#1f5fbf");

    let foreign = settings(&app, Some("https://evil.example")).await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"https://evil.example"[..]),
        "the refusal is readable by the widget"
    );
    assert_eq!(
        foreign.headers().get("vary").map(|v| v.as_bytes()),
        Some(&b"Origin"[..]),
        "a shared cache keeps the refusal apart"
    );
    let body: Value = foreign.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    let without = settings(&app, None).await;
    assert_eq!(without.status(), StatusCode::OK);
    assert_eq!(
        without.headers().get("vary").map(|v| v.as_bytes()),
        Some(&b"Origin"[..]),
        "an answer without Origin varies by it too"
    );

    let unknown = reqwest::get(url(&app, "/v1/stores/nope/widget"))
        .await
        .expect("answers");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "unknown_store");
}

#[actix_web::test]
async fn the_operator_sets_branding_and_origins_and_they_last() {
    let app = node().await;
    let (status, body) = patch(&app, None, "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = patch(&app, Some("wrong"), "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    for (body, field) in [
        (r##"{"color":"blue"}"##, "color"),
        (r##"{"color":"#12345g"}"##, "color"),
        (r#"{"title":"a\nb"}"#, "title"),
        (&format!(r#"{{"title":"{}"}}"#, "x".repeat(61)), "title"),
        (
            &format!(r#"{{"greeting":"{}"}}"#, "x".repeat(301)),
            "greeting",
        ),
        (r#"{"avatar_url":"javascript:alert(1)"}"#, "avatar_url"),
        (r#"{"language":"klingon"}"#, "language"),
        (
            r#"{"allowed_origins":["https://shop.example/path"]}"#,
            "allowed_origins",
        ),
        (
            r#"{"allowed_origins":["ftp://shop.example"]}"#,
            "allowed_origins",
        ),
    ] {
        let (status, answer) = patch(&app, Some(TOKEN), body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_widget_settings");
        assert_eq!(answer["error"]["field"], field, "{body}");
    }
    for body in [
        r##"{"colour":"#000000"}"##,
        "not json",
        r#"{"position":"top"}"#,
    ] {
        let (status, answer) = patch(&app, Some(TOKEN), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_body");
    }
    let huge = format!(r#"{{"title":"{}"}}"#, "x".repeat(70 * 1024));
    let (status, answer) = patch(&app, Some(TOKEN), &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"]["code"], "payload_too_large");
    // Nothing above changed anything.
    let body: Value = settings(&app, None).await.json().await.expect("JSON");
    assert_eq!(body["color"], "#1f5fbf");

    let (status, answer) = patch(
        &app,
        Some(TOKEN),
        r##"{"color":"#0A7D5A","title":"Hulp","greeting":"Waarmee kan ik helpen?","position":"left",
            "language":"nl","avatar_url":"https://shop.example/a.png",
            "allowed_origins":["https://Shop.Example:443/","self","https://shop.example"]}"##,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["allowed_origins"],
        json!(["https://shop.example", "self"])
    );

    // The store's own shop may connect now; the old origin may not.
    let mut shopper =
        Shopper::connect_from(&app.ws_url("demo"), Some("https://shop.example")).await;
    let ready = shopper.hello(json!({"language": null})).await;
    assert_eq!(ready["language"], "nl", "the new store default");
    let mut refused = Shopper::connect_from(&app.ws_url("demo"), Some(NODE_ORIGIN)).await;
    refused.send(json!({"type": "hello", "v": 1})).await;
    let (_, code, _) = refused.until_closed().await;
    assert_eq!(code, 4403);

    let dir = app.stop().await;
    let app = spawn_app_in(dir, |_| {}).await;
    let body: Value = settings(&app, Some("https://shop.example"))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(body["color"], "#0a7d5a");
    assert_eq!(body["title"], "Hulp");
    assert_eq!(body["greeting"], "Waarmee kan ik helpen?");
    assert_eq!(body["position"], "left");
    assert_eq!(body["language"], "nl");
    assert_eq!(body["avatar_url"], "https://shop.example/a.png");
}

#[actix_web::test]
async fn the_demo_shop_embeds_the_widget_and_serves_its_products() {
    let app = spawn_app(|_| {}).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let root = client.get(url(&app, "/")).send().await.expect("answers");
    assert_eq!(root.status(), StatusCode::FOUND);
    assert_eq!(
        root.headers().get("location").map(|v| v.as_bytes()),
        Some(&b"/demo/"[..])
    );
    let index = client
        .get(url(&app, "/demo/"))
        .send()
        .await
        .expect("answers");
    assert_eq!(index.status(), StatusCode::OK);
    let html = index.text().await.expect("HTML");
    assert!(html.contains(r#"<script src="/widget.js" data-store="demo" async></script>"#));
    assert!(
        html.matches("/demo/products/").count() >= 200,
        "a product grid"
    );
    assert!(!html.contains("<script>"), "no inline script in the shop");

    let product = client
        .get(url(&app, "/demo/products/rain-jacket-01"))
        .send()
        .await
        .expect("answers");
    assert_eq!(product.status(), StatusCode::OK);
    let html = product.text().await.expect("HTML");
    assert!(html.contains("data-store=\"demo\""));
    let image = client
        .get(url(&app, "/demo/images/rain-jacket-01.svg"))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        image.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"image/svg+xml"[..])
    );
    assert!(image.text().await.expect("SVG").starts_with("<svg"));
    for missing in [
        "/demo/products/nope",
        "/demo/images/nope.svg",
        "/demo/images/rain-jacket-01.png",
    ] {
        let response = client
            .get(url(&app, missing))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], "not_found");
    }

    let off = spawn_app(|s| s.demo.enabled = false).await;
    let response = client
        .get(url(&off, "/demo/"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn an_unknown_route_answers_with_a_json_not_found() {
    let app = node().await;
    for (method, path) in [
        (reqwest::Method::GET, "/v1/nothing-here"),
        (reqwest::Method::DELETE, "/v1/stores/demo/catalog"),
    ] {
        let response = reqwest::Client::new()
            .request(method.clone(), url(&app, path))
            .send()
            .await
            .expect("the node answers");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["error"]["code"], "not_found", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(path)),
            "{body}"
        );
    }
}

#[actix_web::test]
async fn metrics_count_what_a_chat_did() {
    let app = node().await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "a warm rain jacket").await;
    assert_eq!(reply.end["type"], "done");
    shopper.send(json!({"type": "dance"})).await;
    assert_eq!(shopper.next().await.json()["code"], "unknown_frame_type");

    let response = reqwest::get(url(&app, "/metrics")).await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().expect("ASCII");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.expect("text");
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .parse()
            .expect("a number")
    };
    assert_eq!(value("mikabot_sessions_opened_total"), 1.0);
    assert_eq!(value("mikabot_live_sessions"), 1.0);
    assert_eq!(value("mikabot_stores"), 1.0);
    assert_eq!(value("mikabot_messages_acknowledged_total"), 1.0);
    assert_eq!(value("mikabot_replies_total{finish=\"stop\"}"), 1.0);
    assert_eq!(
        value("mikabot_tokens_streamed_total"),
        reply.tokens.len() as f64
    );
    assert_eq!(
        value("mikabot_model_requests_total{provider=\"offline\",outcome=\"ok\",status=\"0\"}"),
        1.0
    );
    assert_eq!(
        value("mikabot_errors_total{code=\"unknown_frame_type\"}"),
        1.0
    );
    assert_eq!(
        value("mikabot_first_token_seconds_count{part=\"total\"}"),
        1.0
    );
    assert_eq!(
        value("mikabot_first_token_seconds_count{part=\"added\"}"),
        1.0
    );
    assert_eq!(value("mikabot_message_to_ack_seconds_count"), 1.0);
    assert!(value("mikabot_storage_flush_seconds_count") >= 1.0);
    assert_eq!(value("mikabot_replies_in_flight"), 0.0);

    shopper.close().await;
    app.wait_for_live_sessions(0).await;
    let text = reqwest::get(url(&app, "/metrics"))
        .await
        .expect("answer")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("mikabot_sessions_closed_total{reason=\"client_closed\"} 1"),
        "{text}"
    );
    // No label names a session or a conversation.
    for id in [&ready["session_id"], &ready["conversation_id"]] {
        let id = id.as_str().expect("an id");
        assert!(!text.contains(id), "{id} is a label");
    }
}

#[actix_web::test]
async fn html_pages_carry_a_strict_policy_and_https_nodes_hsts() {
    let app = spawn_app(|_| {}).await;
    let page = reqwest::get(url(&app, "/demo/")).await.expect("answer");
    assert_eq!(page.status(), StatusCode::OK);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let policy = header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
    assert!(
        !policy.contains("script-src 'self' 'unsafe-inline'"),
        "{policy}"
    );
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(
        header("referrer-policy").as_deref(),
        Some("strict-origin-when-cross-origin")
    );
    assert_eq!(header("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(header("strict-transport-security"), None, "plain http");
    let json = reqwest::get(url(&app, "/healthz")).await.expect("answer");
    assert_eq!(json.headers()["x-content-type-options"], "nosniff");
    assert!(json.headers().get("content-security-policy").is_none());

    let https = spawn_app(|s| s.server.public_url = "https://shop-node.example".into()).await;
    let page = reqwest::get(url(&https, "/healthz")).await.expect("answer");
    assert_eq!(
        page.headers()
            .get("strict-transport-security")
            .map(|v| v.as_bytes()),
        Some(&b"max-age=31536000"[..])
    );
}

#[actix_web::test]
async fn the_echo_socket_is_served_only_when_configured() {
    let app = node().await;
    let response = reqwest::get(url(&app, "/v1/echo")).await.expect("answer");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let on = spawn_app(|s| s.server.echo_socket = true).await;
    let url = format!("ws://127.0.0.1:{}/v1/echo", on.port);
    let mut socket = Shopper::connect_from(&url, None).await;
    socket
        .send(json!({"type": "anything", "echoed": true}))
        .await;
    assert_eq!(
        socket.next().await.json(),
        json!({"type": "anything", "echoed": true})
    );
}
