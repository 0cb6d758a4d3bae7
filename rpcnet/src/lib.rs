//! rpcnet: RPC over QUIC + TLS 1.3.
//!
//! A call is one QUIC stream on a shared, TLS 1.3-secured connection (see [`wire`] for the
//! format). [`RpcServer`] serves raw-bytes handlers and typed services; [`RpcClient`] calls
//! one server, with deadlines, cancellation, the three streaming kinds and reconnection.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rpcnet::RpcError> {
//! use rpcnet::{RpcClient, RpcConfig, RpcServer};
//!
//! let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
//! server.register("echo", |payload| async move { Ok(payload) }).await;
//! let (addr, shutdown) = server.spawn()?;
//!
//! let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await?;
//! assert_eq!(client.call("echo", b"hi".to_vec()).await?, b"hi");
//! shutdown.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Layers, lowest first: `wire` (bytes), `codec` (values), `transport` (QUIC and TLS),
//! `server` and `client` (calls). A lower layer never uses a higher one.

pub mod codec;
pub mod server;
pub mod transport;
pub mod wire;

mod client;
mod config;
mod error;
mod stream;

pub use bytes::Bytes;
pub use client::{CallOptions, RpcClient};
pub use config::RpcConfig;
pub use error::{RpcError, ServiceError};
pub use server::{RpcServer, ServerEndpoint, ShutdownHandle};
pub use stream::RpcStream;
