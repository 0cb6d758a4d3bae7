//! Locality: prefer the endpoints in the caller's zone, fall back to all of them.

use std::sync::{Arc, Mutex};

use super::{Balancer, CallInfo, Endpoint, Outcome, ZONE_TAG};

/// The local subset of a set of endpoints: (generation, endpoints, their indices in the set).
type LocalSubset = (u64, Vec<Endpoint>, Vec<usize>);

/// Wraps a strategy: only endpoints whose `zone` tag equals the caller's zone are offered
/// to it, unless there are none, in which case all endpoints are.
pub struct Locality {
    zone: String,
    inner: Arc<dyn Balancer>,
    /// The local subset of the last set seen, by generation.
    local: Mutex<Option<LocalSubset>>,
}

impl std::fmt::Debug for Locality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locality").field("zone", &self.zone).finish_non_exhaustive()
    }
}

impl Locality {
    /// Prefers endpoints tagged `zone=<zone>`, choosing among them with `inner`.
    pub fn new(zone: impl Into<String>, inner: Arc<dyn Balancer>) -> Self {
        Self { zone: zone.into(), inner, local: Mutex::new(None) }
    }

    fn local_subset(&self, endpoints: &[Endpoint]) -> (Vec<Endpoint>, Vec<usize>) {
        let indices: Vec<usize> =
            (0..endpoints.len()).filter(|&i| endpoints[i].tag(ZONE_TAG) == Some(self.zone.as_str())).collect();
        (indices.iter().map(|&i| endpoints[i].clone()).collect(), indices)
    }
}

impl Balancer for Locality {
    fn pick(&self, endpoints: &[Endpoint], call: &CallInfo<'_>) -> Option<usize> {
        let mut cache = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let stale =
            call.generation == 0 || cache.as_ref().is_none_or(|(generation, ..)| *generation != call.generation);
        if stale {
            let (local, indices) = self.local_subset(endpoints);
            *cache = Some((call.generation, local, indices));
        }
        let (_, local, indices) = cache.as_ref().expect("filled above");
        if local.is_empty() {
            drop(cache);
            return self.inner.pick(endpoints, call);
        }
        let choice = self.inner.pick(local, call)?;
        indices.get(choice).copied()
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
    fn a_new_generation_is_filtered_again() {
        let balancer = Locality::new("eu-1", Arc::new(RoundRobin::new()));
        let first = zoned(&["eu-1", "us-1"]);
        assert_eq!(balancer.pick(&first, &CallInfo { generation: 1, ..call() }), Some(0));
        let second = zoned(&["us-1", "eu-1"]);
        assert_eq!(balancer.pick(&second, &CallInfo { generation: 2, ..call() }), Some(1));
    }
}
