//! The core's defences, datagram by datagram: replays and messages whose sender is not
//! their source are refused, whatever the message kind; and what a remembered failure costs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::members::Known;
use super::{Core, Transmit};
use crate::cluster::events::NodeState;
use crate::cluster::wire::{Envelope, Message};
use crate::cluster::{ClusterConfig, NodeId};

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 7946))
}

struct Harness {
    config: ClusterConfig,
    start: Instant,
    wall: SystemTime,
}

impl Harness {
    fn new() -> Self {
        Self { config: ClusterConfig::dev(), start: Instant::now(), wall: SystemTime::now() }
    }

    fn core(&self, i: u8) -> Core {
        let config = self.config.core_config().unwrap();
        let keyring = self.config.keyring().unwrap();
        let me = NodeId { addr: addr(i), bump: 1 };
        Core::new(config, me, format!("n{i}"), None, BTreeMap::new(), keyring, u64::from(i), self.start, self.wall)
    }

    /// `message` sealed as the member at `from` seals it.
    fn sealed(&self, from: SocketAddr, message: &Message) -> Vec<u8> {
        self.config.keyring().unwrap().seal(&Envelope::encode(from, message), self.wall)
    }
}

fn drain(core: &mut Core) -> Vec<Transmit> {
    std::iter::from_fn(|| core.poll_transmit()).collect()
}

#[test]
fn a_replayed_datagram_is_refused() {
    let harness = Harness::new();
    let (mut a, mut b) = (harness.core(1), harness.core(2));
    a.join(&[addr(2)], harness.start);
    let datagrams: Vec<Transmit> = drain(&mut a).into_iter().filter(|t| t.to == addr(2)).collect();
    assert!(!datagrams.is_empty(), "a joining node writes to its seed");
    let now = harness.start + Duration::from_millis(5);
    for t in &datagrams {
        b.handle_datagram(addr(1), &t.data, now);
    }
    let accepted = b.stats();
    assert_eq!((accepted.datagrams_received, accepted.rejected), (datagrams.len() as u64, 0));
    drain(&mut b);

    // The same datagrams again, from the same address, half a minute later.
    let later = now + Duration::from_secs(30);
    for t in &datagrams {
        b.handle_datagram(addr(1), &t.data, later);
    }
    let after = b.stats();
    assert_eq!(after.datagrams_received, accepted.datagrams_received, "no copy is accepted");
    assert_eq!(after.rejected, datagrams.len() as u64, "every copy is refused as a replay");
    assert!(drain(&mut b).is_empty(), "a replay gets no answer");
}

#[test]
fn a_message_whose_sender_is_not_its_source_is_refused_whatever_its_kind() {
    let harness = Harness::new();
    let mut b = harness.core(2);
    let now = harness.start + Duration::from_millis(5);
    // A summary that differs from b's view makes b send its whole view back: the
    // amplification a replay from a third address would buy, if it were accepted.
    let summary = harness.sealed(addr(1), &Message::Summary(0xdead_beef));
    b.handle_datagram(addr(3), &summary, now);
    assert_eq!(b.stats().rejected, 1, "a summary naming 10.0.0.1, arriving from 10.0.0.3, is refused");
    assert!(drain(&mut b).is_empty(), "and answered with nothing");
    let wanted = harness.sealed(addr(1), &Message::MetaWanted(vec![b.me()]));
    b.handle_datagram(addr(3), &wanted, now);
    assert_eq!(b.stats().rejected, 2, "so is a request for metadata");
    assert!(drain(&mut b).is_empty());

    // From its real sender, the same summary is answered (to the sender only).
    b.handle_datagram(addr(1), &summary, now);
    let answers = drain(&mut b);
    assert!(!answers.is_empty() && answers.iter().all(|t| t.to == addr(1)), "answered to its sender: {answers:?}");
    assert_eq!(b.stats().datagrams_received, 1);
}

#[test]
fn only_members_up_have_a_health_entry() {
    let harness = Harness::new();
    let mut b = harness.core(2);
    let now = harness.start + Duration::from_millis(5);
    for i in 10..60 {
        let datagram = harness.sealed(addr(i), &Message::Summary(u64::from(i)));
        b.handle_datagram(addr(i), &datagram, now);
        b.heartbeat(addr(i), now);
    }
    assert_eq!(b.health_entries(), 0, "signals about addresses that are not members leave no trace");
}

#[test]
fn a_member_declared_failed_is_asked_once_a_gossip_interval_whether_it_is_back() {
    let harness = Harness::new();
    let mut a = harness.core(1);
    let gone = NodeId { addr: addr(9), bump: 1 };
    let failed = Known {
        id: gone,
        state: NodeState::Failed,
        announced: true,
        rejoining: false,
        tags: BTreeMap::new(),
        down_since: Some(harness.start),
    };
    a.known.insert(gone.addr, failed);
    let mut asked = Vec::new();
    for tenth in 1..=100 {
        a.handle_timeout(harness.start + Duration::from_millis(100 * tenth));
        asked.extend(drain(&mut a).into_iter().filter(|t| t.to == gone.addr));
    }
    // The default gossip interval is 500 ms: twenty questions in 10 s, each one summary datagram.
    assert_eq!(asked.len(), 20, "{asked:?}");
    let keyring = harness.config.keyring().unwrap();
    for t in &asked {
        let opened = keyring.open(&t.data, harness.wall).expect("sealed with the cluster key");
        let envelope = Envelope::from_bytes(&opened).expect("an envelope");
        assert!(matches!(envelope.message, Message::Summary(_)), "{:?}", envelope.message);
        assert!(t.data.len() <= 80, "a summary is small: {} bytes", t.data.len());
    }
}
