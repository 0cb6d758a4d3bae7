//! Suspect endpoints (up, but late with their signs of life) get a small, steady share of
//! the calls: enough to be seen recovering, too little to hurt. Used by balanced channels
//! and by `WorkerRegistry::select_worker` alike.

/// Share of calls a suspect endpoint gets, relative to a healthy one: 1 in 10.
const SUSPECT_WEIGHT: u64 = 1;
const HEALTHY_WEIGHT: u64 = 10;

/// Whether call number `call` goes to the suspect endpoints rather than the healthy ones:
/// each suspect weighs a tenth of a healthy endpoint, and the calls that go to suspects
/// are spread evenly (no randomness: the same calls, the same choices).
///
/// ```
/// use rpcnet::balance::to_suspects;
/// let to_suspect = (0..2_100).filter(|&call| to_suspects(call, 2, 1)).count();
/// assert_eq!(to_suspect, 100, "2 healthy and 1 suspect: 1 share in 21 is the suspect's");
/// ```
pub fn to_suspects(call: u64, healthy: usize, suspects: usize) -> bool {
    if suspects == 0 {
        return false;
    }
    if healthy == 0 {
        return true;
    }
    let suspect_weight = suspects as u64 * SUSPECT_WEIGHT;
    let total = healthy as u64 * HEALTHY_WEIGHT + suspect_weight;
    call % total < suspect_weight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(healthy: usize, suspects: usize, calls: u64) -> u64 {
        (0..calls).filter(|&call| to_suspects(call, healthy, suspects)).count() as u64
    }

    #[test]
    fn a_suspect_gets_a_tenth_of_a_healthy_endpoints_share() {
        // 2 healthy and 1 suspect: 21 shares, 1 of them the suspect's.
        assert_eq!(share(2, 1, 2_100), 100, "1 call in 21 goes to the suspect");
        assert_eq!(share(1, 3, 1_300), 300, "3 suspects weigh 3 tenths of the healthy one");
        assert_eq!(share(3, 0, 1_000), 0, "no suspect, no share");
        assert_eq!(share(0, 2, 1_000), 1_000, "with no healthy endpoint, the suspects take every call");
        let spread: Vec<u64> = (0..63).filter(|&c| to_suspects(c, 2, 1)).collect();
        assert_eq!(spread, [0, 21, 42], "the suspect's calls are spread, not bunched");
    }
}
