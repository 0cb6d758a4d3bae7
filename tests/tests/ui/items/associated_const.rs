#[rpcnet::rpc_service]
pub trait Calculator {
    const PRECISION: u32;
    async fn add(&self, a: i64, b: i64) -> i64;
}

fn main() {}
