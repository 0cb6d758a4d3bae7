//! The gossip datagram path of a cluster node: unsealing, the envelope, the message kinds
//! and foca's SWIM decoding, fed by the fuzzer three ways: as a datagram from a stranger
//! (no key), sealed with a wrong key, and sealed with the cluster's own key around an
//! arbitrary message (so that everything past unsealing is reached). No input may panic
//! the node. A datagram without the right key is refused, counted, and changes nothing:
//! the two-node cluster still agrees afterwards. (A member holding the key is trusted: it
//! may tell lies about membership, which failure detection then corrects over seconds.)
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use rpcnet::cluster::sim::{SimConfig, Simulation};
use rpcnet::cluster::{ClusterKey, Keyring};

fn wrong_key() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| Keyring::new(ClusterKey::from_secret("not the cluster's key")))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    let config = SimConfig { nodes: 2, seeds: 1, join_spread: Duration::ZERO, ..SimConfig::default() };
    let mut sim = Simulation::new(config);
    sim.run_for(Duration::from_millis(500));
    let stranger = "192.0.2.7:7946".parse().unwrap();
    let rejected = sim.stats(0).rejected;
    let keyless = match mode % 3 {
        0 => {
            sim.deliver(0, stranger, body);
            true
        }
        1 => {
            sim.deliver(0, stranger, &wrong_key().seal(body, SystemTime::now()));
            true
        }
        _ => {
            let datagram = sim.seal_from(1, body);
            let from = sim.address(1);
            sim.deliver(0, from, &datagram);
            false
        }
    };
    if keyless {
        assert_eq!(sim.stats(0).rejected, rejected + 1, "a datagram without the key is refused");
        sim.run_for(Duration::from_secs(2));
        assert!(sim.converged(), "a datagram without the key changed the cluster");
    } else {
        sim.run_for(Duration::from_secs(2));
    }
});
