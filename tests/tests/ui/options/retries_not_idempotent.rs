#[rpcnet::rpc_service]
pub trait Accounts {
    #[rpc(retries = 2)]
    async fn withdraw(&self, user_id: String, amount: u64) -> u64;
}

fn main() {}
