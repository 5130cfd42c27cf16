//! What the node logs during a chat, read from a real process at its most
//! verbose for Mikabot's own code, in JSON: every line is a JSON object,
//! session and reply lines carry their spans (store, a short session id),
//! and no line holds the shopper's message, the reply's text, the client's
//! address (direct or forwarded) or a secret.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::helpers::process::NodeProcess;
use crate::helpers::shopper::Connect;
use crate::helpers::{Behavior, FakeOpenAi, Shopper};

const MESSAGE: &str = "parcel-7731 please find me a tent for two";
const REPLY: &[&str] = &["reply-4409 ", "the Alpine tent fits two."];
const API_KEY: &str = "sk-test-0c5e1f2a9b8d7e6f";
const OPERATOR_TOKEN: &str = "operator-token-5d4c3b2a-77e1f09a-c3d2b1a0";
const FORWARDED: &str = "203.0.113.77";
const DIRECT: &str = "127.0.0.23";

#[actix_web::test]
async fn a_chat_logs_its_spans_and_never_its_text_addresses_or_secrets() {
    let fake = FakeOpenAi::start().await;
    // The first request is refused with a body that echoes the message, as
    // providers and proxies do; the retry answers.
    fake.script([Behavior::Error {
        status: 400,
        body: json!({"error": {
            "message": format!("could not process: {MESSAGE}"),
            "type": "invalid_request_error",
            "code": null,
        }}),
    }]);
    fake.always(Behavior::reply(REPLY));
    let dir = tempfile::tempdir().expect("temp dir");
    let node = NodeProcess::start(
        env!("CARGO_BIN_EXE_mikabot").as_ref(),
        dir.path(),
        &[
            ("MIKABOT__MODEL__PROVIDER", "openai"),
            ("MIKABOT__MODEL__BASE_URL", &fake.base_url),
            ("MIKABOT__MODEL__API_KEY", API_KEY),
            ("MIKABOT__OPERATOR__API_TOKEN", OPERATOR_TOKEN),
            ("MIKABOT__SERVER__TRUSTED_PROXIES", "127.0.0.0/8"),
            ("MIKABOT__LOG__FORMAT", "json"),
            (
                "MIKABOT__LOG__FILTER",
                "mikabot=trace,mikabot_actors=trace,info",
            ),
        ],
    );
    let direct: IpAddr = DIRECT.parse().expect("an address");
    let mut sessions = Vec::new();
    for forwarded in [true, false] {
        let mut options = Connect::to(&node.ws_url("demo"));
        options.source = Some(direct);
        if forwarded {
            options.headers = vec![("x-forwarded-for".into(), FORWARDED.into())];
        }
        let mut shopper = Shopper::open(&options).await.expect("the socket opens");
        let ready = shopper
            .hello(json!({"page_url": "https://shop.example/tents"}))
            .await;
        let reply = shopper.ask("c1", MESSAGE).await;
        if forwarded {
            // The refused request is not retried: the reply failed.
            assert_eq!(reply.end["code"], "model_unavailable", "{}", reply.end);
            let again = shopper.ask("c2", MESSAGE).await;
            assert_eq!(again.text(), REPLY.concat());
        } else {
            assert_eq!(reply.text(), REPLY.concat());
        }
        sessions.push(ready["session_id"].as_str().expect("a session").to_owned());
        shopper.close().await;
    }
    // The model saw the message and the key: the test's secrets are real.
    let asked = fake.requests();
    assert!(asked[0].body.to_string().contains(MESSAGE));
    assert_eq!(
        asked[0].authorization.as_deref(),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    // A moment for the last lines to be written.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = node.log();
    assert!(log.len() > 5, "the node logged: {log:#?}");
    assert!(
        log.iter()
            .any(|line| line.contains("reply failed") && line.contains("invalid_request_error")),
        "the refusal is logged by its kind: {log:#?}"
    );

    for line in &log {
        for secret in [
            MESSAGE,
            "parcel-7731",
            REPLY[0].trim(),
            API_KEY,
            OPERATOR_TOKEN,
            FORWARDED,
            DIRECT,
        ] {
            assert!(!line.contains(secret), "{secret:?} was logged: {line}");
        }
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not a JSON line: {line}");
    }
    let lines: Vec<Value> = log
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    for session in &sessions {
        let short = &session[session.len() - 8..];
        let in_span = |line: &&Value, name: &str| {
            line["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|span| span["name"] == "session" && span["session"] == short)
                    && spans.iter().any(|span| span["name"] == name)
            })
        };
        let ready = lines
            .iter()
            .find(|line| line["fields"]["message"] == "session ready" && in_span(line, "session"));
        let ready = ready.unwrap_or_else(|| panic!("no 'session ready' line for {short}"));
        assert_eq!(ready["span"]["store"], "demo", "{ready}");
        assert!(
            lines.iter().any(|line| in_span(&line, "reply")),
            "no line of the reply of session {short}"
        );
    }
}
