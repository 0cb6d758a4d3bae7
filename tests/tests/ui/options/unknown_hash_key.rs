#[rpcnet::rpc_service]
pub trait Accounts {
    #[rpc(hash_key = "user")]
    async fn cart(&self, user_id: String) -> Vec<u64>;
}

fn main() {}
