use rpcnet::RpcStream;

#[rpcnet::rpc_service]
pub trait Merge {
    async fn merge(&self, inputs: Vec<RpcStream<u32>>) -> u64;
}

fn main() {}
