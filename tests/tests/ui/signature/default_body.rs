#[rpcnet::rpc_service]
pub trait Calculator {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() {}
