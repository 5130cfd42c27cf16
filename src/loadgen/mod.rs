//! The load generator behind `cargo run --release --bin loadgen`: simulated
//! shoppers on real sockets against a real node whose model is
//! [`model::FakeModel`], an OpenAI-compatible streaming server of known
//! speed. Three scenarios: `idle` (memory per held session), `chat`
//! (latency the node adds to each token and to the first one) and `burst`
//! (refusals under a rush, and no acknowledged message lost). Every loop is
//! bounded in count and time; all traffic stays on loopback.

pub mod cli;
pub mod client;
pub mod model;
pub mod node;
pub mod report;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mikabot_actors::ids::{SessionId, StoreId};
use mikabot_actors::log::ConversationLog;
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore, watch};

use self::client::{Failure, Shopper, Target, source_address};
use self::model::{FakeModel, ModelShape, Timeline};
use self::node::{NodeChoice, RunningNode};
use self::report::{Counts, Machine, Summary, add, counts_text, kib, secs, table};

/// The store every simulated shopper talks to (the demo store).
pub const STORE: &str = "demo";
/// Longest wait for any one frame.
const FRAME_LIMIT: Duration = Duration::from_secs(30);

/// Options every scenario shares.
#[derive(Clone, Debug)]
pub struct Common {
    pub node: NodeChoice,
    /// Loopback source addresses to spread shoppers over (127.0.0.2 on).
    pub sources: usize,
    /// Port for the model server (0: any free port). A running node's model
    /// base URL must point at it.
    pub model_port: u16,
    pub model_workers: usize,
}

/// What every report starts with.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub scenario: &'static str,
    pub machine: Machine,
    pub node: &'static str,
    /// Whether memory and CPU figures are the node's alone.
    pub node_measured_alone: bool,
    pub sources: usize,
    pub unix_time: u64,
}

struct Rig {
    model: Arc<FakeModel>,
    node: RunningNode,
    target: Target,
    info: RunInfo,
}

