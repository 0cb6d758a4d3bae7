//! DNS discovery against an in-process DNS server on loopback (`zone.rs`): a `DnsSource`
//! following A/AAAA and SRV records as a test changes them, through failures, driven by
//! TTLs, under a balanced typed client (`source.rs`); gossip seeds given as a DNS name
//! (`seeds.rs`). One binary: the metrics recorder it reads is global.
#![allow(missing_docs)]

mod seeds;
mod source;
mod zone;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use rpcnet::Endpoint;
use rpcnet::discovery::DnsResolverConfig;
use tokio::sync::watch;

/// How long any awaited change may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// The global recorder's reader, installed by the first test that asks, and the failures
/// counted so far by target: a snapshot takes the counters' values (resets them), so every
/// snapshot's counts are added here, whichever test took it.
fn recorder() -> &'static (Snapshotter, Mutex<HashMap<String, u64>>) {
    static RECORDER: OnceLock<(Snapshotter, Mutex<HashMap<String, u64>>)> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("the only recorder of this test binary");
        (snapshotter, Mutex::new(HashMap::new()))
    })
}

/// `rpcnet_dns_resolution_failures_total{target}` so far.
fn failures(target: &str) -> u64 {
    let (snapshotter, counted) = recorder();
    let mut counted = counted.lock().unwrap();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if key.kind() != MetricKind::Counter || key.key().name() != "rpcnet_dns_resolution_failures_total" {
            continue;
        }
        let Some(label) = key.key().labels().find(|l| l.key() == "target") else { continue };
        let DebugValue::Counter(n) = value else { panic!("not a counter: {value:?}") };
        *counted.entry(label.value().to_owned()).or_default() += n;
    }
    counted.get(target).copied().unwrap_or(0)
}

/// Waits (bounded) until the failure counter of `target` passes `above`.
async fn failures_above(target: &str, above: u64) -> u64 {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let n = failures(target);
            if n > above {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{target}: no failure counted past {above}"))
}

/// A resolver asking only the test's server, quick to give up on it.
fn resolver(dns: &zone::TestDns) -> DnsResolverConfig {
    DnsResolverConfig::default()
        .with_name_servers([dns.addr()])
        .with_query_timeout(Duration::from_millis(300))
        .with_attempts(1)
}

/// The addresses of a set, as text, sorted.
fn addrs(set: &[Endpoint]) -> Vec<String> {
    let mut addrs: Vec<String> = set.iter().map(|e| e.addr().to_string()).collect();
    addrs.sort();
    addrs
}

/// Waits (bounded) for the set to hold exactly `expected` (addresses as text), and returns it.
async fn set_becomes(endpoints: &mut watch::Receiver<Arc<Vec<Endpoint>>>, expected: &[&str]) -> Arc<Vec<Endpoint>> {
    let want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    let waited = tokio::time::timeout(PATIENCE, async {
        endpoints.wait_for(|set| addrs(set) == want).await.map(|set| set.clone())
    })
    .await;
    match waited {
        Ok(Ok(set)) => set,
        Ok(Err(_)) => panic!("the source stopped before publishing {want:?}"),
        Err(_) => panic!("the set is {:?}, not {want:?}", addrs(&endpoints.borrow())),
    }
}
