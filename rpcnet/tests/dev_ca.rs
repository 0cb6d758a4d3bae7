//! Development mode across processes: `RpcConfig::dev` in two processes of one user
//! trusts the same CA, kept in `RPCNET_DEV_CA_DIR`, including when several processes make
//! it at once; a process with another CA is refused. Where no directory can be written
//! the CA is the process's own; a stored CA that others can read is refused, from
//! `validate`.
//!
//! A test without libtest's harness: the same binary is a server or a client of its own
//! when `RPCNET_DEV_CA_ROLE` says so, inheriting (or being given) `RPCNET_DEV_CA_DIR`.
// Children tell their parent where they listen; the parent reports each test.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rpcnet::{RpcClient, RpcConfig, RpcError, RpcServer};

const ROLE_ENV: &str = "RPCNET_DEV_CA_ROLE";
const DIR_ENV: &str = "RPCNET_DEV_CA_DIR";
/// Bounds every call of the test, so that a failure fails instead of hanging.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("server") => runtime.block_on(serve()),
        Ok("in-process") => match runtime.block_on(in_process()) {
            Ok(()) => println!("OK"),
            Err(err) => println!("ERR {err}"),
        },
        Ok("client") => {
            let addrs: Vec<SocketAddr> = std::env::args().skip(1).map(|a| a.parse().expect("an address")).collect();
            for addr in addrs {
                runtime.block_on(echo(addr)).unwrap_or_else(|e| panic!("the call to {addr} failed: {e}"));
            }
        }
        _ => {
            runtime.block_on(a_server_in_another_process_is_trusted_by_a_client_in_this_one());
            println!("test a_server_in_another_process_is_trusted_by_a_client_in_this_one ... ok");
            runtime.block_on(processes_making_the_ca_at_once_agree_and_other_cas_are_refused());
            println!("test processes_making_the_ca_at_once_agree_and_other_cas_are_refused ... ok");
            runtime.block_on(an_unwritable_directory_leaves_a_ca_of_the_process_own());
            println!("test an_unwritable_directory_leaves_a_ca_of_the_process_own ... ok");
            runtime.block_on(a_key_others_can_read_is_refused_by_validate());
            println!("test a_key_others_can_read_is_refused_by_validate ... ok");
            println!("4 passed, 0 failed");
        }
    }
}

/// A server of `echo` on a loopback port, saying where on its first line.
async fn serve() {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.register("echo", |request| async move { Ok(request) }).await;
    let endpoint = server.bind().expect("binds");
    println!("LISTENING {}", server.local_addr().unwrap());
    server.start(endpoint).await.unwrap();
}

/// A development server and a client of it in this process.
async fn in_process() -> Result<(), RpcError> {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.register("echo", |request| async move { Ok(request) }).await;
    let (addr, shutdown) = server.spawn()?;
    let called = echo(addr).await;
    shutdown.shutdown().await;
    called
}

/// One call of `echo` with a development configuration.
async fn echo(addr: SocketAddr) -> Result<(), RpcError> {
    let call = async {
        let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await?;
        let answer = client.call("echo", b"across processes".to_vec()).await?;
        assert_eq!(answer, b"across processes");
        Ok(())
    };
    tokio::time::timeout(CALL_TIMEOUT, call).await.unwrap_or(Err(RpcError::Timeout))
}

/// A child process of this binary, killed when dropped.
struct ChildProcess(Child);

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn child(role: &str, dir: Option<&Path>) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.env(ROLE_ENV, role);
    if let Some(dir) = dir {
        command.env(DIR_ENV, dir);
    }
    command
}

/// Starts a server process; `dir` replaces the CA directory it would inherit.
fn start_server(dir: Option<&Path>) -> ChildProcess {
    ChildProcess(child("server", dir).stdout(Stdio::piped()).spawn().expect("starts a server process"))
}

/// Where a started server listens.
fn listening(server: &mut ChildProcess) -> SocketAddr {
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).expect("the server says where it listens");
    line.trim().strip_prefix("LISTENING ").unwrap_or_else(|| panic!("not an address: {line:?}")).parse().unwrap()
}

async fn a_server_in_another_process_is_trusted_by_a_client_in_this_one() {
    // The child inherits this process's CA directory, as a second terminal would.
    let mut server = start_server(None);
    let addr = listening(&mut server);
    echo(addr).await.expect("a client here trusts a development server there");
}

async fn processes_making_the_ca_at_once_agree_and_other_cas_are_refused() {
    let dir = std::env::temp_dir().join(format!("rpcnet-dev-ca-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ca_dir: PathBuf = dir.join("dev-ca");
    // Both servers start on a directory with no CA yet: each may make one.
    let mut first = start_server(Some(&ca_dir));
    let mut second = start_server(Some(&ca_dir));
    let addrs = [listening(&mut first), listening(&mut second)];
    let status = child("client", Some(&ca_dir))
        .args(addrs.iter().map(ToString::to_string))
        .status()
        .expect("runs a client process");
    assert!(status.success(), "a third process with the same directory must trust both servers");
    // This process keeps its CA elsewhere: the servers' certificates are not signed by it.
    let err = echo(addrs[0]).await.expect_err("a client of another CA must be refused");
    assert!(matches!(err, RpcError::Tls(_)), "the handshake fails on the certificate: {err:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ca_dir), 0o700, "the CA directory is the user's alone");
        assert_eq!(mode(&ca_dir.join("ca-key.pem")), 0o600, "the CA key is the user's alone");
    }
    drop((first, second));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What a child in the `in-process` role printed.
fn in_process_child(dir: &Path) -> String {
    let output = child("in-process", Some(dir)).output().expect("runs a child process");
    assert!(output.status.success(), "the child must not crash: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

async fn an_unwritable_directory_leaves_a_ca_of_the_process_own() {
    let blocker = std::env::temp_dir().join(format!("rpcnet-dev-ca-blocked-{}", std::process::id()));
    std::fs::write(&blocker, b"a file where a directory would have to be").unwrap();
    let answer = in_process_child(&blocker.join("dev-ca"));
    assert_eq!(answer, "OK", "development mode still works within the process");
    std::fs::remove_file(&blocker).unwrap();
}

async fn a_key_others_can_read_is_refused_by_validate() {
    let dir = std::env::temp_dir().join(format!("rpcnet-dev-ca-readable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(in_process_child(&dir), "OK", "a new directory gets a CA");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.join("ca-key.pem");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let answer = in_process_child(&dir);
        assert!(
            answer.starts_with("ERR invalid configuration") && answer.contains("chmod 600"),
            "a readable key must be refused with its fix, not used nor replaced: {answer}"
        );
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o644, "the file is left alone");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
