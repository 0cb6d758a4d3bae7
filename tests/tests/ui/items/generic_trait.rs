#[rpcnet::rpc_service]
pub trait Store<T> {
    async fn get(&self, key: String) -> Option<String>;
}

fn main() {}
