#[rpcnet::rpc_service(timeout = "1s")]
pub trait Calculator {
    async fn add(&self, a: i64, b: i64) -> i64;
}

fn main() {}
