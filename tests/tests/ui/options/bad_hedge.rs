#[rpcnet::rpc_service]
pub trait Accounts {
    #[rpc(idempotent, hedge(after = "p100", max_extra = "10%"))]
    async fn balance(&self, user_id: String) -> u64;
    #[rpc(idempotent, hedge(after = "20ms", max_extra = "0%"))]
    async fn profile(&self, user_id: String) -> String;
    #[rpc(idempotent, hedge(after = "20ms"))]
    async fn history(&self, user_id: String) -> Vec<u64>;
    #[rpc(idempotent, hedge(after = "20ms", delay = "5ms"))]
    async fn cart(&self, user_id: String) -> Vec<u64>;
}

fn main() {}
