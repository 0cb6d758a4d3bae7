//! The command line shared by both roles (who the node is, how it finds the cluster, its
//! keys and certificates), turned into the `RpcConfig` and `ClusterConfig` it runs with.
//! Bad values are refused with a message naming the flag, never adjusted.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::Args;
use rpcnet::RpcConfig;
use rpcnet::cluster::ClusterConfig;

/// Environment variable that may hold the cluster key instead of `--cluster-key-file`.
pub(crate) const CLUSTER_KEY_ENV: &str = "RPCNET_CLUSTER_KEY";

/// Who the node is and how it joins.
#[derive(Args, Debug, Clone)]
pub(crate) struct NodeArgs {
    /// The node's name in the cluster.
    #[arg(long)]
    pub(crate) name: String,
    /// Where the gossip socket (UDP) binds, such as `10.0.0.5:7946` or `0.0.0.0:7946`.
    #[arg(long, default_value = "127.0.0.1:7946")]
    pub(crate) gossip: SocketAddr,
    /// The gossip address the others know this node by, if `--gossip` is a wildcard.
    #[arg(long)]
    pub(crate) advertise: Option<SocketAddr>,
    /// A member to join through, as `host:port` (repeat for more). None: this node starts
    /// a cluster of its own and waits for others to join it.
    #[arg(long = "seed")]
    pub(crate) seeds: Vec<String>,
    /// A tag, as `key=value` (repeat for more), such as `role=worker` or `zone=eu-1`.
    #[arg(long = "tag", value_parser = parse_tag)]
    pub(crate) tags: Vec<(String, String)>,
    /// A file holding the cluster key (or set RPCNET_CLUSTER_KEY). Every member needs the
    /// same key: gossip is sealed with it.
    #[arg(long)]
    pub(crate) cluster_key_file: Option<PathBuf>,
    /// Development mode: the development cluster key and the development CA shared on this
    /// host (in `$RPCNET_DEV_CA_DIR`, else the per-user data directory). For trying things
    /// out on machines you trust, never in production.
    #[arg(long)]
    pub(crate) dev: bool,
    /// The certificate chain this node presents (PEM), without `--dev`.
    #[arg(long, requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// The private key of `--cert` (PEM).
    #[arg(long, requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// The CA that signs the other nodes' certificates (PEM), without `--dev`.
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// Print one JSON object per line (events, per-second figures, the summary) instead of
    /// tables, for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_tag(tag: &str) -> Result<(String, String), String> {
    match tag.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{tag}` is not key=value")),
    }
}

impl NodeArgs {
    /// The seeds, each resolved to its addresses now.
    pub(crate) fn seed_addrs(&self) -> Result<Vec<SocketAddr>, String> {
        let mut addrs = Vec::new();
        for seed in &self.seeds {
            let resolved = seed.to_socket_addrs().map_err(|e| format!("--seed {seed}: {e}"))?;
            addrs.extend(resolved);
        }
        Ok(addrs)
    }

    /// How this node takes part in the cluster.
    pub(crate) fn cluster_config(&self) -> Result<ClusterConfig, String> {
        let base = match self.cluster_key()? {
            Some(secret) => ClusterConfig::default().with_secret(&secret),
            None => ClusterConfig::dev(),
        };
        let mut config = base.with_name(self.name.clone()).with_bind_addr(self.gossip).with_seeds(self.seed_addrs()?);
        if let Some(advertise) = self.advertise {
            config = config.with_advertise_addr(advertise);
        } else if self.gossip.ip().is_unspecified() {
            return Err(format!("--gossip {} is a wildcard: give --advertise, the address others reach", self.gossip));
        }
        for (key, value) in &self.tags {
            config = config.with_tag(key.clone(), value.clone());
        }
        Ok(config)
    }

    /// The cluster key; `None`: the development key (`--dev` without a key of its own).
    fn cluster_key(&self) -> Result<Option<String>, String> {
        let key = match (&self.cluster_key_file, std::env::var(CLUSTER_KEY_ENV)) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map_err(|e| format!("--cluster-key-file {}: {e}", path.display()))?
                .trim()
                .to_owned(),
            (None, Ok(key)) => key.trim().to_owned(),
            (None, Err(_)) if self.dev => return Ok(None),
            (None, Err(_)) => {
                return Err(format!("no cluster key: give --cluster-key-file, set {CLUSTER_KEY_ENV}, or use --dev"));
            }
        };
        if key.len() < 16 {
            return Err(format!("the cluster key is {} characters: use at least 16", key.len()));
        }
        Ok(Some(key))
    }

    /// The transport settings of this node's server, bound to `bind`.
    pub(crate) fn server_config(&self, bind: SocketAddr) -> Result<RpcConfig, String> {
        if self.dev {
            return Ok(RpcConfig::dev(bind.to_string()));
        }
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Err("a worker without --dev needs --cert and --key".into());
        };
        Ok(RpcConfig::new(cert, bind.to_string()).with_key_path(key))
    }

    /// The transport settings of this node's calls to others, from `bind`.
    pub(crate) fn client_config(&self, bind: SocketAddr) -> Result<RpcConfig, String> {
        if self.dev {
            return Ok(RpcConfig::dev(bind.to_string()));
        }
        let Some(ca) = &self.ca else { return Err("a client without --dev needs --ca".into()) };
        Ok(RpcConfig::new(ca, bind.to_string()))
    }
}
