//! Locality: prefer the endpoints in the caller's zone, fall back to all of them.

use std::sync::Arc;

use super::per_set::PerSet;
use super::{Balancer, CallInfo, Endpoint, Outcome, ZONE_TAG};

/// The endpoints of the caller's zone in a set, and their indices in it.
#[derive(Debug)]
struct LocalSubset {
    endpoints: Vec<Endpoint>,
    indices: Vec<usize>,
}

/// Wraps a strategy: only endpoints whose `zone` tag equals the caller's zone are offered
/// to it, unless there are none, in which case all endpoints are. The local subset is
/// derived once per set of endpoints (by generation, or by the endpoints themselves when
/// the generation is 0) and read without a lock, so picks run in parallel and allocate
/// nothing once warm.
pub struct Locality {
    zone: String,
    inner: Arc<dyn Balancer>,
    local: PerSet<LocalSubset>,
}

impl std::fmt::Debug for Locality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locality").field("zone", &self.zone).field("local", &self.local).finish_non_exhaustive()
    }
}

impl Locality {
    /// Prefers endpoints tagged `zone=<zone>`, choosing among them with `inner`.
    pub fn new(zone: impl Into<String>, inner: Arc<dyn Balancer>) -> Self {
        Self { zone: zone.into(), inner, local: PerSet::default() }
    }

    fn local_subset(&self, endpoints: &[Endpoint]) -> LocalSubset {
        let indices: Vec<usize> =
            (0..endpoints.len()).filter(|&i| endpoints[i].tag(ZONE_TAG) == Some(self.zone.as_str())).collect();
        LocalSubset { endpoints: indices.iter().map(|&i| endpoints[i].clone()).collect(), indices }
    }
}

impl Balancer for Locality {
    fn pick(&self, endpoints: &[Endpoint], call: &CallInfo<'_>) -> Option<usize> {
        // Kept even for generation 0: a registry's picks come with no generation, and the
        // subset of their usual set is worth keeping; a one-off set costs one rebuild.
        self.local.with(
            endpoints,
            call.generation,
            true,
            |set| self.local_subset(set),
            |local| {
                if local.endpoints.is_empty() {
                    return self.inner.pick(endpoints, call);
                }
                let choice = self.inner.pick(&local.endpoints, call)?;
                local.indices.get(choice).copied()
            },
        )
    }

    fn observe(&self, endpoint: &Endpoint, outcome: &Outcome) {
        self.inner.observe(endpoint, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::super::RoundRobin;
    use super::super::tests::{call, endpoints};
    use super::*;

    fn zoned(zones: &[&str]) -> Vec<Endpoint> {
        endpoints(zones.len()).into_iter().zip(zones).map(|(e, z)| e.with_tag("zone", *z)).collect()
    }

    #[test]
    fn prefers_endpoints_in_the_callers_zone() {
        let balancer = Locality::new("eu-1", Arc::new(RoundRobin::new()));
        let set = zoned(&["us-1", "eu-1", "us-1", "eu-1"]);
        let picks: Vec<_> =
            (0..4).map(|_| balancer.pick(&set, &CallInfo { generation: 1, ..call() }).unwrap()).collect();
        assert_eq!(picks, [1, 3, 1, 3], "only the eu-1 endpoints, in turn");
    }

    #[test]
    fn falls_back_to_every_endpoint_when_none_is_local() {
        let balancer = Locality::new("ap-1", Arc::new(RoundRobin::new()));
        let set = zoned(&["us-1", "eu-1"]);
        let picks: Vec<_> = (0..4).map(|_| balancer.pick(&set, &call()).unwrap()).collect();
        assert_eq!(picks, [0, 1, 0, 1], "no ap-1 endpoint: all of them");
    }

    #[test]
    fn picks_of_one_set_without_a_generation_reuse_its_subset() {
        // The subset is rebuilt only when the set changes: a set that changed without a new
        // generation would be routed by the old subset, so the endpoints themselves tell.
        let balancer = Locality::new("eu-1", Arc::new(RoundRobin::new()));
        let set = zoned(&["us-1", "eu-1", "eu-1"]);
        let picks: Vec<_> = (0..4).map(|_| balancer.pick(&set.clone(), &call()).unwrap()).collect();
        assert_eq!(picks, [1, 2, 1, 2]);
        let other = zoned(&["eu-1", "us-1", "us-1"]);
        assert_eq!(balancer.pick(&other, &call()), Some(0), "other endpoints: filtered again");
    }

    #[test]
    fn picks_run_while_another_pick_is_inside_the_inner_balancer() {
        use std::sync::Mutex;
        use std::sync::mpsc::{Receiver, Sender, channel};
        use std::time::Duration;
        // The first pick waits inside the inner balancer until the second has returned. With
        // a lock held across the inner pick, the second would wait for the first, and the
        // first would give up after 30 s and pick nothing.
        struct Gate {
            entered: Mutex<Sender<()>>,
            released: Mutex<Receiver<()>>,
        }
        impl Balancer for Gate {
            fn pick(&self, _endpoints: &[Endpoint], call: &CallInfo<'_>) -> Option<usize> {
                if call.method == "first" {
                    self.entered.lock().unwrap().send(()).unwrap();
                    self.released.lock().unwrap().recv_timeout(Duration::from_secs(30)).ok()?;
                }
                Some(0)
            }
        }
        let (entered, on_entered) = channel();
        let (release, released) = channel();
        let gate = Gate { entered: Mutex::new(entered), released: Mutex::new(released) };
        let balancer = Arc::new(Locality::new("eu-1", Arc::new(gate)));
        let set = Arc::new(zoned(&["eu-1", "us-1"]));
        let first = {
            let (balancer, set) = (balancer.clone(), set.clone());
            std::thread::spawn(move || balancer.pick(&set, &CallInfo { generation: 1, ..CallInfo::new("first") }))
        };
        on_entered.recv().unwrap();
        let second = balancer.pick(&set, &CallInfo { generation: 1, ..CallInfo::new("second") });
        release.send(()).unwrap();
        assert_eq!(second, Some(0));
        assert_eq!(first.join().unwrap(), Some(0), "the first pick was released by the second, not by its timeout");
    }

    #[test]
    fn a_new_generation_is_filtered_again() {
        let balancer = Locality::new("eu-1", Arc::new(RoundRobin::new()));
        let first = zoned(&["eu-1", "us-1"]);
        assert_eq!(balancer.pick(&first, &CallInfo { generation: 1, ..call() }), Some(0));
        let second = zoned(&["us-1", "eu-1"]);
        assert_eq!(balancer.pick(&second, &CallInfo { generation: 2, ..call() }), Some(1));
    }
}
