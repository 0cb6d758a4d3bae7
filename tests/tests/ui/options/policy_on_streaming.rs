use rpcnet::RpcStream;

#[rpcnet::rpc_service]
pub trait Accounts {
    #[rpc(deadline = "200ms")]
    async fn watch(&self, user_id: String) -> RpcStream<u64>;
    #[rpc(hash_key = "updates")]
    async fn upload(&self, updates: RpcStream<u64>) -> u64;
}

fn main() {}