async fn rig(
    scenario: &'static str,
    common: &Common,
    shape: ModelShape,
    scenario_env: &[(&str, &str)],
) -> anyhow::Result<Rig> {
    report::raise_open_files_limit();
    let model = Arc::new(FakeModel::start(
        shape,
        common.model_workers,
        common.model_port,
    )?);
    let dir = tempfile::tempdir().context("creating the node's data directory")?;
    let env = node::node_env(&model.base_url, dir.path(), scenario_env);
    let node = RunningNode::start(&common.node, env, dir).await?;
    let target = Target {
        node: node.addr,
        url: node.ws_url(STORE),
        origin: node.origin(),
    };
    let info = RunInfo {
        scenario,
        machine: Machine::here(),
        node: node.kind_name,
        node_measured_alone: node.measured_alone(),
        sources: common.sources,
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    Ok(Rig {
        model,
        node,
        target,
        info,
    })
}

/// Scenarios that need many sessions from one address lift the node's
/// per-address limit on new sessions (unless the environment sets it).
const MANY_SESSIONS: (&str, &str) = (
    "MIKABOT__WIDGET__NEW_SESSIONS_PER_IP_PER_MINUTE",
    "100000000",
);

fn source(common: &Common, i: usize) -> IpAddr {
    source_address(i, common.sources)
}

// ---------------------------------------------------------------- idle

#[derive(Clone, Debug)]
pub struct IdleOptions {
    pub sessions: usize,
    /// How long the open sessions are held (heartbeats keep running).
    pub hold: Duration,
    /// Sessions being opened at once.
    pub concurrency: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct IdleReport {
    pub run: RunInfo,
    pub sessions_requested: usize,
    pub sessions_open: usize,
    pub failures: Counts,
    pub open_secs: f64,
    pub hold_secs: f64,
    /// Sessions the node closed while they were held.
    pub dropped_while_held: usize,
    /// Node RSS readings (`None` when the node's process is unknown: a
    /// running node without `--node-pid`).
    pub rss_before_kib: Option<f64>,
    pub rss_open_kib: Option<f64>,
    pub rss_held_kib: Option<f64>,
    pub rss_after_close_kib: Option<f64>,
    /// (RSS at the end of the hold − RSS before) / sessions open.
    pub kib_per_session: Option<f64>,
}

pub async fn idle(common: &Common, options: &IdleOptions) -> anyhow::Result<IdleReport> {
    let shape = ModelShape {
        ttft: Duration::ZERO,
        tokens_per_sec: 1.0,
        reply_tokens: 1,
    };
    let mut rig = rig("idle", common, shape, &[MANY_SESSIONS]).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rig.node.rss();

    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Counts::new()));
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..options.sessions {
        let (target, source) = (rig.target.clone(), source(common, i));
        let (opened, failed, dropped, failures) = (
            opened.clone(),
            failed.clone(),
            dropped.clone(),
            failures.clone(),
        );
        let (permits, mut stop) = (permits.clone(), stop_rx.clone());
        tasks.spawn(async move {
            let shopper = {
                let _permit = permits.acquire().await;
                match open_session(&target, source).await {
                    Ok(shopper) => shopper,
                    Err(failure) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        add(&mut *failures.lock().await, failure.label());
                        return;
                    }
                }
            };
            opened.fetch_add(1, Ordering::Relaxed);
            let mut shopper = shopper;
            tokio::select! {
                () = async { let _ = stop.wait_for(|stop| *stop).await; } => {}
                end = async { loop { if let Err(f) = shopper.next().await { return f; } } } => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    add(&mut *failures.lock().await, format!("dropped_{}", end.label()));
                }
            }
        });
    }
    let open_deadline = started + Duration::from_secs(600);
    while opened.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < options.sessions
        && Instant::now() < open_deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_open = rig.node.rss();
    tokio::time::sleep(options.hold).await;
    let rss_held = rig.node.rss();
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_closed = rig.node.rss();
    rig.node.stop().await?;
    rig.model.stop().await;

    let open = opened.load(Ordering::Relaxed);
    let failures = failures.lock().await.clone();
    Ok(IdleReport {
        run: rig.info,
        sessions_requested: options.sessions,
        sessions_open: open,
        failures,
        open_secs: secs(open_time),
        hold_secs: secs(options.hold),
        dropped_while_held: dropped.load(Ordering::Relaxed),
        rss_before_kib: rss_before.map(kib),
        rss_open_kib: rss_open.map(kib),
        rss_held_kib: rss_held.map(kib),
        rss_after_close_kib: rss_closed.map(kib),
        kib_per_session: rss_held
            .zip(rss_before)
            .filter(|_| open > 0)
            .map(|(held, before)| kib(held.saturating_sub(before) / open as u64)),
    })
}

async fn open_session(target: &Target, source: IpAddr) -> Result<Shopper, Failure> {
    let mut shopper = Shopper::connect(target, source).await?;
    shopper.hello(FRAME_LIMIT).await?;
    Ok(shopper)
}

impl IdleReport {
    pub fn markdown(&self) -> String {
        let mib = |kib: Option<f64>| {
            kib.map_or("not measured".into(), |k| format!("{:.1} MiB", k / 1024.0))
        };
        table(
            &format!("idle: {} sessions", self.sessions_requested),
            &[
                ("sessions open", self.sessions_open.to_string()),
                ("failures", counts_text(&self.failures)),
                ("time to open", format!("{:.2} s", self.open_secs)),
                ("held for", format!("{:.0} s", self.hold_secs)),
                ("dropped while held", self.dropped_while_held.to_string()),
                ("node RSS before", mib(self.rss_before_kib)),
                ("node RSS open", mib(self.rss_open_kib)),
                ("node RSS after the hold", mib(self.rss_held_kib)),
                ("node RSS after closing", mib(self.rss_after_close_kib)),
                (
                    "memory per idle session",
                    self.kib_per_session
                        .map_or("not measured".into(), |k| format!("{k:.1} KiB")),
                ),
            ],
        )
    }
}

// ---------------------------------------------------------------- chat

