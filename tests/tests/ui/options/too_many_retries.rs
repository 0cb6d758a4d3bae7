#[rpcnet::rpc_service]
pub trait Accounts {
    #[rpc(idempotent, retries = 11)]
    async fn balance(&self, user_id: String) -> u64;
}

fn main() {}
