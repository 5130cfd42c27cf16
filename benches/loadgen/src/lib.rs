//! The load generator behind `cargo run --release -p mikabot-loadgen --bin
//! loadgen`: simulated shoppers on real sockets against a real node whose
//! model is the test support's OpenAI-compatible server, streaming at a
//! known speed. Three scenarios: [`idle`] (memory per held session),
//! [`chat`] (latency the node adds to each token and to the first one) and
//! [`burst`] (refusals under a rush, and no acknowledged message lost); and
//! [`crash`], a loop of kills at random moments under chat load.
//! Every loop is bounded in count and time; all traffic stays on loopback.
//!
//! The crate also holds the relevance evaluation ([`relevance`]) and the
//! synthetic catalogs ([`synthetic`]) that the benchmarks use.

pub mod attack;
pub mod burst;
pub mod chat;
pub mod cli;
pub mod crash;
pub mod desk;
pub mod idle;
pub mod node;
pub mod relevance;
pub mod report;
pub mod synthetic;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use mikabot_test_support::model::{Behavior, FakeOpenAi, Options, Shape};
use mikabot_test_support::shopper::{Connect, Failure, Shopper, source_address};
use serde::Serialize;

pub use self::attack::{AttackOptions, AttackReport, attack};
pub use self::burst::{BurstOptions, BurstReport, burst};
pub use self::chat::{ChatOptions, ChatReport, chat};
pub use self::crash::{CrashOptions, CrashReport, crash};
pub use self::idle::{IdleOptions, IdleReport, idle};
use self::node::{NodeChoice, RunningNode};
use self::report::Machine;

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

/// Where shoppers connect.
#[derive(Clone, Debug)]
struct Target {
    url: String,
    origin: String,
}

impl Target {
    fn from(&self, source: IpAddr) -> Connect {
        Connect {
            url: self.url.clone(),
            origin: Some(self.origin.clone()),
            source: Some(source),
            small_buffers: true,
            headers: Vec::new(),
        }
    }
}

/// A scenario's model, node and target.
struct Rig {
    model: Arc<FakeOpenAi>,
    node: RunningNode,
    target: Target,
    info: RunInfo,
}

async fn rig(
    scenario: &'static str,
    common: &Common,
    shape: Shape,
    scenario_env: &[(&str, &str)],
) -> anyhow::Result<Rig> {
    report::raise_open_files_limit();
    let model = Arc::new(FakeOpenAi::start_with(Options {
        port: common.model_port,
        workers: common.model_workers,
        record_requests: false,
        fallback: Behavior::Shaped(shape),
    })?);
    let dir = tempfile::tempdir().context("creating the node's data directory")?;
    let env = node::node_env(&model.base_url, dir.path(), scenario_env);
    let node = RunningNode::start(&common.node, env, dir).await?;
    let target = Target {
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

/// Scenarios that need many sessions from few addresses lift the node's
/// per-address bounds (unless the environment sets them).
const MANY_SESSIONS: &[(&str, &str)] = &[
    (
        "MIKABOT__WIDGET__NEW_SESSIONS_PER_IP_PER_MINUTE",
        "100000000",
    ),
    ("MIKABOT__LIMITS__SESSIONS_PER_ADDRESS", "1000000"),
    ("MIKABOT__LIMITS__SESSIONS_PER_IPV6_NETWORK", "1000000"),
    ("MIKABOT__LIMITS__SESSIONS_PER_NODE", "1000000"),
    (
        "MIKABOT__LIMITS__NEW_CONVERSATIONS_PER_ADDRESS_PER_HOUR",
        "100000000",
    ),
    (
        "MIKABOT__LIMITS__MESSAGES_PER_ADDRESS_PER_MINUTE",
        "100000000",
    ),
];

fn source(common: &Common, i: usize) -> IpAddr {
    source_address(i, common.sources)
}

/// Connects from `source` and says hello.
async fn open_session(target: &Target, source: IpAddr) -> Result<Shopper, Failure> {
    let mut shopper = Shopper::open(&target.from(source)).await?;
    shopper.try_hello(FRAME_LIMIT).await?;
    Ok(shopper)
}

/// The fields of a server frame the scenarios read.
#[derive(Debug, serde::Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    code: Option<String>,
    /// On a refusal: when asking again can succeed.
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

/// What simulated shoppers ask.
const QUESTIONS: [&str; 4] = [
    "Do you have a warm winter parka under 200 euro?",
    "I need trail running shoes for wet weather",
    "Which tent is lightest for two people?",
    "Show me a waterproof rain jacket",
];

/// Where reports go unless told otherwise.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from("results/loadgen")
}
