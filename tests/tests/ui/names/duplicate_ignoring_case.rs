#[rpcnet::rpc_service]
#[allow(non_snake_case)]
pub trait Shouty {
    async fn ping(&self);
    async fn PING(&self);
}

fn main() {}
