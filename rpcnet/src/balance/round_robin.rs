//! Round robin: each endpoint in turn, exactly.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Balancer, CallInfo, Endpoint};

/// Each endpoint in turn: with `n` endpoints, any `n` consecutive picks cover each once.
/// The next index wraps at `n` by comparison, in one compare-and-swap per pick (retried
/// only when another thread picked in between), instead of a 64-bit division by `n`.
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
        let n = endpoints.len();
        if n == 0 {
            return None;
        }
        let mut current = self.next.load(Ordering::Relaxed);
        loop {
            // A set that shrank since the last pick starts again at its first endpoint.
            let index = if current < n { current } else { 0 };
            let next = if index + 1 == n { 0 } else { index + 1 };
            match self.next.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(index),
                Err(actual) => current = actual,
            }
        }
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

    #[test]
    fn a_set_that_shrinks_or_grows_keeps_cycling_within_it() {
        let balancer = RoundRobin::new();
        let (five, two) = (endpoints(5), endpoints(2));
        let picks: Vec<_> = (0..4).map(|_| balancer.pick(&five, &call()).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 3]);
        let picks: Vec<_> = (0..4).map(|_| balancer.pick(&two, &call()).unwrap()).collect();
        assert_eq!(picks, [0, 1, 0, 1], "past the end of a smaller set: from its start, in order");
        let picks: Vec<_> = (0..5).map(|_| balancer.pick(&five, &call()).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 3, 4], "a grown set is cycled in full");
    }

    #[test]
    fn concurrent_picks_still_cover_each_endpoint_equally() {
        let balancer = std::sync::Arc::new(RoundRobin::new());
        let set = std::sync::Arc::new(endpoints(3));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (balancer, set) = (balancer.clone(), set.clone());
                std::thread::spawn(move || {
                    let mut counts = [0u32; 3];
                    for _ in 0..3_000 {
                        counts[balancer.pick(&set, &call()).unwrap()] += 1;
                    }
                    counts
                })
            })
            .collect();
        let mut total = [0u32; 3];
        for thread in threads {
            for (t, c) in total.iter_mut().zip(thread.join().unwrap()) {
                *t += c;
            }
        }
        assert_eq!(total, [4_000; 3], "12,000 picks over 3 endpoints: exactly 4,000 each, whoever made them");
    }
}
