#![deny(warnings)]

//! A service method may share a name with the cluster client's constructors: those take no
//! `self`, so method calls reach the service through `Deref`.

/// Methods named like the generated constructors.
#[rpcnet::rpc_service]
pub trait Names {
    /// Not the constructor.
    async fn from_registry(&self) -> u8;
    /// Not the constructor either.
    async fn from_endpoints(&self, n: u8) -> u8;
}

#[allow(dead_code)]
async fn calls(client: NamesClusterClient) -> Result<u8, rpcnet::RpcError> {
    let a = client.from_registry().await?;
    let b = client.from_endpoints(a).await?;
    let _plain: NamesClient = client.into();
    let _strategy = NamesClusterClient::DEFAULT_STRATEGY;
    Ok(b)
}

fn main() {}
