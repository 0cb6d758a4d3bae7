//! The strategy names `Builder::strategy` and `rpcnet-gen --strategy` accept. A copy of
//! `rpcnet::LoadBalancingStrategy::NAMES` (this crate cannot depend on rpcnet, which depends
//! on it through the macro); a test in `tests/` checks that the two lists agree.

use proc_macro2::Span;
use syn::Ident;

/// Every strategy name a generated cluster client can default to: each built-in
/// `LoadBalancingStrategy` that takes no parameter, spelled as its `FromStr` accepts it.
pub const STRATEGY_NAMES: &[&str] = &[
    "round_robin",
    "random",
    "least_connections",
    "power_of_two_choices",
    "peak_ewma",
    "weighted_random",
    "weighted_round_robin",
    "consistent_hash",
];

/// The `LoadBalancingStrategy` variant of a strategy name (`"least_connections"` →
/// `LeastConnections`), or `None` if the name is not in [`STRATEGY_NAMES`].
pub(crate) fn variant(name: &str) -> Option<Ident> {
    if !STRATEGY_NAMES.contains(&name) {
        return None;
    }
    let camel: String = name
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    Some(Ident::new(&camel, Span::call_site()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_variants_and_others_are_refused() {
        assert_eq!(variant("least_connections").unwrap(), "LeastConnections");
        assert_eq!(variant("power_of_two_choices").unwrap(), "PowerOfTwoChoices");
        assert_eq!(variant("peak_ewma").unwrap(), "PeakEwma");
        assert!(variant("fastest").is_none(), "an unknown name has no variant");
        assert!(variant("LeastConnections").is_none(), "names are spelled in snake case");
    }
}
