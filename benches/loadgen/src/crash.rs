//! `crash`: crash safety under load, in a loop. Each iteration starts the
//! node (a child process) on the same data directory, has shoppers chat,
//! kills the node with `SIGKILL` at a random moment, and then checks the
//! directory: every message the node acknowledged and every reply a shopper
//! saw complete (`done`) is stored, complete; and every record of every
//! tree decodes. The target is zero losses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mikabot::storage::Storage;
use mikabot_actors::ids::{MessageId, SessionId, StoreId};
use mikabot_actors::log::ConversationLog;
use mikabot_test_support::model::{Behavior, FakeOpenAi, Options, Shape};
use mikabot_test_support::shopper::Shopper;
use serde::Serialize;

use crate::node::{NodeChoice, RunningNode};
use crate::report::{Machine, secs, table};
use crate::{Common, FRAME_LIMIT, MANY_SESSIONS, QUESTIONS, STORE, Target, source};

#[derive(Clone, Debug)]
pub struct CrashOptions {
    pub iterations: usize,
    pub shoppers: usize,
    /// The node is killed at a random moment up to this long after the
    /// shoppers start.
    pub max_run: Duration,
    pub shape: Shape,
}

#[derive(Clone, Debug, Serialize)]
pub struct CrashReport {
    pub machine: Machine,
    pub iterations: usize,
    pub shoppers: usize,
    pub messages_acknowledged: usize,
    pub replies_completed: usize,
    pub acknowledged_lost: usize,
    pub completed_replies_lost: usize,
    /// Records read back and decoded after the last iteration.
    pub records_checked: usize,
    pub undecodable_records: usize,
    pub elapsed_secs: f64,
}

/// What the shoppers saw confirmed, for the check.
#[derive(Default)]
struct Confirmed {
    /// Session id → client ids acknowledged.
    acked: HashMap<String, Vec<String>>,
    /// Session id → (reply id, text) of replies that ended with `done`.
    completed: HashMap<String, Vec<(String, String)>>,
}

/// A server frame as the loop reads it.
#[derive(Debug, serde::Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    reply_id: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

async fn shopper(index: usize, target: Target, source: IpAddr, confirmed: Arc<Mutex<Confirmed>>) {
    let Ok(mut shopper) = Shopper::open(&target.from(source)).await else {
        return;
    };
    let Ok(session) = shopper.try_hello(FRAME_LIMIT).await else {
        return;
    };
    let record = |f: &mut dyn FnMut(&mut Confirmed)| {
        f(&mut confirmed.lock().unwrap_or_else(PoisonError::into_inner));
    };
    for n in 0..1000_usize {
        let client_id = format!("c{n}");
        let question = QUESTIONS[(index + n) % QUESTIONS.len()];
        if shopper.try_message(&client_id, question).await.is_err() {
            return;
        }
        let mut text = String::new();
        loop {
            // The node dies mid-run: any failure ends this shopper.
            let Ok(frame) = shopper.try_next::<Frame>(FRAME_LIMIT).await else {
                return;
            };
            match frame.kind.as_str() {
                "ack" => {
                    let id = frame.client_id.unwrap_or_default();
                    record(&mut |c| c.acked.entry(session.clone()).or_default().push(id.clone()));
                }
                "token" => text.push_str(frame.text.as_deref().unwrap_or("")),
                "done" => {
                    let reply = frame.reply_id.unwrap_or_default();
                    let done = (reply, std::mem::take(&mut text));
                    record(&mut |c| {
                        c.completed
                            .entry(session.clone())
                            .or_default()
                            .push(done.clone());
                    });
                    break;
                }
                "error" => break,
                _ => {}
            }
        }
    }
}

