//! Generates `$OUT_DIR/calculator.rs` from `services/calculator.rpc.rs`: the types, the
//! trait, `CalculatorServer`, `CalculatorClient` and `CalculatorClusterClient`, whose default
//! strategy is round robin.

fn main() {
    rpcnet_build::configure().strategy("round_robin").compile(&["services/calculator.rpc.rs"]).expect("rpcnet codegen");
}