#[derive(Clone, Debug)]
pub struct ChatOptions {
    pub shoppers: usize,
    /// How long shoppers keep asking; replies under way then finish.
    pub duration: Duration,
    pub shape: ModelShape,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatReport {
    pub run: RunInfo,
    pub shoppers: usize,
    pub connected: usize,
    pub model: ModelShape,
    pub duration_secs: f64,
    pub replies_completed: u64,
    pub tokens_received: u64,
    /// Tokens received per second over the run, and that divided by the
    /// model's per-stream rate: the mean number of streams running.
    pub tokens_per_sec: f64,
    pub mean_concurrent_streams: f64,
    /// Model wrote a chunk → the shopper's client received that token.
    pub added_latency_per_token: Summary,
    /// Time to first token at the shopper minus the model's own.
    pub added_time_to_first_token: Summary,
    /// Message sent → its `ack` (the message is on disk): the persistence
    /// part of the time to first token.
    pub time_to_ack: Summary,
    pub errors: Counts,
    /// CPU seconds the node used during the run, and as a share of one core.
    pub node_cpu_secs: Option<f64>,
    pub node_cpu_percent_of_one_core: Option<f64>,
    /// CPU the load generator itself used (model, shoppers), as a share of
    /// one core: with both on one machine, they compete for its cores.
    pub load_generator_cpu_percent_of_one_core: Option<f64>,
    pub model_requests: u64,
}

#[derive(Default)]
struct ShopperResult {
    connected: bool,
    replies: u64,
    tokens: u64,
    per_token: Vec<u64>,
    first_token: Vec<u64>,
    acks: Vec<u64>,
    errors: Counts,
}

const QUESTIONS: [&str; 4] = [
    "Do you have a warm winter parka under 200 euro?",
    "I need trail running shoes for wet weather",
    "Which tent is lightest for two people?",
    "Show me a waterproof rain jacket",
];

fn added(
    sent: Instant,
    received: &[(usize, Instant)],
    timeline: &Timeline,
    result: &mut ShopperResult,
) {
    if let (Some(&(_, first_seen)), Some(&(_, first_written))) =
        (received.first(), timeline.chunks.first())
    {
        let at_shopper = first_seen.saturating_duration_since(sent);
        let at_model = first_written.saturating_duration_since(timeline.arrived);
        result
            .first_token
            .push(at_shopper.saturating_sub(at_model).as_nanos() as u64);
    }
    let mut r = 0;
    for &(end, written) in &timeline.chunks {
        while r < received.len() && received[r].0 < end {
            r += 1;
        }
        let Some(&(_, seen)) = received.get(r) else {
            break;
        };
        result
            .per_token
            .push(seen.saturating_duration_since(written).as_nanos() as u64);
    }
}

async fn chat_shopper(
    index: usize,
    target: Target,
    source: IpAddr,
    model: Arc<FakeModel>,
    begin: tokio::time::Instant,
    end: Instant,
) -> ShopperResult {
    let mut result = ShopperResult::default();
    let mut shopper = match open_session(&target, source).await {
        Ok(shopper) => shopper,
        Err(failure) => {
            add(&mut result.errors, failure.label());
            return result;
        }
    };
    result.connected = true;
    tokio::time::sleep_until(begin).await;
    let mut n: u64 = 0;
    'asking: while Instant::now() < end {
        n += 1;
        let tag = ((index as u64) << 24) | n;
        let question = QUESTIONS[(index + n as usize) % QUESTIONS.len()];
        let sent = Instant::now();
        if let Err(failure) = shopper
            .message(&format!("c{n}"), &format!("{question} #{tag}"))
            .await
        {
            add(&mut result.errors, failure.label());
            break;
        }
        let mut received = Vec::with_capacity(128);
        let mut length = 0;
        loop {
            let frame = match shopper.next_within(FRAME_LIMIT).await {
                Ok(frame) => frame,
                Err(failure) => {
                    add(&mut result.errors, failure.label());
                    break 'asking;
                }
            };
            match frame.kind.as_str() {
                "token" => {
                    length += frame.text.as_deref().map_or(0, str::len);
                    received.push((length, Instant::now()));
                }
                "ack" => result.acks.push(sent.elapsed().as_nanos() as u64),
                "done" => break,
                "error" => {
                    add(&mut result.errors, frame.code.unwrap_or_default());
                    // Asking again at once would only be refused again.
                    if let Some(wait) = frame.retry_after_ms {
                        let until = Instant::now() + Duration::from_millis(wait);
                        tokio::time::sleep_until(until.min(end).into()).await;
                    }
                    continue 'asking;
                }
                _ => {}
            }
        }
        result.replies += 1;
        result.tokens += received.len() as u64;
        match model.take_timeline(tag) {
            Some(timeline) => added(sent, &received, &timeline, &mut result),
            None => add(&mut result.errors, "untimed_reply".into()),
        }
    }
    shopper.close().await;
    result
}

