//! The node under load: a child process the load generator starts (the
//! default: its memory and CPU are the node's alone), a node in the load
//! generator's own process, or a node already running elsewhere.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tempfile::TempDir;
use tokio::io::AsyncBufReadExt;

use mikabot::config::Settings;
use mikabot::startup::{Application, Stopper};

/// Where the node comes from.
#[derive(Clone, Debug)]
pub enum NodeChoice {
    /// A child process running `exe node` (`exe` is the load generator
    /// binary).
    Child { exe: PathBuf },
    /// A node inside this process (memory and CPU figures then include the
    /// load generator).
    InProcess,
    /// A running node at `addr`, whose model base URL points at the load
    /// generator's model (`--model-port`); `pid` lets its memory and CPU be
    /// read.
    External { addr: SocketAddr, pid: Option<u32> },
}

/// Settings for a node the load generator starts, as `MIKABOT__` variables:
/// loopback, a fresh data directory, the load generator's model, a store
/// budget no run reaches, and a
/// scenario's own `extra` settings. Variables already set in the
/// environment win, so any setting can be changed for a run.
pub fn node_env(
    model_base_url: &str,
    data_dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let storage = mikabot::storage::StorageOptions::env_in(data_dir);
    let storage: Vec<(&str, &str)> = storage.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ours = [
        ("MIKABOT__SERVER__HOST", "127.0.0.1"),
        ("MIKABOT__SERVER__PORT", "0"),
        ("MIKABOT__MODEL__PROVIDER", "openai"),
        ("MIKABOT__MODEL__BASE_URL", model_base_url),
        ("MIKABOT__MODEL__API_KEY", "loadgen"),
        ("MIKABOT__LOG__FILTER", "warn"),
        // A run measures streaming, not the daily budget: at 5 million
        // tokens a store, a 30 s run of 1,000 shoppers with query rewrites
        // would spend it and get offline answers for its last replies.
        ("MIKABOT__LIMITS__STORE_DAILY_TOKENS", "1000000000000"),
    ];
    ours.iter()
        .chain(&storage)
        .chain(extra)
        .filter(|(key, _)| std::env::var_os(key).is_none())
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

enum Kind {
    Child(tokio::process::Child),
    InProcess {
        stopper: Stopper,
        thread: std::thread::JoinHandle<anyhow::Result<()>>,
    },
    /// External, or already stopped.
    Stopped,
}

/// A node taking load.
pub struct RunningNode {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    /// The data directory of a node the load generator started.
    pub data_dir: Option<PathBuf>,
    /// "child process", "in process" or "external".
    pub kind_name: &'static str,
    alone: bool,
    kind: Kind,
    _dir: Option<TempDir>,
}

/// Line a `node` command prints once it listens.
const LISTENING: &str = "listening ";

/// The `node` command: a node configured from the environment, printing
/// its address once it listens. Blocks until the node stops.
pub fn run_node_command() -> anyhow::Result<()> {
    let settings = Settings::load_with_env(None, std::env::vars())?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&settings.log.filter))
        .with_writer(std::io::stderr)
        .init();
    actix_web::rt::System::new().block_on(async move {
        let host = settings.server.host;
        let app = Application::build(settings).await?;
        println!("{LISTENING}{}", SocketAddr::new(host, app.port()));
        app.run_until_stopped(true).await
    })
}

impl RunningNode {
    /// Starts (or finds) the node. `env` is what [`node_env`] gave, plus
    /// the scenario's own settings.
    pub async fn start(
        choice: &NodeChoice,
        env: Vec<(String, String)>,
        dir: TempDir,
    ) -> anyhow::Result<Self> {
        let path = dir.path().to_path_buf();
        Self::start_with(choice, env, path, Some(dir)).await
    }

    /// Starts the node on a data directory the caller keeps (to restart on
    /// it).
    pub async fn start_on(
        choice: &NodeChoice,
        env: Vec<(String, String)>,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        Self::start_with(choice, env, data_dir.to_path_buf(), None).await
    }

