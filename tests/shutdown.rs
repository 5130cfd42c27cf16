//! Stopping the node binary with SIGTERM while 50 replies stream: sessions
//! are told `server_shutdown`, replies that can finish within
//! `server.shutdown_timeout_secs` finish, the rest are cut, and every one
//! is in storage (complete, or marked incomplete) when the process is gone,
//! within the bound.

use std::time::{Duration, Instant};

use mikabot::storage::Storage;
use mikabot_actors::ids::{SessionId, StoreId};
use mikabot_actors::log::ConversationLog;
use mikabot_actors::prompt::Role;
use serde_json::json;

use crate::helpers::process::NodeProcess;
use crate::helpers::{Behavior, FakeOpenAi, Shopper};

const SHOPPERS: usize = 50;
const SHUTDOWN_TIMEOUT_SECS: u64 = 3;

fn words(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!(" {prefix}{i}")).collect()
}

#[actix_web::test]
async fn sigterm_during_fifty_replies_stores_every_one_and_exits_within_the_bound() {
    let fake = FakeOpenAi::start().await;
    let delay = Duration::from_millis(100);
    // Half the replies end half a second after they start; half would take
    // half a minute.
    let short = words("short", 5);
    let long = words("long", 300);
    fake.script((0..SHOPPERS).map(|i| Behavior::Stream {
        tokens: if i % 2 == 0 {
            short.clone()
        } else {
            long.clone()
        },
        delay,
    }));
    let dir = tempfile::tempdir().expect("temp dir");
    let timeout = SHUTDOWN_TIMEOUT_SECS.to_string();
    let mut node = NodeProcess::start(
        env!("CARGO_BIN_EXE_mikabot").as_ref(),
        dir.path(),
        &[
            ("MIKABOT__MODEL__PROVIDER", "openai"),
            ("MIKABOT__MODEL__BASE_URL", &fake.base_url),
            ("MIKABOT__SERVER__SHUTDOWN_TIMEOUT_SECS", &timeout),
            // All 50 shoppers come from one address.
            ("MIKABOT__LIMITS__SESSIONS_PER_ADDRESS", "100"),
            ("MIKABOT__LIMITS__MESSAGES_PER_ADDRESS_PER_MINUTE", "100"),
            (
                "MIKABOT__LIMITS__NEW_CONVERSATIONS_PER_ADDRESS_PER_HOUR",
                "100",
            ),
            ("MIKABOT__LOG__FILTER", "warn,mikabot::startup=info"),
        ],
    );

    let mut shoppers = Vec::new();
    for i in 0..SHOPPERS {
        let mut shopper = Shopper::connect(&node.ws_url("demo")).await;
        let ready = shopper.hello(json!({})).await;
        shopper.message("c1", &format!("a tent for trip {i}")).await;
        assert_eq!(shopper.next().await.json()["type"], "ack");
        let session = ready["session_id"]
            .as_str()
            .expect("a session id")
            .to_owned();
        shoppers.push((shopper, session));
    }
    // Every reply is streaming: each shopper has its first token.
    for (shopper, _) in &mut shoppers {
        assert_eq!(shopper.next().await.json()["type"], "token");
    }

    node.terminate();
    let signalled = Instant::now();
    for (shopper, _) in &mut shoppers {
        let (frames, close, reason) = shopper.until_closed().await;
        assert_eq!((close, reason.as_str()), (1001, "server_shutdown"));
        assert_eq!(
            frames.last().map(|f| f["code"].clone()),
            Some(json!("server_shutdown"))
        );
    }
    let bound = Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 10);
    let status = tokio::task::spawn_blocking(move || {
        let status = node.wait_for_exit(bound);
        (status, node.log())
    })
    .await
    .expect("the wait ends");
    let (status, log) = status;
    let status = status.unwrap_or_else(|| panic!("the node still ran after {bound:?}: {log:#?}"));
    assert!(status.success(), "exit {status}: {log:#?}");
    let took = signalled.elapsed();
    assert!(took < bound, "the node took {took:?} to exit");

    let storage = Storage::open(&mikabot::storage::StorageOptions::in_dir(dir.path()))
        .expect("the data directory opens");
    let store = StoreId::parse("demo").expect("valid");
    let (short_text, long_text) = (short.concat(), long.concat());
    let (mut complete, mut incomplete) = (0, 0);
    for (_, session) in &shoppers {
        let session = SessionId::parse(session).expect("a session id");
        let meta = storage
            .find_session(&store, session)
            .expect("storage reads")
            .expect("the conversation is stored");
        let history = storage
            .history(&store, meta.conversation, usize::MAX)
            .expect("history reads");
        let replies: Vec<_> = history
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .collect();
        assert_eq!(replies.len(), 1, "one stored reply: {history:?}");
        let reply = replies[0];
        let outcome = reply.reply.as_ref().expect("a reply outcome");
        if outcome.incomplete {
            incomplete += 1;
            assert!(outcome.finish.is_none());
            assert!(
                !reply.text.is_empty() && long_text.starts_with(&reply.text),
                "a cut reply keeps what was generated: {:?}",
                reply.text
            );
        } else {
            complete += 1;
            assert_eq!(reply.text, short_text);
        }
    }
    assert_eq!(
        (complete, incomplete),
        (SHOPPERS / 2, SHOPPERS / 2),
        "short replies finish, long ones are cut"
    );
}