/// Opens a killed node's storage (sled's lock goes with the process, a
/// moment after it).
async fn open_after_kill(dir: &std::path::Path) -> anyhow::Result<Storage> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Storage::open(&mikabot::storage::StorageOptions::in_dir(dir)) {
            Ok(storage) => return Ok(storage),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Confirmed messages and replies missing from storage.
fn losses(storage: &Storage, confirmed: &Confirmed) -> anyhow::Result<(usize, usize)> {
    let store = StoreId::parse(STORE)?;
    let (mut acked_lost, mut replies_lost) = (0, 0);
    let sessions = confirmed.acked.keys().chain(confirmed.completed.keys());
    let mut seen = std::collections::HashSet::new();
    for session in sessions.filter(|s| seen.insert(s.as_str())) {
        let history = SessionId::parse(session)
            .and_then(|id| storage.find_session(&store, id).ok().flatten())
            .map(|meta| storage.history(&store, meta.conversation, usize::MAX))
            .transpose()?
            .unwrap_or_default();
        for client_id in confirmed.acked.get(session).into_iter().flatten() {
            let stored = history
                .iter()
                .any(|m| m.client_id.as_deref() == Some(client_id.as_str()));
            acked_lost += usize::from(!stored);
        }
        for (reply, text) in confirmed.completed.get(session).into_iter().flatten() {
            let id = MessageId::parse(reply);
            let stored = history.iter().any(|m| {
                Some(m.id) == id
                    && m.text == *text
                    && m.reply.as_ref().is_some_and(|r| !r.incomplete)
            });
            replies_lost += usize::from(!stored);
        }
    }
    Ok((acked_lost, replies_lost))
}

pub async fn crash(common: &Common, options: &CrashOptions) -> anyhow::Result<CrashReport> {
    let NodeChoice::Child { .. } = common.node else {
        anyhow::bail!("the crash loop kills the node: it needs --node child");
    };
    crate::report::raise_open_files_limit();
    let model = Arc::new(FakeOpenAi::start_with(Options {
        port: common.model_port,
        workers: common.model_workers,
        record_requests: false,
        fallback: Behavior::Shaped(options.shape),
    })?);
    let dir = tempfile::tempdir().context("creating the node's data directory")?;
    let started = Instant::now();
    let mut report = CrashReport {
        machine: Machine::here(),
        iterations: options.iterations,
        shoppers: options.shoppers,
        messages_acknowledged: 0,
        replies_completed: 0,
        acknowledged_lost: 0,
        completed_replies_lost: 0,
        records_checked: 0,
        undecodable_records: 0,
        elapsed_secs: 0.0,
    };
    for _ in 0..options.iterations {
        let env = crate::node::node_env(&model.base_url, dir.path(), MANY_SESSIONS);
        let mut node = RunningNode::start_on(&common.node, env, dir.path()).await?;
        // Killed while it serves: a node still loading its stores (their
        // catalogs and lexicons) answers nobody yet.
        wait_until_ready(node.addr).await?;
        let target = Target {
            url: node.ws_url(STORE),
            origin: node.origin(),
        };
        let confirmed = Arc::new(Mutex::new(Confirmed::default()));
        let mut shoppers = tokio::task::JoinSet::new();
        for i in 0..options.shoppers {
            shoppers.spawn(shopper(
                i,
                target.clone(),
                source(common, i),
                Arc::clone(&confirmed),
            ));
        }
        let run = options.max_run.mul_f64(0.2 + 0.8 * fastrand::f64());
        tokio::time::sleep(run).await;
        node.stop().await?;
        // Every shopper sees its socket drop; none outlives the deadline.
        let _ = tokio::time::timeout(FRAME_LIMIT, async {
            while shoppers.join_next().await.is_some() {}
        })
        .await;
        shoppers.abort_all();
        let confirmed =
            std::mem::take(&mut *confirmed.lock().unwrap_or_else(PoisonError::into_inner));
        report.messages_acknowledged += confirmed.acked.values().map(Vec::len).sum::<usize>();
        report.replies_completed += confirmed.completed.values().map(Vec::len).sum::<usize>();
        let storage = open_after_kill(dir.path()).await?;
        let (acked_lost, replies_lost) = losses(&storage, &confirmed)?;
        report.acknowledged_lost += acked_lost;
        report.completed_replies_lost += replies_lost;
        match storage.check_all() {
            Ok(counts) => {
                report.records_checked = counts.stores
                    + counts.products
                    + counts.sessions
                    + counts.conversations
                    + counts.messages;
            }
            Err(error) => {
                tracing::error!(%error, "a record does not decode");
                report.undecodable_records += 1;
            }
        }
    }
    model.stop().await;
    report.elapsed_secs = secs(started.elapsed());
    Ok(report)
}

impl CrashReport {
    pub fn markdown(&self) -> String {
        table(
            &format!(
                "crash: {} iterations of {} shoppers, SIGKILL at a random moment",
                self.iterations, self.shoppers
            ),
            &[
                (
                    "messages acknowledged",
                    self.messages_acknowledged.to_string(),
                ),
                ("replies completed", self.replies_completed.to_string()),
                (
                    "acknowledged messages lost",
                    self.acknowledged_lost.to_string(),
                ),
                (
                    "completed replies lost",
                    self.completed_replies_lost.to_string(),
                ),
                (
                    "records read back (last iteration)",
                    self.records_checked.to_string(),
                ),
                (
                    "iterations with an undecodable record",
                    self.undecodable_records.to_string(),
                ),
                ("time", format!("{:.1} s", self.elapsed_secs)),
            ],
        )
    }
}

/// Waits until the node's `/readyz` answers 200 (every store loaded), for
/// at most a minute.
async fn wait_until_ready(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await {
            let request =
                format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            let mut answer = Vec::new();
            if stream.write_all(request.as_bytes()).await.is_ok()
                && stream.read_to_end(&mut answer).await.is_ok()
                && answer.starts_with(b"HTTP/1.1 200")
            {
                return Ok(());
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the node was not ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
