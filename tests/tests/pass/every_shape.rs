#![deny(warnings)]

use rpcnet::RpcStream;
use serde::{Deserialize, Serialize};

/// A record.
#[derive(Serialize, Deserialize)]
pub struct Record {
    /// Its id.
    pub id: u64,
}

/// Every supported method shape.
#[rpcnet::rpc_service]
pub trait Everything {
    /// No arguments, no result.
    async fn nothing(&self);
    /// Many arguments.
    async fn many(&self, a: u8, b: String, c: Vec<Record>, d: Option<(u32, bool)>) -> Record;
    /// A typed error.
    #[rpc(idempotent)]
    async fn fallible(&self, id: u64) -> Result<Record, String>;
    /// Server streaming.
    async fn list(&self, limit: u32) -> RpcStream<Record>;
    /// Client streaming.
    async fn upload(&self, records: RpcStream<Record>) -> u64;
    /// Client streaming with a typed error.
    async fn validate(&self, records: RpcStream<Record>) -> Result<u64, String>;
    /// Bidirectional.
    async fn echo(&self, records: RpcStream<Record>) -> RpcStream<Record>;
    /// Only on some platforms: the cfg follows the method everywhere.
    #[cfg(unix)]
    async fn unix_only(&self) -> u32;
}

fn main() {}
