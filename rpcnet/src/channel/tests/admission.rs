//! Admission: shedding at the cap, the FIFO queue and the deadlines that bound waiting in
//! it, least-connections placement, and a slot held exactly as long as its call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::mock::*;
use crate::balance::{LeastConnections, RoundRobin};
use crate::channel::balanced::{Balanced, Policy};
use crate::client::CallOptions;
use crate::error::RpcError;

#[tokio::test(start_paused = true)]
async fn calls_over_the_cap_are_shed_when_the_channel_does_not_queue() {
    let cluster = Cluster::new(&["a", "b"]);
    let balanced = cluster.channel(RoundRobin::new(), capped(1, false)).await;
    let busy = [spawn_work(&balanced, 400).await, spawn_work(&balanced, 400).await];
    assert_eq!(in_flight(&balanced), 2, "both endpoints hold a call");
    let err = balanced.unary("Work.run", MethodPolicy::new(), work(0), &CallOptions::new()).await.unwrap_err();
    assert!(matches!(err, RpcError::Overloaded(_)), "every endpoint is at its cap of 1: {err:?}");
    assert!(err.is_retry_safe(), "a shed call never left the client");
    for call in busy {
        call.await.unwrap().unwrap();
    }
    assert_eq!(in_flight(&balanced), 0);
}

#[tokio::test(start_paused = true)]
async fn a_queued_call_waits_for_a_slot_until_its_deadline_and_no_longer() {
    let cluster = Cluster::new(&["a"]);
    let balanced = cluster.channel(RoundRobin::new(), capped(1, true)).await;
    let holder = spawn_work(&balanced, 300).await;
    let started = Instant::now();
    let late = balanced
        .unary("Work.run", MethodPolicy::new(), work(0), &CallOptions::new().with_timeout(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert!(matches!(late, RpcError::Timeout), "{late:?}");
    assert_eq!(started.elapsed(), Duration::from_millis(50), "it waited exactly its deadline");
    let patient = balanced.unary("Work.run", MethodPolicy::new(), work(0), &CallOptions::new()).await.map(name);
    assert_eq!(patient.unwrap(), "a", "a call that can wait gets the slot once it frees");
    assert_eq!(started.elapsed(), Duration::from_millis(300), "the moment the holder finished");
    holder.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn queued_calls_get_their_slots_in_the_order_they_queued() {
    let cluster = Cluster::new(&["a"]);
    let balanced = cluster.channel(RoundRobin::new(), capped(1, true)).await;
    let holder = spawn_work(&balanced, 300).await;
    let finished = Arc::new(Mutex::new(Vec::new()));
    let mut queued = Vec::new();
    for id in 0..4 {
        let (balanced, finished) = (balanced.clone(), finished.clone());
        queued.push(tokio::spawn(async move {
            balanced.unary("Work.run", MethodPolicy::new(), work(5), &CallOptions::new()).await.unwrap();
            finished.lock().unwrap().push(id);
        }));
        // Each call queues before the next is made.
        tokio::task::yield_now().await;
    }
    holder.await.unwrap().unwrap();
    for call in queued {
        call.await.unwrap();
    }
    assert_eq!(*finished.lock().unwrap(), [0, 1, 2, 3], "first queued, first served");
}

#[tokio::test(start_paused = true)]
async fn a_queued_server_stream_waits_for_a_slot_no_longer_than_the_default_deadline() {
    let cluster = Cluster::new(&["a"]);
    let balanced = Balanced::new(
        Arc::new(RoundRobin::new()),
        cluster.connector(&[]),
        cluster.endpoints.clone(),
        capped(1, true),
        Some(Duration::from_millis(200)),
        None,
    );
    balanced.endpoints.connect_all().await.unwrap();
    let balanced = Arc::new(balanced);
    let holder = {
        let balanced = balanced.clone();
        tokio::spawn(async move {
            let options = CallOptions::new().with_timeout(Duration::from_secs(10));
            balanced.unary("Work.run", MethodPolicy::new(), work(1_500), &options).await
        })
    };
    tokio::task::yield_now().await;
    let started = Instant::now();
    let waited = balanced.server_streaming("Work.count", work(1), &CallOptions::new()).await.err();
    assert!(matches!(waited, Some(RpcError::Timeout)), "{waited:?}");
    assert_eq!(started.elapsed(), Duration::from_millis(200), "the wait for a slot ends at the default deadline");
    holder.await.unwrap().unwrap();
    let stream = balanced.server_streaming("Work.count", work(2), &CallOptions::new()).await.unwrap();
    assert_eq!(stream.collect_messages().await.unwrap().len(), 2, "once free, the stream runs with no deadline");
}

#[tokio::test(start_paused = true)]
async fn least_connections_keeps_new_calls_off_an_endpoint_with_one_in_flight() {
    let cluster = Cluster::new(&["a", "b", "c"]);
    let balanced = cluster.channel(LeastConnections::new(), Policy::default()).await;
    let long = spawn_work(&balanced, 500).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..20 {
        let reply = balanced.unary("Work.run", MethodPolicy::new(), work(0), &CallOptions::new()).await.unwrap();
        *counts.entry(name(reply)).or_default() += 1;
    }
    let busy = long.await.unwrap().unwrap();
    assert_eq!(counts.get(&busy), None, "the endpoint with a call in flight gets none of {counts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_or_timed_out_call_stops_counting_in_flight() {
    let cluster = Cluster::new(&["a"]);
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    let aborted = spawn_work(&balanced, 10_000).await;
    assert_eq!(in_flight(&balanced), 1);
    aborted.abort();
    assert!(aborted.await.unwrap_err().is_cancelled());
    assert_eq!(in_flight(&balanced), 0, "an aborted call no longer counts in flight");
    let options = CallOptions::new().with_timeout(Duration::from_millis(100));
    let timed_out = balanced.unary("Work.run", MethodPolicy::new(), work(10_000), &options).await;
    assert!(matches!(timed_out, Err(RpcError::Timeout)), "{timed_out:?}");
    assert_eq!(in_flight(&balanced), 0, "nor does a call that timed out");
}

#[tokio::test(start_paused = true)]
async fn a_finished_response_stream_stops_counting_in_flight_while_still_held() {
    let cluster = Cluster::new(&["a"]);
    let balanced = cluster.channel(RoundRobin::new(), Policy::default()).await;
    let mut stream = balanced.server_streaming("Work.count", work(3), &CallOptions::new()).await.unwrap();
    assert_eq!(in_flight(&balanced), 1, "an open stream is a call in flight");
    let mut seen = 0;
    while let Some(item) = stream.next().await {
        item.unwrap();
        seen += 1;
    }
    assert_eq!(seen, 3);
    assert_eq!(in_flight(&balanced), 0, "the stream ended: its call is over though it is still held");
    drop(stream);
}
