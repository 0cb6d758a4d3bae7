//! `DnsTarget`: what to resolve, written as text. `dns:HOST:PORT` asks for the A and AAAA
//! records of HOST, every address at PORT; `dns+srv:NAME` asks for the SRV records of NAME,
//! each naming a host (resolved in turn) and its port.

use std::fmt;
use std::str::FromStr;

use super::error::DiscoveryError;

/// The longest DNS name (RFC 1035, in its dotted text form).
const MAX_NAME_LEN: usize = 253;

/// A DNS name to discover endpoints from.
///
/// | text | records | port |
/// |---|---|---|
/// | `dns:workers.default.svc:7946` | A and AAAA of `workers.default.svc` | 7946 for every address |
/// | `dns+srv:_gossip._udp.workers.default.svc` | SRV of that name, then A/AAAA of each target | each SRV record's |
///
/// A name is looked up as given: without a final dot the resolver's search domains apply
/// (as a Kubernetes pod's `/etc/resolv.conf` completes `workers.default.svc` with
/// `cluster.local`); with one (`dns:workers.example.com.:7946`) it is taken as complete.
///
/// ```
/// use rpcnet::discovery::DnsTarget;
/// let plain: DnsTarget = "dns:workers.default.svc:7946".parse().unwrap();
/// assert_eq!(plain, DnsTarget::Host { name: "workers.default.svc".into(), port: 7946 });
/// let srv: DnsTarget = "dns+srv:_rpc._udp.workers.default.svc".parse().unwrap();
/// assert_eq!(srv.name(), "_rpc._udp.workers.default.svc");
/// assert!("dns:workers.default.svc".parse::<DnsTarget>().is_err(), "A records need a port");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DnsTarget {
    /// The A and AAAA records of `name`, every address at `port`.
    Host {
        /// The name whose addresses are looked up.
        name: String,
        /// The port every address is reached at.
        port: u16,
    },
    /// The SRV records of `name`: each gives a host (whose A and AAAA records are looked
    /// up) and the port to reach it at.
    Srv {
        /// The name whose SRV records are looked up, such as `_rpc._udp.workers.default.svc`.
        name: String,
    },
}

impl DnsTarget {
    /// The name that is looked up first.
    pub fn name(&self) -> &str {
        match self {
            Self::Host { name, .. } | Self::Srv { name } => name,
        }
    }
}

impl FromStr for DnsTarget {
    type Err = DiscoveryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid =
            |reason: &str| DiscoveryError::InvalidTarget { target: text.to_owned(), reason: reason.to_owned() };
        if let Some(name) = text.strip_prefix("dns+srv:") {
            check_name(name).map_err(invalid)?;
            return Ok(Self::Srv { name: name.to_owned() });
        }
        let Some(rest) = text.strip_prefix("dns:") else {
            return Err(invalid("it starts with neither `dns:` nor `dns+srv:`"));
        };
        let Some((name, port)) = rest.rsplit_once(':') else {
            return Err(invalid("A and AAAA records carry no port: add `:PORT`, or use SRV records (`dns+srv:`)"));
        };
        check_name(name).map_err(invalid)?;
        let port = match port.parse::<u16>() {
            Ok(0) => return Err(invalid("port 0 names no port to reach")),
            Ok(port) => port,
            Err(_) => return Err(invalid("the port is not a number from 1 to 65535")),
        };
        Ok(Self::Host { name: name.to_owned(), port })
    }
}

/// Whether `name` can be a DNS name: labels of letters, digits, `-` and `_` (service
/// labels), separated by dots, at most one final dot.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("the name is longer than 253 characters");
    }
    let labels = name.strip_suffix('.').unwrap_or(name);
    for label in labels.split('.') {
        if label.is_empty() {
            return Err("the name has an empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > 63 {
            return Err("a label of the name is longer than 63 characters");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err("the name holds a character other than letters, digits, `-`, `_` and dots");
        }
    }
    Ok(())
}

impl fmt::Display for DnsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host { name, port } => write!(f, "dns:{name}:{port}"),
            Self::Srv { name } => write!(f, "dns+srv:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_back_as_written() {
        for text in ["dns:workers.default.svc:7946", "dns:workers.example.com.:1", "dns+srv:_gossip._udp.workers"] {
            let target: DnsTarget = text.parse().unwrap();
            assert_eq!(target.to_string(), text);
        }
    }

    #[test]
    fn malformed_targets_are_refused_with_the_reason() {
        let cases = [
            ("workers:7946", "starts with neither"),
            ("dns:workers", "carry no port"),
            ("dns:workers:0", "port 0"),
            ("dns:workers:70000", "not a number"),
            ("dns::7946", "empty"),
            ("dns:a..b:7946", "empty label"),
            ("dns:wor kers:7946", "character"),
            ("dns+srv:", "empty"),
            ("dns:[::1]:7946", "character"),
        ];
        for (text, reason) in cases {
            let err = text.parse::<DnsTarget>().unwrap_err();
            assert!(err.to_string().contains(reason), "{text}: {err}");
        }
    }
}
