//! Endpoints discovered through DNS (the `dns` feature): `DnsTarget` says what to resolve,
//! `DnsSource` follows it as an `EndpointSource` for balanced channels, `resolve_once`
//! serves one-shot needs such as a cluster's seeds.
//!
//! Not a default feature: it brings in a whole stub resolver (hickory), which programs
//! with fixed endpoints or gossip seeds given as addresses do not need. hickory needs
//! Rust 1.88, the workspace's `rust-version` since the tests and `rpcnet-node` use it.
//!
//! | target | records asked for | port |
//! |---|---|---|
//! | `dns:workers.default.svc:7946` | A and AAAA | the one written |
//! | `dns+srv:_rpc._udp.workers.default.svc` | SRV, then each host's A and AAAA | each SRV record's |

mod error;
mod resolve;
mod source;
mod target;

pub use error::DiscoveryError;
pub use resolve::{DnsResolverConfig, Resolution, resolve_once};
pub use source::{DnsSource, DnsSourceBuilder};
pub use target::DnsTarget;
