//! The load generator's command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use mikabot_test_support::model::Shape;

use crate::node::NodeChoice;
use crate::{AttackOptions, BurstOptions, ChatOptions, Common, CrashOptions, IdleOptions, report};

/// Puts a Mikabot node under load from simulated shoppers, with an
/// OpenAI-compatible model of known speed, and reports what the node
/// added. Writes a JSON and a Markdown report per run.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Open SESSIONS widget sessions, hold them idle, report node memory
    /// per session and the time to open them.
    Idle {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        sessions: u64,
        /// Seconds to hold the sessions open (heartbeats keep running).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=3600))]
        hold_secs: u64,
        /// Sessions being opened at once.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        concurrency: u64,
    },
    /// SHOPPERS shoppers ask and read streamed replies for DURATION; report
    /// the latency the node adds per token and to the first token.
    Chat {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        shape: ShapeArgs,
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        shoppers: u64,
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        duration_secs: u64,
        /// Stores to spread the shoppers over: the demo store, then stores
        /// the run creates with the demo catalog.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
        stores: u64,
        /// Owners watching the live desk (spread over the stores; each
        /// follows one streaming reply after another).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
        watchers: u64,
    },
    /// SHOPPERS shoppers connect and send at once; report refusals by code
    /// and any acknowledged message that was lost.
    Burst {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        shape: ShapeArgs,
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        shoppers: u64,
    },
    /// ITERATIONS times: start the node on one data directory, have
    /// SHOPPERS chat, SIGKILL it at a random moment, and check that every
    /// acknowledged message and completed reply is stored and every record
    /// decodes.
    Crash {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        shape: ShapeArgs,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        iterations: u64,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        shoppers: u64,
        /// The kill comes at a random moment up to this many seconds in.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
        max_run_secs: u64,
    },
    /// A hostile client for DURATION against a node with its default
    /// bounds, from one IPv4 address and one IPv6 /64 (through a trusted
    /// proxy header); one ordinary shopper asks meanwhile. Reports memory,
    /// disk, model requests against the bounds, and the shopper's latency.
    Attack {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        shape: ShapeArgs,
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
        duration_secs: u64,
        /// Attacking loops from each source.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        loops: u64,
    },
    /// Run a node configured from MIKABOT__ variables (used by the other
    /// commands to start the node in its own process).
    #[command(hide = true)]
    Node,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// `child` (a node in its own process, started here), `in-process`, or
    /// the HOST:PORT of a running node whose model base URL is
    /// http://127.0.0.1:MODEL_PORT/v1.
    #[arg(long, default_value = "child", value_parser = parse_node)]
    pub node: NodeArg,
    /// The process id of a running node, to read its memory and CPU.
    #[arg(long)]
    pub node_pid: Option<u32>,
    /// Loopback source addresses to spread shoppers over (127.0.0.2 on).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub sources: u64,
    /// Port of the load generator's model server (0: any).
    #[arg(long, default_value_t = 0)]
    pub model_port: u16,
    /// Threads of the model server.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub model_workers: u64,
    /// Threads driving the simulated shoppers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub threads: u64,
    /// Directory for the JSON and Markdown reports.
    #[arg(long, default_value = "results/loadgen")]
    pub out: PathBuf,
}

#[derive(Clone, Debug)]
pub enum NodeArg {
    Child,
    InProcess,
    At(SocketAddr),
}

fn parse_node(raw: &str) -> Result<NodeArg, String> {
    match raw {
        "child" => Ok(NodeArg::Child),
        "in-process" => Ok(NodeArg::InProcess),
        other => other.parse().map(NodeArg::At).map_err(|_| {
            format!(
                "expected `child`, `in-process` or HOST:PORT such as 127.0.0.1:8080, got `{other}`"
            )
        }),
    }
}

#[derive(Debug, Args)]
pub struct ShapeArgs {
    /// The model's time to first token, milliseconds.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub ttft_ms: u64,
    /// The model's tokens per second, per reply.
    #[arg(long, default_value_t = 20.0, value_parser = parse_rate)]
    pub tokens_per_sec: f64,
    /// Tokens per reply.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub reply_tokens: u64,
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    let rate: f64 = raw
        .parse()
        .map_err(|_| format!("expected a number of tokens per second, got `{raw}`"))?;
    if rate.is_finite() && rate > 0.0 && rate <= 100_000.0 {
        Ok(rate)
    } else {
        Err(format!(
            "tokens per second must be above 0 and at most 100000, got {raw}"
        ))
    }
}

impl ShapeArgs {
    fn shape(&self) -> Shape {
        Shape {
            ttft: Duration::from_millis(self.ttft_ms),
            tokens_per_sec: self.tokens_per_sec,
            reply_tokens: self.reply_tokens as usize,
        }
    }
}

