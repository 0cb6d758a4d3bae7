#[rpcnet::rpc_service]
pub trait Calculator {
    type Number;
    async fn add(&self, a: i64, b: i64) -> i64;
}

fn main() {}
