#[rpcnet::rpc_service]
pub trait Accounts {
    #[rpc(hedge(after = "20ms", max_extra = "10%"))]
    async fn withdraw(&self, user_id: String, amount: u64) -> u64;
}

fn main() {}
