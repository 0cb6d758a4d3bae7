//! Round robin: each endpoint in turn, exactly.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Balancer, CallInfo, Endpoint};

/// Each endpoint in turn: with `n` endpoints, any `n` consecutive picks cover each once.
/// One atomic add per pick.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// Starts at the first endpoint.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Balancer for RoundRobin {
    fn pick(&self, endpoints: &[Endpoint], _call: &CallInfo<'_>) -> Option<usize> {
        if endpoints.is_empty() {
            return None;
        }
        Some(self.next.fetch_add(1, Ordering::Relaxed) % endpoints.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, endpoints};
    use super::*;

    #[test]
    fn cycles_exactly() {
        let balancer = RoundRobin::new();
        let set = endpoints(3);
        let picks: Vec<_> = (0..9).map(|_| balancer.pick(&set, &call()).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0, 1, 2], "round robin must cycle in order without skips");
        assert_eq!(balancer.pick(&[], &call()), None, "nothing to pick from an empty set");
    }
}
