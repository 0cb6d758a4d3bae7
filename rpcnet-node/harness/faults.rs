//! The faults a run injects and what it measures for each: how long until every node that
//! should know did (detection), and how long after the fault ended until the cluster was
//! whole again (recovery), read from the nodes' own event lines.

use std::time::Duration;

use crate::net::Network;
use crate::nodes::{Line, Nodes};
use crate::wall_ms;

/// How long any one step may take before the run calls it missed.
const STEP_LIMIT: Duration = Duration::from_secs(60);

/// One fault and its figures.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) fault: String,
    pub(crate) target: String,
    /// Until every node that should know saw it (ms); `None`: not within the limit.
    pub(crate) detected_ms: Option<u64>,
    /// Until the cluster was whole again after the fault ended (ms).
    pub(crate) recovered_ms: Option<u64>,
    /// What else was seen: the minority's partition status.
    pub(crate) notes: String,
}

/// The time the last of `observers` printed a member event of `events` about `about` at
/// or after `since`, if all did within the limit.
fn all_saw(nodes: &Nodes, observers: &[String], about: &str, events: &[&str], since: u64) -> Option<u64> {
    nodes.log.wait_for(STEP_LIMIT, |lines: &[Line]| {
        let mut last = since;
        for observer in observers {
            let seen = lines.iter().find(|line| {
                line.t_ms >= since
                    && &line.node == observer
                    && line.member().is_some_and(|(event, whom)| whom == about && events.contains(&event))
            })?;
            last = last.max(seen.t_ms);
        }
        Some(last)
    })
}

/// When `node` reported a partition with itself in the minority, at or after `since`.
fn saw_minority(nodes: &Nodes, node: &str, since: u64, limit: Duration) -> Option<u64> {
    nodes.log.wait_for(limit, |lines: &[Line]| {
        lines
            .iter()
            .find(|line| {
                line.t_ms >= since
                    && line.node == node
                    && line.member().is_some_and(|(event, _)| event == "partition")
                    && line.fields["minority"] == true
            })
            .map(|line| line.t_ms)
    })
}

/// How the minority's status reads in the table.
fn minority_note(who: &str, at: Option<u64>, since: u64) -> String {
    match at {
        Some(at) => format!("{who} reported itself the minority after {:.1} s", (at - since) as f64 / 1000.0),
        None => format!("{who} did not report itself the minority within 20 s"),
    }
}

/// How long the minority has to see the others go, before the fault is healed: an isolated
/// node declares the others down one probe at a time.
const MINORITY_LIMIT: Duration = Duration::from_secs(20);

/// SIGKILL host `host`'s worker; restart it once every other node saw it fail.
pub(crate) fn kill(net: &Network, nodes: &mut Nodes, host: usize, seed: usize) -> Result<Row, String> {
    let name = nodes.name(host).ok_or(format!("no node on host {host}"))?;
    let observers = nodes.names_except(&[host]);
    let start = wall_ms();
    nodes.kill(host);
    let detected = all_saw(nodes, &observers, &name, &["failed"], start);
    let restart = wall_ms();
    nodes.start_worker(net, host, seed)?;
    let recovered = all_saw(nodes, &observers, &name, &["joined", "recovered"], restart);
    Ok(Row {
        fault: "kill (SIGKILL), then restart".into(),
        target: name,
        detected_ms: detected.map(|t| t - start),
        recovered_ms: recovered.map(|t| t - restart),
        notes: String::new(),
    })
}

/// Cuts host `host`'s link; heals it once every other node saw it fail.
pub(crate) fn isolate(net: &Network, nodes: &mut Nodes, host: usize) -> Result<Row, String> {
    let name = nodes.name(host).ok_or(format!("no node on host {host}"))?;
    let observers = nodes.names_except(&[host]);
    let start = wall_ms();
    net.set_link(host, false)?;
    let detected = all_saw(nodes, &observers, &name, &["failed"], start);
    let minority = saw_minority(nodes, &name, start, MINORITY_LIMIT);
    let heal = wall_ms();
    net.set_link(host, true)?;
    // Whole again: the others see it back, and it sees every one of them back.
    let mut back = all_saw(nodes, &observers, &name, &["joined", "recovered"], heal);
    for other in &observers {
        let seen = all_saw(nodes, std::slice::from_ref(&name), other, &["joined", "recovered"], heal);
        back = back.zip(seen).map(|(a, b)| a.max(b));
    }
    Ok(Row {
        fault: "partition (one host's link down), then up".into(),
        target: name,
        detected_ms: detected.map(|t| t - start),
        recovered_ms: back.map(|t| t - heal),
        notes: minority_note("the isolated node", minority, start),
    })
}

/// Splits hosts `apart` from the rest; heals once each side saw the other fail.
pub(crate) fn split(net: &Network, nodes: &mut Nodes, apart: &[usize]) -> Result<Row, String> {
    let this_side: Vec<String> = apart.iter().filter_map(|&h| nodes.name(h)).collect();
    let other_side = nodes.names_except(apart);
    let start = wall_ms();
    for &host in apart {
        net.set_side(host, true)?;
    }
    let mut detected = Some(start);
    for (observers, lost) in [(&other_side, &this_side), (&this_side, &other_side)] {
        for about in lost.iter() {
            let seen = all_saw(nodes, observers, about, &["failed"], start);
            detected = detected.zip(seen).map(|(a, b)| a.max(b));
        }
    }
    let minority_side = if this_side.len() <= other_side.len() { &this_side } else { &other_side };
    let minority = minority_side
        .iter()
        .map(|node| saw_minority(nodes, node, start, MINORITY_LIMIT))
        .try_fold(start, |last, at| at.map(|at| last.max(at)));
    let heal = wall_ms();
    for &host in apart {
        net.set_side(host, false)?;
    }
    let mut merged = Some(heal);
    for (observers, lost) in [(&other_side, &this_side), (&this_side, &other_side)] {
        for about in lost.iter() {
            let seen = all_saw(nodes, observers, about, &["joined", "recovered"], heal);
            merged = merged.zip(seen).map(|(a, b)| a.max(b));
        }
    }
    Ok(Row {
        fault: format!("split {} | {}", this_side.len(), other_side.len()),
        target: this_side.join(","),
        detected_ms: detected.map(|t| t - start),
        recovered_ms: merged.map(|t| t - heal),
        notes: minority_note("every node of the smaller side", minority, start),
    })
}
