//! What a strategy derives from a set of endpoints (a hash ring, a local subset), built once
//! per set and shared by every pick until the set changes: each pick clones an `Arc` to it
//! under a read lock (concurrent picks do not wait for one another, and the lock is released
//! before the value is used), and the first pick of a new set builds it while concurrent
//! picks wait for that build instead of repeating it. A read lock, not `ArcSwap`: measured
//! on the pick benchmark, `ArcSwap::load` cost up to 50 ns more per pick on 1,000 endpoints.

use std::sync::{Arc, Mutex, RwLock};

use super::Endpoint;

/// A value derived from the last set of endpoints seen.
pub(crate) struct PerSet<T> {
    current: RwLock<Option<Arc<Derived<T>>>>,
    /// Held while a new value is built, so that one pick builds it and the others wait.
    building: Mutex<()>,
}

struct Derived<T> {
    /// The generation of the set (0: unknown).
    generation: u64,
    /// The set itself, to recognise it when its generation does not tell.
    source: Vec<Endpoint>,
    value: T,
}

impl<T> std::fmt::Debug for PerSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.latest();
        f.debug_struct("PerSet")
            .field("generation", &current.as_ref().map(|d| d.generation))
            .field("endpoints", &current.as_ref().map(|d| d.source.len()))
            .finish()
    }
}

impl<T> Default for PerSet<T> {
    fn default() -> Self {
        Self { current: RwLock::new(None), building: Mutex::new(()) }
    }
}

/// Whether two sets hold the same endpoints (the same counters) in the same order.
pub(crate) fn same_set(a: &[Endpoint], b: &[Endpoint]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
}

impl<T> Derived<T> {
    /// A known generation identifies its set; generation 0 (or another generation, as after
    /// a rebuild that kept every endpoint) is compared endpoint by endpoint.
    fn derives_from(&self, endpoints: &[Endpoint], generation: u64) -> bool {
        (generation != 0 && self.generation == generation) || same_set(&self.source, endpoints)
    }
}

impl<T> PerSet<T> {
    /// The value last built, if any, under a read lock held only to clone its `Arc`.
    fn latest(&self) -> Option<Arc<Derived<T>>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Calls `use_value` with the value derived from `endpoints` of `generation`, built with
    /// `build` if the set is not the one last seen. A set of generation 0 is kept for later
    /// picks only if `keep_unknown`: otherwise (a one-off set, such as a retry's) it is built
    /// for this pick alone, and the value kept for the usual set stays.
    pub(crate) fn with<R>(
        &self,
        endpoints: &[Endpoint],
        generation: u64,
        keep_unknown: bool,
        build: impl FnOnce(&[Endpoint]) -> T,
        use_value: impl FnOnce(&T) -> R,
    ) -> R {
        // The value is used after the lock is released: a slow `use_value` (an inner
        // balancer of the user's) never holds up a rebuild.
        if let Some(derived) = self.latest()
            && derived.derives_from(endpoints, generation)
        {
            return use_value(&derived.value);
        }
        if generation == 0 && !keep_unknown {
            return use_value(&build(endpoints));
        }
        let _one_build = self.building.lock().unwrap_or_else(|p| p.into_inner());
        // Another pick may have built it while this one waited.
        if let Some(derived) = self.latest()
            && derived.derives_from(endpoints, generation)
        {
            return use_value(&derived.value);
        }
        let derived = Arc::new(Derived { generation, source: endpoints.to_vec(), value: build(endpoints) });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(derived.clone());
        use_value(&derived.value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::tests::endpoints;
    use super::*;

    #[test]
    fn a_set_is_built_once_and_recognised_by_generation_or_by_its_endpoints() {
        let cache: PerSet<usize> = PerSet::default();
        let builds = AtomicUsize::new(0);
        let build = |set: &[Endpoint]| {
            builds.fetch_add(1, Ordering::Relaxed);
            set.len()
        };
        let (three, four) = (endpoints(3), endpoints(4));
        assert_eq!(cache.with(&three, 1, false, build, |n| *n), 3);
        assert_eq!(cache.with(&three, 1, false, build, |n| *n), 3);
        assert_eq!(builds.load(Ordering::Relaxed), 1, "the same generation is built once");
        assert_eq!(cache.with(&three.clone(), 0, false, build, |n| *n), 3, "the same endpoints, generation unknown");
        assert_eq!(builds.load(Ordering::Relaxed), 1, "recognised by its endpoints");
        assert_eq!(cache.with(&four, 0, false, build, |n| *n), 4);
        assert_eq!(cache.with(&three, 1, false, build, |n| *n), 3);
        assert_eq!(builds.load(Ordering::Relaxed), 2, "a one-off set is built for its pick and not kept");
        assert_eq!(cache.with(&four, 0, true, build, |n| *n), 4);
        assert_eq!(cache.with(&four, 0, true, build, |n| *n), 4);
        assert_eq!(builds.load(Ordering::Relaxed), 3, "kept when asked to");
        assert_eq!(cache.with(&three, 2, false, build, |n| *n), 3);
        assert_eq!(builds.load(Ordering::Relaxed), 4, "a new set");
    }
}
