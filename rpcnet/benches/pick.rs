//! The cost of one `Balancer::pick`, for every strategy, on 3 and on 1,000 endpoints.
//!
//! Run pinned to one core, since timings this short are dominated by scheduling noise
//! otherwise: `taskset -c 1 cargo bench -p rpcnet --bench pick`.
//!
//! Endpoints carry load as a busy client would see it: every endpoint has calls in flight
//! (so least-connections cannot stop its scan early at an idle one), most have a latency
//! estimate that must be decayed to the call's time, some have none yet, and capacities
//! and zones differ. Balancers are called through `&dyn Balancer`, as a channel calls them.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rpcnet::balance::{
    Balancer, CallInfo, ConsistentHash, Endpoint, InFlight, LeastConnections, Locality, PeakEwma, PowerOfTwoChoices,
    Random, RoundRobin, WeightedRandom, WeightedRoundRobin, affinity_hash,
};

/// The set sizes: a small service and a large fleet.
const SIZES: [usize; 2] = [3, 1_000];

/// The caller's zone for `Locality`; every third endpoint is in it.
const LOCAL_ZONE: &str = "eu-1";

/// Endpoints with load, and the guards that keep their calls in flight.
struct Fleet {
    endpoints: Vec<Endpoint>,
    /// When the calls are placed: after every recorded latency.
    now: Instant,
    _in_flight: Vec<InFlight>,
}

fn fleet(n: usize) -> Fleet {
    let zones = [LOCAL_ZONE, "us-1", "ap-1"];
    let endpoints: Vec<Endpoint> = (0..n)
        .map(|i| {
            let addr = format!("127.0.0.1:{}", 10_000 + i).parse().expect("a valid socket address");
            Endpoint::new(format!("worker-{i}"), addr)
                .with_tag("zone", zones[i % zones.len()])
                .with_tag("capacity", (1 + i % 4).to_string())
        })
        .collect();
    // 1 to 4 calls in flight each, scattered so that the least loaded is not at one end.
    let in_flight =
        endpoints.iter().enumerate().flat_map(|(i, e)| (0..1 + (i * 7 + 3) % 4).map(|_| e.start_call())).collect();
    // Answers at different times, so that estimates differ in age and must be decayed;
    // every fifth endpoint has not answered yet, so PeakEwma also takes its default path.
    let t0 = Instant::now();
    for (i, endpoint) in endpoints.iter().enumerate().filter(|(i, _)| i % 5 != 4) {
        let at = t0 + Duration::from_millis(137 * (i % 11) as u64);
        endpoint.record(Duration::from_micros(500 + 250 * (i % 7) as u64), true, at);
    }
    // A quarter of a decay period after the first answers.
    let now = t0 + Duration::from_millis(2_500);
    Fleet { endpoints, now, _in_flight: in_flight }
}

/// Every strategy, fresh, so that no cached ring or subset outlives its set.
fn strategies() -> Vec<(&'static str, Arc<dyn Balancer>)> {
    vec![
        ("round_robin", Arc::new(RoundRobin::new())),
        ("random", Arc::new(Random::with_seed(1))),
        ("least_connections", Arc::new(LeastConnections::new())),
        ("power_of_two_choices", Arc::new(PowerOfTwoChoices::with_seed(2))),
        ("peak_ewma", Arc::new(PeakEwma::with_seed(3))),
        ("weighted_random", Arc::new(WeightedRandom::with_seed(4))),
        ("weighted_round_robin", Arc::new(WeightedRoundRobin::new())),
        ("consistent_hash", Arc::new(ConsistentHash::new())),
        ("locality(round_robin)", Arc::new(Locality::new(LOCAL_ZONE, Arc::new(RoundRobin::new())))),
    ]
}

fn pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick");
    for (generation, n) in (1..).zip(SIZES) {
        let fleet = fleet(n);
        let call = CallInfo { method: "Cache.get", key: Some(affinity_hash(b"user:42")), now: fleet.now, generation };
        for (name, balancer) in strategies() {
            // Outside the measurement: the first pick of a generation builds ConsistentHash's
            // ring and Locality's subset, which later picks reuse.
            balancer.pick(&fleet.endpoints, &call).expect("a non-empty set always yields a pick");
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| black_box(&*balancer).pick(black_box(&fleet.endpoints), black_box(&call)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Short windows keep the whole run under two minutes; a pick takes nanoseconds to
    // microseconds, so even 2 s gathers millions of iterations per sample set.
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = pick
}
criterion_main!(benches);
