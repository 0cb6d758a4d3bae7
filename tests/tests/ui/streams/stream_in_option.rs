use rpcnet::RpcStream;

#[rpcnet::rpc_service]
pub trait Feed {
    async fn maybe_events(&self) -> Option<RpcStream<String>>;
}

fn main() {}
