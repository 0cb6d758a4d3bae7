//! The `rpcnet_client_*` series a balanced typed client exports through the `metrics` facade,
//! read back with metrics-util's `DebuggingRecorder`. The recorder is global, so this file
//! is a test binary of its own with one test, and installs it before building the client:
//! handles are made when a client first sees an endpoint.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use rpcnet::balance::Endpoint;
use rpcnet::{LoadBalancingStrategy, RpcConfig, RpcServer, rpc_service};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nope;

#[rpc_service]
pub trait Probe {
    async fn ping(&self) -> u32;
    async fn refuse(&self) -> Result<u32, Nope>;
}

struct Prober;

impl Probe for Prober {
    async fn ping(&self) -> u32 {
        1
    }

    async fn refuse(&self) -> Result<u32, Nope> {
        Err(Nope)
    }
}

/// `(kind, name, endpoint label, endpoint id)` of a series.
type Series = (MetricKind, String, Option<String>, Option<String>);

fn series(key: &CompositeKey) -> Series {
    let label = |name: &str| key.key().labels().find(|l| l.key() == name).map(|l| l.value().to_owned());
    (key.kind(), key.key().name().to_owned(), label("endpoint"), label("endpoint_id"))
}

#[tokio::test]
async fn balanced_clients_export_per_endpoint_series_labelled_by_label_and_id() {
    rpcnet_tests::subscribe();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder of this test binary");

    let mut addrs = Vec::new();
    for _ in 0..2 {
        let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
        server.add_service(ProbeServer::new(Prober));
        addrs.push(server.spawn().unwrap());
    }
    let endpoints = [("n1", "alpha"), ("n2", "beta")]
        .into_iter()
        .zip(&addrs)
        .map(|((id, label), (addr, _))| Endpoint::new(id, *addr).with_label(label));
    let client = ProbeClient::builder()
        .endpoints(endpoints)
        .config(RpcConfig::dev("127.0.0.1:0").with_connect_timeout(Duration::from_secs(2)))
        .strategy(LoadBalancingStrategy::RoundRobin)
        .connect()
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(client.ping().await.unwrap(), 1);
    }
    // Round robin: alpha, beta, alpha; then beta refuses with the service's own error.
    assert_eq!(client.refuse().await.unwrap(), Err(Nope));

    let values: HashMap<Series, DebugValue> =
        snapshotter.snapshot().into_vec().into_iter().map(|(key, _, _, value)| (series(&key), value)).collect();
    let get = |kind, name: &str, label: &str, id: &str| {
        values.get(&(kind, name.to_owned(), Some(label.to_owned()), Some(id.to_owned())))
    };
    let counter = |name, label, id| match get(MetricKind::Counter, name, label, id) {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        other => panic!("{name} is not a counter: {other:?}"),
    };
    assert_eq!(counter("rpcnet_client_calls_total", "alpha", "n1"), 2, "{values:?}");
    assert_eq!(counter("rpcnet_client_calls_total", "beta", "n2"), 2, "the refused call was answered: {values:?}");
    assert_eq!(counter("rpcnet_client_errors_total", "beta", "n2"), 0, "a service error is not an endpoint error");
    assert_eq!(counter("rpcnet_client_ejections_total", "beta", "n2"), 0);
    for (label, id) in [("alpha", "n1"), ("beta", "n2")] {
        match get(MetricKind::Gauge, "rpcnet_client_in_flight", label, id) {
            Some(DebugValue::Gauge(v)) => assert_eq!(v.into_inner(), 0.0, "{label}: nothing in flight after the calls"),
            other => panic!("no in-flight gauge for {label}: {other:?}"),
        }
        match get(MetricKind::Histogram, "rpcnet_client_latency_seconds", label, id) {
            Some(DebugValue::Histogram(samples)) => {
                assert_eq!(samples.len(), 2, "{label}: one latency per call");
                assert!(samples.iter().all(|s| s.into_inner() > 0.0), "{label}: {samples:?}");
            }
            other => panic!("no latency histogram for {label}: {other:?}"),
        }
    }
}
