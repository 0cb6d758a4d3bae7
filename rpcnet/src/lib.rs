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
//! Layers, lowest first: `wire` (bytes and the call protocol), `codec` (values) and
//! `balance` (choosing endpoints), all three pure; the vocabulary of calls (`RpcError`,
//! `RpcStream`, deadlines); `transport` (QUIC and TLS) and `config`; `server` and `client`
//! (calls); the channels (`Channel`, `ClientBuilder`); typed calls; and `cluster` (gossip
//! membership and worker registries, behind the default `cluster` feature), with `discovery`
//! (endpoints from DNS, behind the `dns` feature) between the channels and `cluster`. A lower layer
//! never uses a higher one; `DESIGN.md` at the repository's root has the whole map.
//!
//! # Tracing
//!
//! Every call has a [`tracing`] span on each side, at INFO: `rpc.server` (target
//! `rpcnet::server`) around the handler, so that the handler's logs and the calls it makes
//! are inside it, and `rpc.client` (target `rpcnet::client`), open from the start of each
//! call attempt to its end (a streaming call's ends with its responses). Their
//! fields follow the OpenTelemetry conventions for RPC: `otel.name` (`Service/method`),
//! `otel.kind` (`server` or `client`), `rpc.system` (`rpcnet`), `rpc.service`, `rpc.method`,
//! `server.address` and `server.port` (the server's own address on the server, without the
//! IP when it listens on every address; the remote one on the client), `client.address` and `client.port` (on the server), and, when the call
//! ends, `otel.status_code` (`OK` or `ERROR`) with, for a failure, `error.type` (the
//! [`ErrorKind`] name, such as `timeout`) and `otel.status_description`. A span that no
//! subscriber enables costs a cached check.
//!
//! With the `opentelemetry` feature, a client sends its span's trace context in the call's
//! metadata (W3C `traceparent` and `tracestate`, see [`wire`]) and the server makes it the
//! parent of its span: under a `tracing-opentelemetry` layer, one trace runs through every
//! service a request crosses.

pub mod balance;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod codec;
#[cfg(feature = "dns")]
pub mod discovery;
pub mod server;
pub mod transport;
pub mod wire;

mod channel;
mod client;
mod config;
mod deadline;
mod error;
pub mod metadata;
mod stream;
mod telemetry;
mod typed;

pub use balance::{Balancer, CallInfo, Endpoint, LoadBalancingStrategy, Outcome};
pub use bytes::Bytes;
pub use channel::{
    Channel, ClientBuilder, ClientCall, ClientReply, ClientService, EndpointSource, EndpointStats, HedgeAfter,
    HedgePolicy, MethodPolicy, TypedClient,
};
pub use client::{CallOptions, ResponseMetadata, RpcClient};
pub use config::RpcConfig;
pub use error::{ErrorKind, RpcError, ServiceError};
pub use metadata::{Metadata, MetadataError, MetadataValue};
/// [`RpcError`] under the short name the rpcnet 0.1 book uses (`rpcnet::Error`).
pub type Error = RpcError;
#[allow(deprecated)]
pub use server::{RequestStream, RpcServer, ServerEndpoint, ServerHandle, ShutdownHandle};
pub use stream::RpcStream;
pub use transport::{CipherSuite, CongestionControl};
pub use typed::RpcMessage;

