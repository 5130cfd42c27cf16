//! `attack`: a hostile client against a node with its default bounds, from
//! one IPv4 address and from one IPv6 /64 (rotating addresses inside it,
//! through a trusted proxy's `X-Forwarded-For`, as behind nginx). Attackers
//! open sessions as fast as they can, start new conversations and send
//! messages without pause. Meanwhile one ordinary shopper from another
//! address asks a question every two seconds. The report gives the node's
//! memory, the data directory's growth and the model requests, against the
//! bounds the configuration sets, and the shopper's latency before and
//! during the attack. All traffic stays on loopback; every loop ends at
//! the deadline.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mikabot_test_support::model::{Behavior, FakeOpenAi, Options, Shape};
use mikabot_test_support::shopper::{Connect, Shopper};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::node::RunningNode;
use crate::report::{Counts, Machine, Summary, add, counts_text, kib, secs, table};
use crate::{Common, FRAME_LIMIT, STORE};

#[derive(Clone, Debug)]
pub struct AttackOptions {
    pub duration: Duration,
    /// How long the shopper asks alone first, for its normal latency.
    pub baseline: Duration,
    /// Attacking loops from each of the two sources.
    pub loops: usize,
    pub shape: Shape,
}

#[derive(Clone, Debug, Serialize)]
pub struct AttackReport {
    pub machine: Machine,
    pub duration_secs: f64,
    pub loops_per_source: usize,
    pub sessions_attempted: u64,
    pub messages_attempted: u64,
    /// What the attackers were told, by code (and how their sockets ended).
    pub attacker_outcomes: Counts,
    pub node_rss_before_kib: Option<f64>,
    pub node_rss_peak_kib: Option<f64>,
    pub data_dir_before_kib: f64,
    pub data_dir_after_kib: f64,
    pub model_requests: u64,
    /// The most model requests the bounds allow in the run: per address a
    /// minute, for the two attacking sources and the shopper.
    pub model_requests_bound: u64,
    /// The ordinary shopper's message → `done`, before and during.
    pub shopper_before: Summary,
    pub shopper_during: Summary,
    pub shopper_errors: Counts,
}