impl CommonArgs {
    fn common(&self) -> anyhow::Result<Common> {
        if matches!(self.node, NodeArg::At(_)) && self.model_port == 0 {
            anyhow::bail!(
                "--node HOST:PORT needs --model-port: the running node's model base URL must point at http://127.0.0.1:MODEL_PORT/v1"
            );
        }
        Ok(Common {
            node: match self.node {
                NodeArg::Child => NodeChoice::Child {
                    exe: std::env::current_exe()?,
                },
                NodeArg::InProcess => NodeChoice::InProcess,
                NodeArg::At(addr) => NodeChoice::External {
                    addr,
                    pid: self.node_pid,
                },
            },
            sources: self.sources as usize,
            model_port: self.model_port,
            model_workers: self.model_workers as usize,
        })
    }
}

/// Runs the command line's scenario and prints its Markdown table.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let common_args = match &cli.scenario {
        Scenario::Node => return crate::node::run_node_command(),
        Scenario::Idle { common, .. }
        | Scenario::Chat { common, .. }
        | Scenario::Burst { common, .. }
        | Scenario::Crash { common, .. }
        | Scenario::Attack { common, .. } => common,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(common_args.threads as usize)
        .enable_all()
        .build()?;
    let common = common_args.common()?;
    let out = common_args.out.clone();
    runtime.block_on(async move {
        let (name, json, markdown) = match cli.scenario {
            Scenario::Idle {
                sessions,
                hold_secs,
                concurrency,
                ..
            } => {
                let options = IdleOptions {
                    sessions: sessions as usize,
                    hold: Duration::from_secs(hold_secs),
                    concurrency: concurrency as usize,
                };
                let report = crate::idle(&common, &options).await?;
                ("idle", serde_json::to_value(&report)?, report.markdown())
            }
            Scenario::Chat {
                shape,
                shoppers,
                duration_secs,
                stores,
                watchers,
                ..
            } => {
                let options = ChatOptions {
                    shoppers: shoppers as usize,
                    duration: Duration::from_secs(duration_secs),
                    shape: shape.shape(),
                    stores: stores as usize,
                    watchers: watchers as usize,
                };
                let report = crate::chat(&common, &options).await?;
                ("chat", serde_json::to_value(&report)?, report.markdown())
            }
            Scenario::Burst {
                shape, shoppers, ..
            } => {
                let options = BurstOptions {
                    shoppers: shoppers as usize,
                    shape: shape.shape(),
                };
                let report = crate::burst(&common, &options).await?;
                ("burst", serde_json::to_value(&report)?, report.markdown())
            }
            Scenario::Crash {
                shape,
                iterations,
                shoppers,
                max_run_secs,
                ..
            } => {
                let options = CrashOptions {
                    iterations: iterations as usize,
                    shoppers: shoppers as usize,
                    max_run: Duration::from_secs(max_run_secs),
                    shape: shape.shape(),
                };
                let report = crate::crash(&common, &options).await?;
                ("crash", serde_json::to_value(&report)?, report.markdown())
            }
            Scenario::Attack {
                shape,
                duration_secs,
                loops,
                ..
            } => {
                let options = AttackOptions {
                    duration: Duration::from_secs(duration_secs),
                    baseline: Duration::from_secs(10),
                    loops: loops as usize,
                    shape: shape.shape(),
                };
                let report = crate::attack(&common, &options).await?;
                ("attack", serde_json::to_value(&report)?, report.markdown())
            }
            Scenario::Node => anyhow::bail!("the node command runs before the runtime starts"),
        };
        let written = report::write(&out, name, &json, &markdown)?;
        println!("{markdown}");
        println!(
            "written: {} and {}",
            written.json.display(),
            written.markdown.display()
        );
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_arguments_are_refused_with_the_reason() {
        let error = |args: &[&str]| {
            Cli::try_parse_from(args)
                .map(|_| ())
                .expect_err("refused")
                .to_string()
        };
        assert!(error(&["loadgen", "idle", "--sessions", "0"]).contains("--sessions"));
        assert!(error(&["loadgen", "chat", "--tokens-per-sec", "0"]).contains("above 0"));
        assert!(error(&["loadgen", "chat", "--tokens-per-sec", "fast"]).contains("a number"));
        assert!(error(&["loadgen", "burst", "--node", "nowhere"]).contains("HOST:PORT"));
        assert!(error(&["loadgen", "idle", "--sources", "0"]).contains("--sources"));
        let external = Cli::try_parse_from(["loadgen", "chat", "--node", "127.0.0.1:8080"])
            .map(|c| c.scenario);
        let Ok(Scenario::Chat { common, .. }) = external else {
            panic!("parses: {external:?}");
        };
        let refused = common.common().expect_err("needs --model-port").to_string();
        assert!(refused.contains("--model-port"), "{refused}");
        let ok = Cli::try_parse_from([
            "loadgen",
            "chat",
            "--node",
            "127.0.0.1:8080",
            "--model-port",
            "9000",
        ]);
        assert!(matches!(
            ok.map(|c| c.scenario),
            Ok(Scenario::Chat {
                common: CommonArgs {
                    node: NodeArg::At(_),
                    ..
                },
                ..
            })
        ));
    }
}