    async fn start_with(
        choice: &NodeChoice,
        env: Vec<(String, String)>,
        data_dir: PathBuf,
        dir: Option<TempDir>,
    ) -> anyhow::Result<Self> {
        match choice {
            NodeChoice::Child { exe } => {
                let mut child = tokio::process::Command::new(exe)
                    .arg("node")
                    .envs(env)
                    .stdout(std::process::Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .context("starting the node process")?;
                let stdout = child.stdout.take().context("the node's stdout")?;
                let mut lines = tokio::io::BufReader::new(stdout).lines();
                let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                    .await
                    .context("the node did not start within 60 s")??
                    .context("the node exited before listening")?;
                let addr: SocketAddr = line
                    .strip_prefix(LISTENING)
                    .context("unexpected first line from the node")?
                    .parse()?;
                Ok(Self {
                    addr,
                    pid: child.id(),
                    data_dir: Some(data_dir),
                    kind_name: "child process",
                    alone: true,
                    kind: Kind::Child(child),
                    _dir: dir,
                })
            }
            NodeChoice::InProcess => {
                let settings = Settings::load_with_env(None, std::env::vars().chain(env))?;
                let host = settings.server.host;
                let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
                let thread = std::thread::Builder::new()
                    .name("node".into())
                    .spawn(move || {
                        actix_web::rt::System::new().block_on(async move {
                            let app = Application::build(settings).await?;
                            let _ = ready_tx.send((app.port(), app.stopper()));
                            app.run_until_stopped(false).await
                        })
                    })?;
                let (port, stopper) = ready_rx
                    .await
                    .context("the in-process node did not start")?;
                Ok(Self {
                    addr: SocketAddr::new(host, port),
                    pid: Some(std::process::id()),
                    data_dir: Some(data_dir),
                    kind_name: "in process",
                    alone: false,
                    kind: Kind::InProcess { stopper, thread },
                    _dir: dir,
                })
            }
            NodeChoice::External { addr, pid } => Ok(Self {
                addr: *addr,
                pid: *pid,
                data_dir: None,
                kind_name: "external",
                alone: true,
                kind: Kind::Stopped,
                _dir: None,
            }),
        }
    }

    /// Whether memory and CPU read from `pid` are the node's alone.
    pub fn measured_alone(&self) -> bool {
        self.alone
    }

    pub fn ws_url(&self, store: &str) -> String {
        format!("ws://{}/v1/widget/ws?store={store}", self.addr)
    }

    /// The Origin the node's own pages send (allowed by `self`).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Resident memory of the node's process, bytes.
    pub fn rss(&self) -> Option<u64> {
        self.pid.and_then(rss_bytes)
    }

    /// CPU time (user + system) the node's process used so far.
    pub fn cpu(&self) -> Option<Duration> {
        self.pid.and_then(cpu_time)
    }

    /// Stops a node the load generator started: a child process with
    /// `SIGKILL` (what a crash does: only what was flushed survives), a node
    /// in this process gracefully. The data directory stays until the node
    /// is dropped. An external node is left running.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        match std::mem::replace(&mut self.kind, Kind::Stopped) {
            Kind::Child(mut child) => child.kill().await?,
            Kind::InProcess { stopper, thread } => {
                stopper.stop().await;
                tokio::task::spawn_blocking(move || thread.join())
                    .await?
                    .map_err(|_| anyhow::anyhow!("the node thread panicked"))??;
            }
            Kind::Stopped => {}
        }
        Ok(())
    }
}

/// `VmRSS` of a process, bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU time of a process (Linux reports it in ticks of
/// 1/100 s).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it don't.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu_readings() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).is_some_and(|rss| rss > 0));
        assert!(cpu_time(pid).is_some());
        assert_eq!(rss_bytes(u32::MAX), None);
    }
}
