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
use tracing::Level;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

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

/// Waits (bounded) until the failure counter of `target` passes `above`: the metrics
/// recorder has no way to notify, so the counter is read again every 20 ms.
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

/// The messages rpcnet's DNS discovery logs at warn and info level, on this thread (a
/// `#[tokio::test]` runtime runs the source's task on the test's thread too).
#[derive(Clone, Default)]
struct Logged(Arc<Mutex<Vec<(Level, String)>>>);

impl Logged {
    /// Captures this thread's events until the guard is dropped.
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logged = Self::default();
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(logged.clone()));
        (logged, guard)
    }

    /// How many events at `level` have a message containing `text`.
    fn count(&self, level: Level, text: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|(l, m)| *l == level && m.contains(text)).count()
    }
}

impl<S: tracing::Subscriber> Layer<S> for Logged {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let level = *event.metadata().level();
        if event.metadata().target().starts_with("rpcnet::discovery") && level <= Level::INFO {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.0.lock().unwrap().push((level, message.0));
        }
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
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
