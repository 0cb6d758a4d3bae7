//! What a node prints: one line per event (membership changes it sees, its own start and
//! stop), per second of load and for the summary; as text for a person, or as one JSON
//! object per line for a script (`--json`), each stamped with the wall clock in ms.

use std::time::{SystemTime, UNIX_EPOCH};

use rpcnet::cluster::{ClusterEvent, ClusterMembership};
use serde_json::{Value, json};

/// Where a node's lines go (stdout), and in which form.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    node: String,
    json: bool,
}

/// Milliseconds since the Unix epoch: the clock every node of one host shares.
pub(crate) fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Output {
    pub(crate) fn new(node: &str, json: bool) -> Self {
        Self { node: node.to_owned(), json }
    }

    /// Prints `fields` under `kind`, or `text` without `--json`.
    #[allow(clippy::print_stdout)] // the binary's output
    pub(crate) fn print(&self, kind: &str, fields: Value, text: impl FnOnce() -> String) {
        if self.json {
            let mut line = json!({ "t_ms": wall_ms(), "node": self.node, "kind": kind });
            if let (Value::Object(line), Value::Object(fields)) = (&mut line, fields) {
                line.extend(fields);
            }
            println!("{line}");
        } else {
            println!("{}", text());
        }
    }

    /// Prints every membership change `cluster` sees, until it stops. Members that joined
    /// before it subscribed (while the membership was starting) are printed as joined
    /// first, so that every member this node knows has a line; one may have two.
    pub(crate) fn watch(&self, cluster: &ClusterMembership) -> tokio::task::JoinHandle<()> {
        let mut events = cluster.subscribe();
        for node in cluster.nodes().into_iter().filter(|n| n.is_up()) {
            self.print("member", json!({ "event": "joined", "about": node.name.clone(), "minority": null }), || {
                format!("[{}] {} joined", self.node, node.name)
            });
        }
        let out = self.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let (what, about, minority) = match &event {
                    ClusterEvent::NodeJoined(n) => ("joined", n.name.clone(), None),
                    ClusterEvent::NodeLeft(n) => ("left", n.name.clone(), None),
                    ClusterEvent::NodeFailed(n) => ("failed", n.name.clone(), None),
                    ClusterEvent::NodeSuspect(n) => ("suspect", n.name.clone(), None),
                    ClusterEvent::NodeRecovered(n) => ("recovered", n.name.clone(), None),
                    ClusterEvent::NodeUpdated(n) => ("updated", n.name.clone(), None),
                    ClusterEvent::PartitionDetected(p) => ("partition", String::new(), Some(p.minority)),
                    ClusterEvent::PartitionHealed(p) => ("healed", String::new(), Some(p.minority)),
                    ClusterEvent::Lagged { missed } => ("lagged", missed.to_string(), None),
                    _ => ("other", String::new(), None),
                };
                out.print(
                    "member",
                    json!({ "event": what, "about": about, "minority": minority }),
                    || match minority {
                        Some(minority) => format!("[{}] {what} (this side is the minority: {minority})", out.node),
                        None => format!("[{}] {about} {what}", out.node),
                    },
                );
            }
        })
    }
}
