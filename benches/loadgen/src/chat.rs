//! `chat`: shoppers ask and read streamed replies for a while; every token
//! is matched to the model's own write of it, so the report gives the
//! latency the node adds per token and to the first token.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mikabot_test_support::model::{FakeOpenAi, Shape, Timeline};
use serde::Serialize;

use crate::desk::{self, WatchersReport};
use crate::report::{Counts, Summary, add, counts_text, secs, table};
use crate::{
    Common, FRAME_LIMIT, Head, MANY_SESSIONS, QUESTIONS, RunInfo, Target, node, open_session, rig,
    source,
};

#[derive(Clone, Debug)]
pub struct ChatOptions {
    pub shoppers: usize,
    /// How long shoppers keep asking; replies under way then finish.
    pub duration: Duration,
    pub shape: Shape,
    /// Stores the shoppers are spread over (the demo store, then stores the
    /// run creates with the demo catalog).
    pub stores: usize,
    /// Owners watching the live desk, spread over the stores.
    pub watchers: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatReport {
    pub run: RunInfo,
    pub shoppers: usize,
    pub stores: usize,
    pub connected: usize,
    pub model: Shape,
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
    /// What the owners watching saw (a run with watchers).
    pub watchers: Option<WatchersReport>,
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

/// How a shopper runs.
#[derive(Clone)]
struct Asking {
    model: Arc<FakeOpenAi>,
    begin: tokio::time::Instant,
    end: Instant,
    /// Leave each reply's timeline for the watchers to read too.
    share_timelines: bool,
}

async fn chat_shopper(
    index: usize,
    target: Target,
    source: IpAddr,
    asking: Asking,
) -> ShopperResult {
    let Asking {
        model,
        begin,
        end,
        share_timelines,
    } = asking;
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
            .try_message(&format!("c{n}"), &format!("{question} #{tag}"))
            .await
        {
            add(&mut result.errors, failure.label());
            break;
        }
        let mut received = Vec::with_capacity(128);
        let mut length = 0;
        loop {
            let frame: Head = match shopper.try_next(FRAME_LIMIT).await {
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
        let timeline = if share_timelines {
            model.timeline(tag)
        } else {
            model.take_timeline(tag)
        };
        match timeline {
            Some(timeline) => added(sent, &received, &timeline, &mut result),
            None => add(&mut result.errors, "untimed_reply".into()),
        }
    }
    shopper.close().await;
    result
}

pub async fn chat(common: &Common, options: &ChatOptions) -> anyhow::Result<ChatReport> {
    let mut env = MANY_SESSIONS.to_vec();
    if options.watchers > 0 {
        env.push(("MIKABOT__SERVER__PUBLIC_URL", desk::DASHBOARD_ORIGIN));
    }
    let mut rig = rig("chat", common, options.shape, &env).await?;
    let stores = desk::store_ids(options.stores);
    desk::create_stores(&rig.node, &stores).await?;
    let cookies = desk::watcher_sessions(&rig.node, options.watchers).await?;
    let targets = desk::targets(&rig.target, &rig.node, &stores);
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
        let asking = Asking {
            model: rig.model.clone(),
            begin: start + stagger.mul_f64(fastrand::f64()),
            end,
            share_timelines: options.watchers > 0,
        };
        let target = targets[i % targets.len()].clone();
        tasks.spawn(chat_shopper(i, target, source(common, i), asking));
    }
    let mut watching = tokio::task::JoinSet::new();
    for (i, cookie) in cookies.into_iter().enumerate() {
        let store = stores[i % stores.len()].clone();
        watching.spawn(desk::watcher(rig.node.addr, store, cookie, start, end));
    }
    tokio::time::sleep_until(start).await;
    let cpu_start = rig.node.cpu();
    let own_cpu_start = node::cpu_time(std::process::id());
    let measured_from = Instant::now();
    let mut results = Vec::with_capacity(options.shoppers);
    let mut watched = Vec::with_capacity(options.watchers);
    let last_reply_limit = options.duration + Duration::from_secs(120);
    let all = async {
        while let Some(result) = tasks.join_next().await {
            results.push(result.context("a shopper task failed")?);
        }
        while let Some(result) = watching.join_next().await {
            watched.push(result.context("a watcher task failed")?);
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
    let watchers =
        (options.watchers > 0).then(|| desk::summarize(options.watchers, watched, &rig.model));

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
        stores: stores.len(),
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
        model_requests: rig.model.request_count(),
        watchers,
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
        let cpu = |share: Option<f64>| {
            share.map_or("not measured".into(), |p| format!("{p:.1} % of one core"))
        };
        let mut rows = vec![
            ("stores", self.stores.to_string()),
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
            ("node CPU", cpu(self.node_cpu_percent_of_one_core)),
            (
                "load generator CPU",
                cpu(self.load_generator_cpu_percent_of_one_core),
            ),
        ];
        if let Some(w) = &self.watchers {
            rows.extend([
                (
                    "watchers connected",
                    format!("{} of {}", w.connected, w.watchers),
                ),
                ("replies watched", w.replies_watched.to_string()),
                ("watches begun mid-reply", w.joins_mid_reply.to_string()),
                ("tokens to watchers", w.tokens_received.to_string()),
                (
                    "added latency per token, watchers",
                    us(&w.added_latency_per_token),
                ),
                (
                    "watchers dropped as too slow",
                    w.dropped_as_too_slow.to_string(),
                ),
                ("watcher errors", counts_text(&w.errors)),
            ]);
        }
        table(
            &format!(
                "chat: {} shoppers, {} watchers, model {} tok/s, {} tokens, first token after {} ms",
                self.shoppers,
                self.watchers.as_ref().map_or(0, |w| w.watchers),
                self.model.tokens_per_sec,
                self.model.reply_tokens,
                self.model.ttft.as_millis()
            ),
            &rows,
        )
    }
}
