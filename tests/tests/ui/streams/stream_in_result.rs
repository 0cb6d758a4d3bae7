use rpcnet::RpcStream;

#[rpcnet::rpc_service]
pub trait Feed {
    async fn events(&self) -> Result<RpcStream<String>, String>;
}

fn main() {}
