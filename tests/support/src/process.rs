//! The node binary in a child process, as an operator runs it: configured
//! through `MIKABOT__` variables, on port 0, its log captured line by line.
//! For what only a real process shows: signals, exit, everything it logs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A node running as a child process.
pub struct NodeProcess {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

/// Removes terminal colour sequences (`ESC [ … m`) from a log line.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The port in a "listening" line, text (`address=127.0.0.1:PORT`) or JSON
/// (`"address":"127.0.0.1:PORT"`).
fn listening_port(line: &str) -> Option<u16> {
    if !line.contains("listening") {
        return None;
    }
    let (_, rest) = line.split_once("address")?;
    let address: String = rest
        .trim_start_matches(['=', '"', ':'])
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    address.rsplit_once(':')?.1.parse().ok()
}

impl NodeProcess {
    /// Starts `binary` with `data_dir` and the given settings, and waits
    /// until it listens.
    pub fn start(binary: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(binary)
            .env("MIKABOT__SERVER__PORT", "0")
            .env("MIKABOT__SERVER__PUBLIC_URL", "http://localhost:8080")
            .envs(mikabot::storage::StorageOptions::env_in(data_dir))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the node binary starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let streams: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped stdout")),
            Box::new(child.stderr.take().expect("piped stderr")),
        ];
        for stream in streams {
            let (log, port_tx) = (Arc::clone(&log), port_tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let line = plain(&line);
                    if let Some(port) = listening_port(&line) {
                        let _ = port_tx.send(port);
                    }
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            });
        }
        let port = match port_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("the node did not listen within 60 s; its log: {:#?}", log);
            }
        };
        Self { child, port, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ws_url(&self, store: &str) -> String {
        format!("ws://127.0.0.1:{}/v1/widget/ws?store={store}", self.port)
    }

    /// Sends SIGTERM, as a service manager stopping the node does.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `limit` for the process to exit; `None` if it is still
    /// running (it is then killed).
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited on") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every line the node has logged so far, colours removed.
    pub fn log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_read_from_a_text_or_json_listening_line() {
        let text = "\u{1b}[2m2026-12-01T20:00:00Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m mikabot::startup: listening \u{1b}[3maddress\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:40123";
        assert_eq!(listening_port(&plain(text)), Some(40123));
        let json =
            r#"{"level":"INFO","fields":{"message":"listening","address":"127.0.0.1:40124"}}"#;
        assert_eq!(listening_port(json), Some(40124));
        assert_eq!(listening_port("store ready"), None);
    }
}