pub async fn chat(common: &Common, options: &ChatOptions) -> anyhow::Result<ChatReport> {
    let mut rig = rig("chat", common, options.shape, &[MANY_SESSIONS]).await?;
    // Connect everyone first, then start asking together (each shopper at a
    // random point of the first reply's length, so tokens do not march in
    // step).
    let connect_time = Duration::from_secs(5) + Duration::from_millis(options.shoppers as u64 * 2);
    let start = tokio::time::Instant::now() + connect_time;
    let stagger =
        Duration::from_secs_f64(options.shape.reply_tokens as f64 / options.shape.tokens_per_sec)
            .min(Duration::from_secs(5));
    let end = Instant::now() + connect_time + options.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..options.shoppers {
        let begin = start + stagger.mul_f64(fastrand::f64());
        tasks.spawn(chat_shopper(
            i,
            rig.target.clone(),
            source(common, i),
            rig.model.clone(),
            begin,
            end,
        ));
    }
    tokio::time::sleep_until(start).await;
    let cpu_start = rig.node.cpu();
    let own_cpu_start = node::cpu_time(std::process::id());
    let measured_from = Instant::now();
    let mut results = Vec::with_capacity(options.shoppers);
    let last_reply_limit = options.duration + Duration::from_secs(120);
    let all = async {
        while let Some(result) = tasks.join_next().await {
            results.push(result.context("a shopper task failed")?);
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(last_reply_limit, all)
        .await
        .context("shoppers did not finish in time")??;
    let elapsed = measured_from.elapsed();
    let cpu = rig
        .node
        .cpu()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    let own_cpu = node::cpu_time(std::process::id())
        .zip(own_cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    let share = |cpu: Duration| (cpu.as_secs_f64() / elapsed.as_secs_f64() * 1000.0).round() / 10.0;
    rig.node.stop().await?;
    rig.model.stop().await;

    let mut errors = Counts::new();
    let (mut per_token, mut first_token, mut acks) = (Vec::new(), Vec::new(), Vec::new());
    let (mut replies, mut tokens, mut connected) = (0, 0, 0);
    for result in results {
        connected += usize::from(result.connected);
        replies += result.replies;
        tokens += result.tokens;
        per_token.extend(result.per_token);
        first_token.extend(result.first_token);
        acks.extend(result.acks);
        for (code, n) in result.errors {
            *errors.entry(code).or_default() += n;
        }
    }
    let tokens_per_sec = tokens as f64 / elapsed.as_secs_f64();
    Ok(ChatReport {
        run: rig.info,
        shoppers: options.shoppers,
        connected,
        model: options.shape,
        duration_secs: secs(elapsed),
        replies_completed: replies,
        tokens_received: tokens,
        tokens_per_sec: tokens_per_sec.round(),
        mean_concurrent_streams: (tokens_per_sec / options.shape.tokens_per_sec * 10.0).round()
            / 10.0,
        added_latency_per_token: Summary::of(per_token),
        added_time_to_first_token: Summary::of(first_token),
        time_to_ack: Summary::of(acks),
        errors,
        node_cpu_secs: cpu.map(secs),
        node_cpu_percent_of_one_core: cpu.map(share),
        load_generator_cpu_percent_of_one_core: own_cpu
            .filter(|_| rig.node.measured_alone())
            .map(share),
        model_requests: rig.model.requests(),
    })
}

impl ChatReport {
    pub fn markdown(&self) -> String {
        let us = |s: &Summary| {
            format!(
                "p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({} samples)",
                s.p50_us, s.p90_us, s.p99_us, s.max_us, s.count
            )
        };
        table(
            &format!(
                "chat: {} shoppers, model {} tok/s, {} tokens, first token after {} ms",
                self.shoppers,
                self.model.tokens_per_sec,
                self.model.reply_tokens,
                self.model.ttft.as_millis()
            ),
            &[
                ("connected", self.connected.to_string()),
                ("run", format!("{:.1} s", self.duration_secs)),
                ("replies completed", self.replies_completed.to_string()),
                ("tokens received", self.tokens_received.to_string()),
                ("tokens per second", format!("{:.0}", self.tokens_per_sec)),
                (
                    "mean concurrent streams",
                    format!("{:.1}", self.mean_concurrent_streams),
                ),
                ("added latency per token", us(&self.added_latency_per_token)),
                (
                    "added time to first token",
                    us(&self.added_time_to_first_token),
                ),
                ("message to ack (stored)", us(&self.time_to_ack)),
                ("errors", counts_text(&self.errors)),
                (
                    "node CPU",
                    self.node_cpu_percent_of_one_core
                        .map_or("not measured".into(), |p| format!("{p:.1} % of one core")),
                ),
                (
                    "load generator CPU",
                    self.load_generator_cpu_percent_of_one_core
                        .map_or("not measured".into(), |p| format!("{p:.1} % of one core")),
                ),
            ],
        )
    }
}

// ---------------------------------------------------------------- burst

#[derive(Clone, Debug)]
pub struct BurstOptions {
    pub shoppers: usize,
    pub shape: ModelShape,
}

#[derive(Clone, Debug, Serialize)]
pub struct BurstReport {
    pub run: RunInfo,
    pub shoppers: usize,
    pub sessions_opened: usize,
    /// Refusals and failures by code.
    pub refused: Counts,
    pub messages_acknowledged: usize,
    pub replies_completed: usize,
    pub elapsed_secs: f64,
    /// Acknowledged messages missing from storage after the node was
    /// killed (`None`: a running node's storage cannot be read).
    pub acknowledged_lost: Option<usize>,
    pub how_checked: String,
}

#[derive(Default)]
struct BurstOutcome {
    opened: bool,
    refused: Option<String>,
    acked: Option<(String, String)>,
    replied: bool,
}

async fn burst_shopper(index: usize, target: Target, source: IpAddr) -> BurstOutcome {
    let mut outcome = BurstOutcome::default();
    let mut shopper = match Shopper::connect(&target, source).await {
        Ok(shopper) => shopper,
        Err(failure) => {
            outcome.refused = Some(failure.label());
            return outcome;
        }
    };
    let session = match shopper.hello(FRAME_LIMIT).await {
        Ok(session) => session,
        Err(failure) => {
            outcome.refused = Some(failure.label());
            return outcome;
        }
    };
    outcome.opened = true;
    let client_id = format!("burst-{index}");
    let text = format!("{} #{index}", QUESTIONS[index % QUESTIONS.len()]);
    if let Err(failure) = shopper.message(&client_id, &text).await {
        outcome.refused = Some(failure.label());
        return outcome;
    }
    loop {
        match shopper.next_within(FRAME_LIMIT).await {
            Ok(frame) => match frame.kind.as_str() {
                "ack" => outcome.acked = Some((session.clone(), client_id.clone())),
                "done" => {
                    outcome.replied = true;
                    break;
                }
                "error" => {
                    if outcome.acked.is_none() {
                        outcome.refused = frame.code;
                    }
                    break;
                }
                _ => {}
            },
            Err(failure) => {
                if outcome.acked.is_none() {
                    outcome.refused = Some(failure.label());
                }
                break;
            }
        }
    }
    shopper.close().await;
    outcome
}

/// Opens a stopped node's storage. sled's own threads may hold its lock a
/// moment after the node let go, so a busy lock is tried again for a while.
async fn open_stopped(dir: &std::path::Path) -> anyhow::Result<crate::storage::Storage> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match crate::storage::Storage::open(dir, 64 * 1024 * 1024) {
            Ok(storage) => return Ok(storage),
            Err(error) if Instant::now() < deadline => {
                tracing::debug!(%error, "the node's storage is not free yet");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Acknowledged messages missing from the node's storage.
async fn missing_in_storage(
    dir: &std::path::Path,
    acked: &[(String, String)],
) -> anyhow::Result<usize> {
    let storage = open_stopped(dir).await?;
    let store = StoreId::parse(STORE)?;
    let mut missing = 0;
    for (session, client_id) in acked {
        let found = SessionId::parse(session)
            .and_then(|id| storage.find_session(&store, id).ok().flatten())
            .and_then(|meta| storage.history(&store, meta.conversation, usize::MAX).ok())
            .is_some_and(|history| {
                history
                    .iter()
                    .any(|m| m.client_id.as_deref() == Some(client_id.as_str()))
            });
        missing += usize::from(!found);
    }
    Ok(missing)
}

pub async fn burst(common: &Common, options: &BurstOptions) -> anyhow::Result<BurstReport> {
    let mut rig = rig("burst", common, options.shape, &[]).await?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..options.shoppers {
        tasks.spawn(burst_shopper(i, rig.target.clone(), source(common, i)));
    }
    let mut outcomes = Vec::with_capacity(options.shoppers);
    let limit = Duration::from_secs(300);
    tokio::time::timeout(limit, async {
        while let Some(outcome) = tasks.join_next().await {
            outcomes.push(outcome?);
        }
        anyhow::Ok(())
    })
    .await
    .context("the burst did not finish in time")??;
    let elapsed = started.elapsed();

    let mut refused = Counts::new();
    let mut acked = Vec::new();
    let (mut opened, mut replied) = (0, 0);
    for outcome in outcomes {
        opened += usize::from(outcome.opened);
        replied += usize::from(outcome.replied);
        if let Some(code) = outcome.refused {
            add(&mut refused, code);
        }
        acked.extend(outcome.acked);
    }
    rig.node.stop().await?;
    rig.model.stop().await;
    let (lost, how) = match &rig.node.data_dir {
        Some(dir) => (
            Some(missing_in_storage(dir, &acked).await?),
            format!(
                "node stopped ({}), its sled directory opened and every acknowledged message looked up",
                if rig.node.measured_alone() {
                    "SIGKILL"
                } else {
                    "gracefully"
                }
            ),
        ),
        None => (
            None,
            "not checked: the node's storage is not reachable".into(),
        ),
    };
    Ok(BurstReport {
        run: rig.info,
        shoppers: options.shoppers,
        sessions_opened: opened,
        refused,
        messages_acknowledged: acked.len(),
        replies_completed: replied,
        elapsed_secs: secs(elapsed),
        acknowledged_lost: lost,
        how_checked: how,
    })
}

impl BurstReport {
    pub fn markdown(&self) -> String {
        table(
            &format!("burst: {} shoppers at once", self.shoppers),
            &[
                ("sessions opened", self.sessions_opened.to_string()),
                ("refused, by code", counts_text(&self.refused)),
                (
                    "messages acknowledged",
                    self.messages_acknowledged.to_string(),
                ),
                ("replies completed", self.replies_completed.to_string()),
                ("time", format!("{:.2} s", self.elapsed_secs)),
                (
                    "acknowledged messages lost",
                    self.acknowledged_lost
                        .map_or("not checked".into(), |n| n.to_string()),
                ),
                ("checked by", self.how_checked.clone()),
            ],
        )
    }
}

/// Where reports go unless told otherwise.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from("results/loadgen")
}
