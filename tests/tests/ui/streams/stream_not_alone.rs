use rpcnet::RpcStream;

#[rpcnet::rpc_service]
pub trait Upload {
    async fn upload(&self, name: String, chunks: RpcStream<Vec<u8>>) -> u64;
}

fn main() {}
