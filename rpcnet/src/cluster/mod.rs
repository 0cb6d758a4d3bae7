//! Clusters: membership by SWIM gossip (foca) over sealed UDP, tags, events and partition
//! detection (the sans-IO state machine in `core/`, driven by `membership.rs` and by the
//! simulator in [`sim`]), health as a soft signal for balancing (`health.rs`), and the
//! views that route calls: [`NodeRegistry`], [`WorkerRegistry`], [`ClusterClient`].
//!
//! ```no_run
//! # async fn run() -> Result<(), rpcnet::RpcError> {
//! use std::sync::Arc;
//! use rpcnet::cluster::{ClusterClient, ClusterClientConfig, ClusterConfig, ClusterMembership, LoadBalancingStrategy, WorkerRegistry};
//!
//! let cluster = ClusterMembership::new(ClusterConfig::dev().with_seeds(["127.0.0.1:7946".parse().unwrap()])).await?;
//! let registry = Arc::new(WorkerRegistry::new(cluster.clone(), LoadBalancingStrategy::LeastConnections));
//! registry.start().await;
//! let worker = registry.select_worker(Some("role=worker,zone=eu-1")).await?;
//! let client = Arc::new(ClusterClient::new(registry.clone(), ClusterClientConfig::dev()));
//! let reply = client.call_worker("compute", b"input".to_vec(), Some("role=worker")).await?;
//! # Ok(()) }
//! ```
//!
//! This module is behind the `cluster` cargo feature, on by default.
//!
#![doc = include_str!("book.md")]

mod client;
mod config;
mod core;
#[cfg(feature = "dns")]
mod dns_seeds;
mod encoding;
mod events;
mod health;
mod identity;
mod membership;
mod meta;
mod partition;
mod registry;
mod seal;
mod server;
pub mod sim;
mod wire;

pub use self::client::{ClusterClient, ClusterClientConfig};
pub use self::config::ClusterConfig;
pub use self::core::GossipStats;
pub use self::events::{ClusterEvent, ClusterEvents, NodeInfo, NodeState, PartitionInfo};
pub use self::health::{HealthCheckConfig, PhiAccrual};
pub use self::identity::NodeId;
pub use self::membership::ClusterMembership;
pub use self::partition::{PartitionDetector, PartitionStatus};
pub use self::registry::{NodeRegistry, WorkerInfo, WorkerRegistry};
pub use self::seal::{ClusterKey, Keyring, OpenError};
pub use crate::balance::{FilterError, LoadBalancingStrategy, TagFilter};
