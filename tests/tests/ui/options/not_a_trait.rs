#[rpcnet::rpc_service]
pub struct Calculator;

fn main() {}
