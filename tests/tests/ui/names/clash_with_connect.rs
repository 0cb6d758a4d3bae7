#[rpcnet::rpc_service]
pub trait Network {
    async fn connect(&self, address: String) -> bool;
}

fn main() {}
