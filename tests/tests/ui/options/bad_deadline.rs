#[rpcnet::rpc_service]
pub trait Accounts {
    #[rpc(deadline = "0ms")]
    async fn balance(&self, user_id: String) -> u64;
    #[rpc(deadline = "1.5s")]
    async fn profile(&self, user_id: String) -> String;
}

fn main() {}
