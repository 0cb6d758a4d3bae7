//! Generates `$OUT_DIR/greeting.rs` from the service file, for `rpcnet::include_service!`.

fn main() {
    rpcnet_build::configure().compile(&["services/greeting.rpc.rs"]).expect("rpcnet codegen");
}
