//! Generated code is clean under strict lints.
#![deny(warnings, unused_qualifications, unused_results, unreachable_pub, missing_debug_implementations)]
#![allow(missing_docs)]

use rpcnet::RpcStream;

#[rpcnet::rpc_service]
pub trait Inventory {
    /// Counts the items of a kind.
    async fn count(&self, kind: String) -> u64;
    async fn reserve(&self, kind: String, amount: u64) -> Result<u64, String>;
    async fn watch(&self, kind: String) -> RpcStream<u64>;
    async fn restock(&self, amounts: RpcStream<u64>) -> u64;
    async fn trade(&self, offers: RpcStream<u64>) -> RpcStream<u64>;
}

#[test]
fn generated_items_exist() {
    assert_eq!(InventoryClient::METHOD_RESERVE, "Inventory.reserve");
}
