pub struct Secret(u64);

#[rpcnet::rpc_service]
pub trait Vault {
    async fn store(&self, secret: Secret) -> bool;
}

fn main() {}
