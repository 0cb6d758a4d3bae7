//! The node processes of a run, one per host namespace, started with `ip netns exec`, and
//! the log of every line they print (JSON), which the faults wait on. Every process is
//! killed and reaped on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::net::{Network, address};

/// One line a node printed.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) t_ms: u64,
    pub(crate) node: String,
    pub(crate) kind: String,
    pub(crate) fields: Value,
}

impl Line {
    /// For `member` lines: the event and whom it is about.
    pub(crate) fn member(&self) -> Option<(&str, &str)> {
        if self.kind != "member" {
            return None;
        }
        Some((self.fields["event"].as_str()?, self.fields["about"].as_str().unwrap_or("")))
    }
}

/// Every line of every node, in arrival order.
#[derive(Default)]
pub(crate) struct Log {
    lines: Mutex<Vec<Line>>,
    grew: Condvar,
}

impl Log {
    fn push(&self, line: Line) {
        self.lines.lock().expect("not poisoned").push(line);
        self.grew.notify_all();
    }

    /// Waits until `done` holds for the lines so far, for at most `limit`; returns what it
    /// returned last.
    pub(crate) fn wait_for<T>(&self, limit: Duration, mut done: impl FnMut(&[Line]) -> Option<T>) -> Option<T> {
        let until = Instant::now() + limit;
        let mut lines = self.lines.lock().expect("not poisoned");
        loop {
            if let Some(found) = done(&lines) {
                return Some(found);
            }
            let left = until.checked_duration_since(Instant::now())?;
            lines = self.grew.wait_timeout(lines, left).expect("not poisoned").0;
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<Line> {
        self.lines.lock().expect("not poisoned").clone()
    }
}

struct Process {
    name: String,
    child: Child,
}

/// The processes of a run.
pub(crate) struct Nodes {
    binary: PathBuf,
    dev_ca_dir: PathBuf,
    pub(crate) log: Arc<Log>,
    running: BTreeMap<usize, Process>,
}

/// The gossip port every node uses on its own address.
const GOSSIP_PORT: u16 = 7946;

impl Nodes {
    pub(crate) fn new(binary: PathBuf, dev_ca_dir: PathBuf) -> Self {
        Self { binary, dev_ca_dir, log: Arc::default(), running: BTreeMap::new() }
    }

    /// Starts the worker of host `host`, joining through host `seed` (itself: the first).
    pub(crate) fn start_worker(&mut self, net: &Network, host: usize, seed: usize) -> Result<(), String> {
        let me = address(host);
        let zone = format!("zone={}", if host % 2 == 0 { "b" } else { "a" });
        let args = [
            "worker".to_owned(),
            "--bind".to_owned(),
            format!("{me}:7000"),
            "--tag".to_owned(),
            zone,
            "--service-time-ms".to_owned(),
            "1".to_owned(),
        ];
        self.start(net, host, &format!("w{host}"), seed, &args)
    }

    /// Starts the client of host `host`, its calls with a deadline of `timeout_ms`.
    pub(crate) fn start_client(
        &mut self,
        net: &Network,
        host: usize,
        seed: usize,
        workers: usize,
        timeout_ms: u64,
    ) -> Result<(), String> {
        let args = [
            "client".to_owned(),
            "--workers".to_owned(),
            workers.to_string(),
            "--timeout-ms".to_owned(),
            timeout_ms.to_string(),
            "--concurrency".to_owned(),
            "8".to_owned(),
        ];
        self.start(net, host, &format!("c{host}"), seed, &args)
    }

    fn start(&mut self, net: &Network, host: usize, name: &str, seed: usize, role: &[String]) -> Result<(), String> {
        let me = address(host);
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &net.namespace(host)]).arg(&self.binary).args(role).args([
            "--name",
            name,
            "--dev",
            "--json",
            "--gossip",
            &format!("{me}:{GOSSIP_PORT}"),
        ]);
        if seed != host {
            command.args(["--seed", &format!("{}:{GOSSIP_PORT}", address(seed))]);
        }
        command.env("RPCNET_DEV_CA_DIR", &self.dev_ca_dir).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = command.spawn().map_err(|e| format!("starting {name}: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    log.push(Line {
                        t_ms: value["t_ms"].as_u64().unwrap_or(0),
                        node: value["node"].as_str().unwrap_or("?").to_owned(),
                        kind: value["kind"].as_str().unwrap_or("?").to_owned(),
                        fields: value,
                    });
                }
            }
        });
        self.running.insert(host, Process { name: name.to_owned(), child });
        Ok(())
    }

    /// The names of the nodes running now, but `except`.
    pub(crate) fn names_except(&self, except: &[usize]) -> Vec<String> {
        self.running.iter().filter(|(host, _)| !except.contains(host)).map(|(_, p)| p.name.clone()).collect()
    }

    /// The name of host `host`'s node.
    pub(crate) fn name(&self, host: usize) -> Option<String> {
        self.running.get(&host).map(|p| p.name.clone())
    }

    /// SIGKILL: the host's node dies without a word.
    pub(crate) fn kill(&mut self, host: usize) {
        if let Some(mut process) = self.running.remove(&host) {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }

    /// SIGTERM, then waits (at most `limit`) for the node to exit; true if it did.
    pub(crate) fn terminate(&mut self, host: usize, limit: Duration) -> bool {
        let Some(mut process) = self.running.remove(&host) else { return false };
        let _ = Command::new("kill").args(["-TERM", &process.child.id().to_string()]).status();
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Ok(Some(_)) = process.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = process.child.kill();
        let _ = process.child.wait();
        false
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for (_, mut process) in std::mem::take(&mut self.running) {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }
}

/// Processes whose environment names `ca_dir` (every node of a run has it): 0 once the
/// run's nodes are gone.
pub(crate) fn processes_with(ca_dir: &std::path::Path) -> usize {
    let marker = format!("RPCNET_DEV_CA_DIR={}", ca_dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|entry| std::fs::read(entry.path().join("environ")).ok())
        .filter(|environ| environ.split(|&b| b == 0).any(|var| var == marker.as_bytes()))
        .count()
}