/// `#[rpc_impl]` on the impl of a service trait, as the rpcnet 0.1 book writes it: accepted
/// and changes nothing. A service's methods are plain `async fn`s, so its impls need no
/// attribute; this one only checks that it sits on an impl block.
///
/// ```
/// use rpcnet::prelude::*;
///
/// #[rpc_trait]
/// pub trait Echo {
///     async fn echo(&self, text: String) -> String;
/// }
///
/// struct Handler;
///
/// #[rpc_impl]
/// impl Echo for Handler {
///     async fn echo(&self, text: String) -> String {
///         text
///     }
/// }
/// # let _ = EchoServer::new(Handler);
/// ```
pub use rpcnet_macros::rpc_impl;
/// Turns a trait into a typed rpc service: the trait, `XServer<T>`, `XClient` and
/// `XClusterClient` (balanced with least connections unless its `builder()` is told another
/// strategy). See the crate documentation of `rpcnet-build` for what is generated.
///
/// `#[rpc(...)]` on a unary method sets the defaults of its calls, each carried in the
/// client's `POLICY_<METHOD>` constant (a [`MethodPolicy`]):
///
/// - `idempotent`: a call may be repeated (on another endpoint if its connection was lost
///   mid-call; in 0-RTT early data);
/// - `deadline = "200ms"` (a whole number above zero and `us`, `ms`, `s` or `m`): the call's
///   own timeout wins over it, and it over [`RpcConfig::with_default_timeout`];
/// - `retries = 2` (0 to 10, and above 0 only with `idempotent`): at most that many retries
///   on other endpoints of a balanced client, within its shared retry budget;
///   `XClient::with_retries` and [`CallOptions::with_retries`] override it;
/// - `hedge(after = "20ms" | "p95", max_extra = "10%")` (only with `idempotent`): the
///   declared [`HedgePolicy`]; hedged calls are not sent yet, a call is made once;
/// - `hash_key = "user_id"`: that argument, encoded with the codec, is the call's affinity
///   key for [`LoadBalancingStrategy::ConsistentHash`], unless the caller set one.
///
/// ```
/// #[rpcnet::rpc_service]
/// pub trait Accounts {
///     #[rpc(deadline = "200ms")]
///     async fn balance(&self, user_id: String) -> u64;
///     #[rpc(idempotent, retries = 2, hedge(after = "p95", max_extra = "10%"))]
///     async fn profile(&self, user_id: String) -> String;
///     #[rpc(hash_key = "user_id")]
///     async fn cart(&self, user_id: String) -> Vec<u64>;
/// }
/// assert_eq!(AccountsClient::POLICY_PROFILE.retries(), Some(2));
/// assert!(AccountsClient::POLICY_PROFILE.is_idempotent());
/// ```
pub use rpcnet_macros::rpc_service;
/// `#[rpcnet::service]`: the same attribute as [`rpc_service`], under the name the rpcnet
/// book's code generation chapter uses.
pub use rpcnet_macros::rpc_service as service;
/// `#[rpc_trait]`: the same attribute as [`rpc_service`], under the name of the rpcnet 0.1
/// book's API reference.
pub use rpcnet_macros::rpc_service as rpc_trait;

/// The names most programs use, in one import: `use rpcnet::prelude::*;`.
///
/// The serde derives are re-exported for `#[derive(Serialize, Deserialize)]` on messages; the
/// code they generate names the `serde` crate, so a crate using them also depends on `serde`
/// (with its `derive` feature) itself.
pub mod prelude {
    #[cfg(feature = "cluster")]
    pub use crate::cluster::{ClusterClient, ClusterConfig, ClusterEvent, ClusterMembership, WorkerRegistry};
    pub use crate::{
        CallOptions, ClientBuilder, Error, ErrorKind, LoadBalancingStrategy, RpcClient, RpcConfig, RpcError, RpcServer,
        RpcStream, ServerHandle, rpc_impl, rpc_service, rpc_trait,
    };
    pub use futures::{Stream, StreamExt};
    pub use serde::{Deserialize, Serialize};
}

/// Includes the module that `rpcnet_build` wrote for a service file into `OUT_DIR`:
/// `rpcnet::include_service!("calculator")` is
/// `include!(concat!(env!("OUT_DIR"), "/calculator.rs"))`, the name being the file's up to
/// its first dot (`services/calculator.rpc.rs`) or the one chosen with `output_name`.
///
/// ```text
/// // build.rs: rpcnet_build::configure().strategy("round_robin").compile(&["services/calculator.rpc.rs"])
/// mod calculator {
///     rpcnet::include_service!("calculator");
/// }
/// use calculator::{Calculator, CalculatorClusterClient, CalculatorServer};
/// ```
///
/// A module of its own keeps the file's `use` lines apart from others. If `build.rs` writes
/// elsewhere (`out_dir`), or the code is checked in (`rpcnet-gen`), use
/// `include!("path/to/calculator.rs")` or `#[path = "..."] mod calculator;` instead.
#[macro_export]
macro_rules! include_service {
    ($name:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $name, ".rs"));
    };
}

/// What generated code uses, under one path. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use ::bincode;
    pub use ::core::future::Future;
    pub use ::core::marker::{Send, Sync};
    pub use ::core::net::SocketAddr;
    pub use ::core::option::Option::{self, None, Some};
    pub use ::core::result::Result::{self, Err, Ok};
    pub use ::futures;
    pub use ::serde;
    pub use ::std::boxed::Box;
    pub use ::std::string::String;
    pub use ::std::sync::Arc;
    pub use ::std::vec::Vec;
    pub use ::tower;

    pub use crate::balance::{Endpoint, LoadBalancingStrategy};
    pub use crate::channel::{
        Channel, ClientBuilder, ClientCall, ClientReply, ClientService, EndpointSource, EndpointStats, HedgePolicy,
        MethodPolicy, TypedClient,
    };
    pub use crate::server::{Routes, Service};
    pub use crate::typed::{
        ByteBuf, DefaultCodec, RpcMessage, bidi_streaming, client_streaming, client_streaming_fallible, keyed_channel,
        serve_bidi_streaming, serve_client_streaming, serve_client_streaming_fallible, serve_server_streaming,
        serve_unary, serve_unary_fallible, server_streaming, unary, unary_fallible,
    };
    pub use crate::{Bytes, CallOptions, Metadata, ResponseMetadata, RpcClient, RpcConfig, RpcError, RpcStream};
}
