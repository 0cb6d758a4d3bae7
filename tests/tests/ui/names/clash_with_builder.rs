#[rpcnet::rpc_service]
pub trait Factory {
    async fn builder(&self) -> String;
}

fn main() {}
