//! The test network: one namespace per host, each with one veth to a bridge in a switch
//! namespace of its own, addresses in 10.77.0.0/24 that exist only inside the namespaces.
//! Links are cut and healed on the switch side; everything is removed on drop.

use std::process::Command;

/// Runs `ip` with `args`, failing with its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip").args(args).output().map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// Why the harness cannot run here, if it cannot: it needs root and network namespaces.
pub(crate) fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("not root: network namespaces need CAP_SYS_ADMIN".into());
    }
    let probe = format!("rnh-probe-{}", std::process::id());
    if let Err(err) = ip(&["netns", "add", &probe]) {
        return Some(format!("`ip netns` does not work here: {err}"));
    }
    let _ = ip(&["netns", "del", &probe]);
    None
}

/// Whether this process runs as root (its effective uid, from /proc).
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|effective| effective == "0")
}

/// The namespaces and links of one run, named after the harness's pid so that runs never
/// collide and leftovers of a killed run are recognised.
pub(crate) struct Network {
    prefix: String,
    hosts: usize,
}

impl Network {
    /// Creates `hosts` hosts joined by one bridge. On failure, removes what it made.
    pub(crate) fn create(hosts: usize) -> Result<Self, String> {
        remove_leftovers();
        let network = Self { prefix: format!("rnh-{}", std::process::id()), hosts };
        network.build().map(|()| network)
    }

    fn build(&self) -> Result<(), String> {
        let switch = self.switch();
        ip(&["netns", "add", &switch])?;
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "add", "br1", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        ip(&["-n", &switch, "link", "set", "br1", "up"])?;
        for host in 1..=self.hosts {
            let namespace = self.namespace(host);
            let port = port(host);
            ip(&["netns", "add", &namespace])?;
            ip(&["link", "add", "eth0", "netns", &namespace, "type", "veth", "peer", "name", &port, "netns", &switch])?;
            ip(&["-n", &switch, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &switch, "link", "set", &port, "up"])?;
            ip(&["-n", &namespace, "addr", "add", &format!("{}/24", address(host)), "dev", "eth0"])?;
            ip(&["-n", &namespace, "link", "set", "eth0", "up"])?;
            ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// The namespace of host `host` (1-based).
    pub(crate) fn namespace(&self, host: usize) -> String {
        format!("{}-h{host}", self.prefix)
    }

    fn switch(&self) -> String {
        format!("{}-sw", self.prefix)
    }

    /// Cuts (`up == false`) or heals host `host`'s link to the switch.
    pub(crate) fn set_link(&self, host: usize, up: bool) -> Result<(), String> {
        ip(&["-n", &self.switch(), "link", "set", &port(host), if up { "up" } else { "down" }])
    }

    /// Moves host `host` to the second bridge (`apart`) or back to the first: the hosts on
    /// one bridge cannot reach those on the other, a split of the network in two.
    pub(crate) fn set_side(&self, host: usize, apart: bool) -> Result<(), String> {
        ip(&["-n", &self.switch(), "link", "set", &port(host), "master", if apart { "br1" } else { "br0" }])
    }

    /// The namespaces of this run that still exist (none after drop).
    pub(crate) fn remaining(prefix: &str) -> Vec<String> {
        namespaces().into_iter().filter(|name| name.starts_with(prefix)).collect()
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends in it, and with them their peers.
        for host in 1..=self.hosts {
            let _ = ip(&["netns", "del", &self.namespace(host)]);
        }
        let _ = ip(&["netns", "del", &self.switch()]);
    }
}

/// Host `host`'s address.
pub(crate) fn address(host: usize) -> String {
    format!("10.77.0.{host}")
}

fn port(host: usize) -> String {
    format!("p{host}")
}

fn namespaces() -> Vec<String> {
    let output = Command::new("ip").args(["netns", "list"]).output();
    let Ok(output) = output else { return Vec::new() };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Removes namespaces left by runs whose harness process is gone (killed before it could
/// clean up).
fn remove_leftovers() {
    for name in namespaces() {
        let Some(rest) = name.strip_prefix("rnh-") else { continue };
        let Some(pid) = rest.split('-').next().and_then(|pid| pid.parse::<u32>().ok()) else { continue };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}
