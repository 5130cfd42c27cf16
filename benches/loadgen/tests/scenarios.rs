//! The load generator runs its three scenarios against a real node, small:
//! in this process, and in a child process killed before the storage check.

use std::time::Duration;

use mikabot_loadgen::node::NodeChoice;
use mikabot_loadgen::{self as loadgen, BurstOptions, ChatOptions, Common, IdleOptions};
use mikabot_test_support as helpers;
use mikabot_test_support::model::Shape as ModelShape;

fn common(node: NodeChoice) -> Common {
    Common {
        node,
        sources: 4,
        model_port: 0,
        model_workers: 1,
    }
}

fn quick_model() -> ModelShape {
    ModelShape {
        ttft: Duration::from_millis(20),
        tokens_per_sec: 200.0,
        reply_tokens: 12,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_open_are_held_and_measured() {
    let options = IdleOptions {
        sessions: 60,
        hold: Duration::from_millis(200),
        concurrency: 16,
    };
    let report = loadgen::idle(&common(NodeChoice::InProcess), &options)
        .await
        .expect("the idle run completes");
    assert_eq!(report.sessions_open, 60, "{:?}", report.failures);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.dropped_while_held, 0);
    assert!(report.rss_held_kib.is_some_and(|kib| kib > 0.0));
    assert!(report.kib_per_session.is_some());
    assert_eq!(report.run.node, "in process");
    assert!(!report.run.node_measured_alone);
    assert!(report.markdown().contains("| sessions open | 60 |"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_measures_every_token_against_the_models_own_timing() {
    let options = ChatOptions {
        shoppers: 8,
        duration: Duration::from_secs(1),
        shape: quick_model(),
        stores: 1,
        watchers: 0,
    };
    let report = loadgen::chat(&common(NodeChoice::InProcess), &options)
        .await
        .expect("the chat run completes");
    assert_eq!(report.connected, 8);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.replies_completed >= 8, "{report:?}");
    assert_eq!(report.tokens_received, report.replies_completed * 12);
    // Every token and every first token was matched to the model's write.
    assert_eq!(
        report.added_latency_per_token.count as u64,
        report.tokens_received
    );
    assert_eq!(
        report.added_time_to_first_token.count as u64,
        report.replies_completed
    );
    assert_eq!(report.time_to_ack.count as u64, report.replies_completed);
    let latency = &report.added_latency_per_token;
    assert!(latency.p50_us > 0.0 && latency.p50_us <= latency.p99_us);
    assert!(latency.p99_us <= latency.max_us);
    assert!(report.model_requests >= report.replies_completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_on_several_stores_get_every_live_token_measured() {
    let options = ChatOptions {
        shoppers: 6,
        duration: Duration::from_secs(2),
        shape: ModelShape {
            // Replies long enough that a watcher moving on finds another
            // one streaming.
            reply_tokens: 40,
            tokens_per_sec: 80.0,
            ..quick_model()
        },
        stores: 2,
        watchers: 2,
    };
    let report = loadgen::chat(&common(NodeChoice::InProcess), &options)
        .await
        .expect("the chat run completes");
    assert_eq!(report.stores, 2);
    assert_eq!(report.connected, 6);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.added_latency_per_token.count as u64,
        report.tokens_received
    );
    let watchers = report.watchers.as_ref().expect("the watchers' figures");
    assert_eq!(watchers.connected, 2);
    assert!(watchers.errors.is_empty(), "{:?}", watchers.errors);
    assert_eq!(watchers.dropped_as_too_slow, 0);
    assert!(watchers.replies_watched >= 2, "{watchers:?}");
    assert!(watchers.tokens_received > 0, "{watchers:?}");
    // Each live token a watcher read was matched to the model's write.
    assert_eq!(
        watchers.added_latency_per_token.count as u64,
        watchers.tokens_received
    );
    assert!(
        report
            .markdown()
            .contains("| watchers connected | 2 of 2 |")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_loses_no_acknowledged_message_even_when_the_node_is_killed() {
    let node = NodeChoice::Child {
        exe: env!("CARGO_BIN_EXE_loadgen").into(),
    };
    let options = BurstOptions {
        shoppers: 120,
        shape: quick_model(),
    };
    let mut common = common(node);
    common.sources = 8;
    let report = loadgen::burst(&common, &options)
        .await
        .expect("the burst completes");
    // 120 shoppers over 8 addresses: 15 each, within the node's defaults
    // of 60 new sessions per address and minute and 20 open at once.
    assert_eq!(report.sessions_opened, 120, "{:?}", report.refused);
    assert_eq!(report.messages_acknowledged, 120);
    assert_eq!(report.acknowledged_lost, Some(0));
    assert!(
        report.how_checked.contains("SIGKILL"),
        "{}",
        report.how_checked
    );
    assert!(report.run.node_measured_alone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_per_address_limit_is_refused_by_code() {
    let mut common = common(NodeChoice::InProcess);
    common.sources = 1;
    let options = BurstOptions {
        shoppers: 90,
        shape: quick_model(),
    };
    let report = loadgen::burst(&common, &options)
        .await
        .expect("the burst completes");
    // One address: at most 60 new sessions a minute and 20 open at once;
    // every shopper turned away is told why.
    let refused = report
        .refused
        .get("too_many_sessions")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        report.sessions_opened as u64 + refused,
        90,
        "{:?}",
        report.refused
    );
    assert!(report.sessions_opened <= 60, "{}", report.sessions_opened);
    assert!(refused >= 30, "{refused}");
    assert_eq!(report.messages_acknowledged, report.sessions_opened);
    assert_eq!(report.acknowledged_lost, Some(0));
}

#[test]
fn bad_command_lines_exit_with_a_usage_error() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["chat", "--tokens-per-sec", "0"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tokens-per-sec"), "{stderr}");
}

/// A node started on its own, whose model base URL points at the port the
/// load generator's model will take; `Common` aimed at it.
async fn running_node(
    tweak: impl FnOnce(&mut mikabot::config::Settings) + 'static,
) -> (helpers::TestApp, Common) {
    let model_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let app = helpers::spawn_app(move |s| {
        s.model.provider = mikabot::config::ProviderChoice::Openai;
        s.model.base_url = format!("http://127.0.0.1:{model_port}/v1");
        s.widget.new_sessions_per_ip_per_minute = 100_000;
        tweak(s);
    })
    .await;
    let mut common = common(NodeChoice::External {
        addr: ([127, 0, 0, 1], app.port).into(),
        pid: None,
    });
    common.model_port = model_port;
    (app, common)
}

#[actix_web::test]
async fn a_running_node_is_measured_through_its_address_and_the_model_port() {
    let (_app, common) = running_node(|_| {}).await;
    let options = ChatOptions {
        shoppers: 3,
        duration: Duration::from_millis(500),
        shape: quick_model(),
        stores: 1,
        watchers: 0,
    };
    let report = loadgen::chat(&common, &options)
        .await
        .expect("the chat run completes");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.replies_completed >= 3);
    assert_eq!(
        report.added_latency_per_token.count as u64,
        report.tokens_received
    );
    assert_eq!(report.node_cpu_percent_of_one_core, None, "no pid given");

    let idle = IdleOptions {
        sessions: 10,
        hold: Duration::ZERO,
        concurrency: 4,
    };
    let report = loadgen::idle(&common, &idle).await.expect("the idle run");
    assert_eq!(report.sessions_open, 10);
    assert_eq!(report.kib_per_session, None);
    assert!(
        report
            .markdown()
            .contains("| memory per idle session | not measured |")
    );
}

#[actix_web::test]
async fn a_rate_limited_shopper_waits_as_told_instead_of_asking_again_at_once() {
    let (_app, common) = running_node(|s| s.widget.messages_per_minute = 2).await;
    let options = ChatOptions {
        shoppers: 1,
        duration: Duration::from_secs(2),
        shape: quick_model(),
        stores: 1,
        watchers: 0,
    };
    let report = loadgen::chat(&common, &options)
        .await
        .expect("the chat run completes");
    assert_eq!(report.replies_completed, 2);
    // Told to wait about 30 s, the shopper waits out the run: one refusal.
    assert_eq!(
        report.errors.get("rate_limited"),
        Some(&1),
        "{:?}",
        report.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_the_node_loses_nothing_it_confirmed() {
    let node = NodeChoice::Child {
        exe: env!("CARGO_BIN_EXE_loadgen").into(),
    };
    let options = loadgen::CrashOptions {
        iterations: 3,
        shoppers: 12,
        max_run: Duration::from_millis(1500),
        shape: quick_model(),
    };
    let report = loadgen::crash(&common(node), &options)
        .await
        .expect("the loop completes");
    assert!(report.messages_acknowledged > 0, "{report:?}");
    assert!(report.replies_completed > 0, "{report:?}");
    assert_eq!(report.acknowledged_lost, 0, "{report:?}");
    assert_eq!(report.completed_replies_lost, 0, "{report:?}");
    assert_eq!(report.undecodable_records, 0, "{report:?}");
    assert!(
        report.records_checked > 210,
        "the demo catalog and more: {report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attack_stays_within_the_bounds_and_the_shopper_is_served() {
    let node = NodeChoice::Child {
        exe: env!("CARGO_BIN_EXE_loadgen").into(),
    };
    let options = loadgen::AttackOptions {
        duration: Duration::from_secs(4),
        baseline: Duration::from_secs(1),
        loops: 4,
        shape: quick_model(),
    };
    let report = loadgen::attack(&common(node), &options)
        .await
        .expect("the attack completes");
    assert!(report.sessions_attempted > 100, "{report:?}");
    assert!(
        report.attacker_outcomes.contains_key("too_many_sessions"),
        "{:?}",
        report.attacker_outcomes
    );
    assert!(
        report.model_requests <= report.model_requests_bound,
        "{report:?}"
    );
    assert!(
        report.shopper_errors.is_empty(),
        "{:?}",
        report.shopper_errors
    );
    assert!(report.shopper_during.count >= 1, "{report:?}");
}