/// The node's bounds the report holds it to (the defaults).
const MESSAGES_PER_ADDRESS_PER_MINUTE: u64 = 30;

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// One attacking loop: sessions opened and spammed until the deadline.
async fn attacker(
    connect: impl Fn(u64) -> Connect,
    end: Instant,
    sessions: Arc<AtomicU64>,
    messages: Arc<AtomicU64>,
    outcomes: Arc<Mutex<Counts>>,
) {
    let mut n = 0_u64;
    while Instant::now() < end {
        n += 1;
        sessions.fetch_add(1, Ordering::Relaxed);
        let label = match Shopper::open(&connect(n)).await {
            Err(failure) => failure.label(),
            Ok(mut shopper) => match shopper.try_hello(FRAME_LIMIT).await {
                Err(failure) => failure.label(),
                Ok(_) => {
                    // As many messages as it can, until refused or closed.
                    let mut last = "sent".to_owned();
                    for m in 0..50 {
                        if Instant::now() >= end {
                            break;
                        }
                        messages.fetch_add(1, Ordering::Relaxed);
                        let text = format!("give me every tent you have, now #{n}{m}");
                        if shopper.try_message(&format!("a{m}"), &text).await.is_err() {
                            break;
                        }
                        match shopper
                            .try_next::<serde_json::Value>(Duration::from_secs(5))
                            .await
                        {
                            Ok(frame) if frame["type"] == "error" => {
                                last = frame["code"].as_str().unwrap_or("error").to_owned();
                                add(&mut *outcomes.lock().await, last.clone());
                                if frame["code"] != "rate_limited" {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(failure) => {
                                last = failure.label();
                                break;
                            }
                        }
                    }
                    shopper.close().await;
                    format!(
                        "session_ended_after_{}",
                        if last == "sent" {
                            "messages"
                        } else {
                            "refusal"
                        }
                    )
                }
            },
        };
        add(&mut *outcomes.lock().await, label);
    }
}

/// The ordinary shopper: a question every two seconds until `end`.
async fn shopper_loop(connect: Connect, end: Instant) -> (Vec<u64>, Counts) {
    let mut latencies = Vec::new();
    let mut errors = Counts::new();
    let Ok(mut shopper) = Shopper::open(&connect).await else {
        add(&mut errors, "connect".into());
        return (latencies, errors);
    };
    if let Err(failure) = shopper.try_hello(FRAME_LIMIT).await {
        add(&mut errors, failure.label());
        return (latencies, errors);
    }
    let mut n = 0;
    while Instant::now() < end {
        n += 1;
        let asked = Instant::now();
        if shopper
            .try_message(&format!("s{n}"), "a warm rain jacket")
            .await
            .is_err()
        {
            add(&mut errors, "send".into());
            break;
        }
        loop {
            match shopper.try_next::<serde_json::Value>(FRAME_LIMIT).await {
                Ok(frame) if frame["type"] == "done" => {
                    latencies.push(asked.elapsed().as_nanos() as u64);
                    break;
                }
                Ok(frame) if frame["type"] == "error" => {
                    add(
                        &mut errors,
                        frame["code"].as_str().unwrap_or("error").to_owned(),
                    );
                    break;
                }
                Ok(_) => {}
                Err(failure) => {
                    add(&mut errors, failure.label());
                    return (latencies, errors);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    shopper.close().await;
    (latencies, errors)
}

pub async fn attack(common: &Common, options: &AttackOptions) -> anyhow::Result<AttackReport> {
    crate::report::raise_open_files_limit();
    let model = Arc::new(FakeOpenAi::start_with(Options {
        port: common.model_port,
        workers: common.model_workers,
        record_requests: false,
        fallback: Behavior::Shaped(options.shape),
    })?);
    let dir = tempfile::tempdir()?;
    // The node's own bounds, as shipped; only the proxy is configured.
    let env = crate::node::node_env(
        &model.base_url,
        dir.path(),
        &[("MIKABOT__SERVER__TRUSTED_PROXIES", "127.0.0.1")],
    );
    let mut node = RunningNode::start_on(&common.node, env, dir.path()).await?;
    let url = node.ws_url(STORE);
    let origin = node.origin();
    let connect = move |source: &str, forwarded: Option<String>| Connect {
        url: url.clone(),
        origin: Some(origin.clone()),
        source: Some(source.parse::<IpAddr>().expect("a loopback address")),
        small_buffers: true,
        headers: forwarded
            .map(|f| vec![("x-forwarded-for".to_owned(), f)])
            .unwrap_or_default(),
    };
    let shopper_connect = connect("127.0.0.9", None);

    // The ordinary shopper alone first: its normal latency.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = node.rss();
    let disk_before = dir_size(dir.path());
    let requests_before = model.request_count();
    let (before, _) =
        shopper_loop(shopper_connect.clone(), Instant::now() + options.baseline).await;

    let started = Instant::now();
    let end = started + options.duration;
    let sessions = Arc::new(AtomicU64::new(0));
    let messages = Arc::new(AtomicU64::new(0));
    let outcomes = Arc::new(Mutex::new(Counts::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..options.loops {
        let from_v4 = connect.clone();
        let from_v6 = connect.clone();
        let sources: [Box<dyn Fn(u64) -> Connect + Send>; 2] = [
            Box::new(move |_: u64| from_v4("127.0.0.66", None)),
            Box::new(move |n: u64| {
                // A fresh address inside one /64 for every session.
                from_v6(
                    "127.0.0.1",
                    Some(format!("2001:db8:66:1:{i:x}:{:x}::1", n % 65536)),
                )
            }),
        ];
        for attack in sources {
            tasks.spawn(attacker(
                attack,
                end,
                Arc::clone(&sessions),
                Arc::clone(&messages),
                Arc::clone(&outcomes),
            ));
        }
    }
    let during = tokio::spawn(shopper_loop(shopper_connect, end));
    let mut peak = rss_before;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak = peak.max(node.rss());
    }
    let (during, shopper_errors) = during.await?;
    let _ = tokio::time::timeout(FRAME_LIMIT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let elapsed = started.elapsed();
    let requests = model.request_count() - requests_before;
    let disk_after = dir_size(dir.path());
    node.stop().await?;
    model.stop().await;
    let minutes = (elapsed.as_secs_f64() / 60.0).ceil() as u64;
    let outcomes = outcomes.lock().await.clone();
    Ok(AttackReport {
        machine: Machine::here(),
        duration_secs: secs(elapsed),
        loops_per_source: options.loops,
        sessions_attempted: sessions.load(Ordering::Relaxed),
        messages_attempted: messages.load(Ordering::Relaxed),
        attacker_outcomes: outcomes,
        node_rss_before_kib: rss_before.map(kib),
        node_rss_peak_kib: peak.map(kib),
        data_dir_before_kib: kib(disk_before),
        data_dir_after_kib: kib(disk_after),
        model_requests: requests,
        // Two attacking keys and the shopper, each with a minute's burst
        // and refills for every minute begun.
        model_requests_bound: 3 * MESSAGES_PER_ADDRESS_PER_MINUTE * (minutes + 1),
        shopper_before: Summary::of(before),
        shopper_during: Summary::of(during),
        shopper_errors,
    })
}

impl AttackReport {
    pub fn markdown(&self) -> String {
        let mib = |kib: Option<f64>| {
            kib.map_or("not measured".into(), |k| format!("{:.1} MiB", k / 1024.0))
        };
        let ms = |s: &Summary| {
            format!(
                "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} replies)",
                s.p50_us / 1000.0,
                s.p99_us / 1000.0,
                s.max_us / 1000.0,
                s.count
            )
        };
        table(
            &format!(
                "attack: {:.0} s from one IPv4 address and one IPv6 /64, {} loops each",
                self.duration_secs, self.loops_per_source
            ),
            &[
                ("sessions attempted", self.sessions_attempted.to_string()),
                ("messages attempted", self.messages_attempted.to_string()),
                ("attackers were told", counts_text(&self.attacker_outcomes)),
                ("model requests", self.model_requests.to_string()),
                (
                    "model requests the bounds allow",
                    self.model_requests_bound.to_string(),
                ),
                ("node RSS before", mib(self.node_rss_before_kib)),
                ("node RSS peak", mib(self.node_rss_peak_kib)),
                (
                    "data directory",
                    format!(
                        "{:.1} MiB → {:.1} MiB",
                        self.data_dir_before_kib / 1024.0,
                        self.data_dir_after_kib / 1024.0
                    ),
                ),
                ("shopper before the attack", ms(&self.shopper_before)),
                ("shopper during the attack", ms(&self.shopper_during)),
                ("shopper errors", counts_text(&self.shopper_errors)),
            ],
        )
    }
}
