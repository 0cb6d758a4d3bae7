//! Generated code as a user gets it: a crate of its own (outside this workspace) whose
//! `build.rs` runs the Builder and whose `main` serves and calls the generated service, built
//! and run with `cargo run`. Dependencies build into `target/tmp/codegen-it/target`, so a
//! second run is incremental (cold: minutes; warm: seconds).
#![allow(clippy::print_stderr)] // the build time is reported on purpose

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const BUILD_RS: &str = r#"
fn main() {
    rpcnet_build::configure()
        .strategy("power_of_two_choices")
        .output_name("services/calculator.rpc.rs", "calc")
        .compile(&["services/calculator.rpc.rs", "services/clock.rpc.rs"])
        .expect("rpcnet codegen");
}
"#;

const CALCULATOR: &str = r#"
use rpcnet::RpcStream;
use serde::{Deserialize, Serialize};

/// What a division can report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CalcError {
    /// The divisor was zero.
    DivisionByZero,
}

/// Arithmetic.
pub trait Calculator {
    /// Adds.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// Divides.
    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError>;
    /// Counts to `n`.
    async fn count(&self, n: u32) -> RpcStream<u32>;
}
"#;

const CLOCK: &str = r#"
/// A second service file, with the attribute written out.
#[rpcnet::rpc_service]
pub trait Clock {
    /// A fixed time.
    async fn now(&self) -> u64;
}
"#;

const MAIN_RS: &str = r#"
#![deny(warnings)]

mod calc {
    rpcnet::include_service!("calc");
}
mod clock {
    rpcnet::include_service!("clock");
}

use calc::{CalcError, Calculator, CalculatorClient, CalculatorClusterClient, CalculatorServer};
use clock::{Clock, ClockClient, ClockServer};
use rpcnet::{RpcConfig, RpcServer, RpcStream};

struct Calc;

impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError> {
        if b == 0 { Err(CalcError::DivisionByZero) } else { Ok(a / b) }
    }
    async fn count(&self, n: u32) -> RpcStream<u32> {
        RpcStream::from_iter(1..=n)
    }
}

struct Fixed;

impl Clock for Fixed {
    async fn now(&self) -> u64 {
        42
    }
}

#[tokio::main]
async fn main() -> Result<(), rpcnet::RpcError> {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(CalculatorServer::new(Calc));
    server.add_service(ClockServer::new(Fixed));
    let (addr, shutdown) = server.spawn()?;
    let client = CalculatorClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await?;
    let cluster = CalculatorClusterClient::from_endpoints([addr], RpcConfig::dev("127.0.0.1:0")).await?;
    let clock = ClockClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await?;
    println!("sum={}", client.add(2, 3).await?);
    println!("div={:?} {:?}", cluster.div(7, 2).await?, cluster.div(1, 0).await?);
    println!("count={:?}", cluster.count(3).await?.collect_messages().await?);
    println!("now={}", clock.now().await?);
    println!("default={}", CalculatorClusterClient::DEFAULT_STRATEGY);
    shutdown.shutdown().await;
    Ok(())
}
"#;

/// The `name = ...` line of `[workspace.dependencies]` in the workspace's manifest, so that
/// the crate uses the workspace's versions and features.
fn workspace_dependency(manifest: &str, name: &str) -> String {
    manifest
        .lines()
        .skip_while(|line| line.trim() != "[workspace.dependencies]")
        .find(|line| line.split('=').next().is_some_and(|key| key.trim() == name))
        .unwrap_or_else(|| panic!("`{name}` in [workspace.dependencies]"))
        .to_owned()
}

/// Writes `contents` unless the file already holds it, so that reruns stay incremental.
fn write(path: &Path, contents: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    if fs::read_to_string(path).ok().as_deref() != Some(contents) {
        fs::write(path, contents).unwrap();
    }
}

#[test]
fn generated_code_compiles_and_runs_in_a_crate_of_its_own() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("codegen-it");
    let app = scratch.join("app");
    let workspace_manifest = fs::read_to_string(workspace.join("Cargo.toml")).unwrap();
    let manifest = format!(
        "[package]\nname = \"codegen-it\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         # Not a member of the rpcnet workspace.\n[workspace]\n\n\
         [dependencies]\nrpcnet = {{ path = '{}' }}\n{}\n{}\n\n\
         [build-dependencies]\nrpcnet-build = {{ path = '{}', default-features = false }}\n",
        workspace.join("rpcnet").display(),
        workspace_dependency(&workspace_manifest, "serde"),
        workspace_dependency(&workspace_manifest, "tokio"),
        workspace.join("rpcnet-build").display(),
    );
    write(&app.join("Cargo.toml"), &manifest);
    // The workspace's lock file: the same versions, and nothing to resolve anew.
    write(&app.join("Cargo.lock"), &fs::read_to_string(workspace.join("Cargo.lock")).unwrap());
    write(&app.join("build.rs"), BUILD_RS);
    write(&app.join("services/calculator.rpc.rs"), CALCULATOR);
    write(&app.join("services/clock.rpc.rs"), CLOCK);
    write(&app.join("src/main.rs"), MAIN_RS);

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let target = scratch.join("target");
    let start = Instant::now();
    let run = Command::new(cargo)
        .arg("run")
        .arg("--manifest-path")
        .arg(app.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    eprintln!("the temporary crate built and ran in {:?}", start.elapsed());
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "cargo run failed:\n{stderr}");
    assert_eq!(
        stdout, "sum=5\ndiv=Ok(3) Err(DivisionByZero)\ncount=[1, 2, 3]\nnow=42\ndefault=power_of_two_choices\n",
        "the generated clients call the generated servers; the default strategy is build.rs's"
    );

    // The build script told Cargo to rerun it when a service file changes.
    let builds: Vec<_> = fs::read_dir(target.join("debug/build"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("codegen-it-"))
        .filter_map(|p| fs::read_to_string(p.join("output")).ok())
        .collect();
    assert!(
        builds.iter().any(|output| output.contains("cargo:rerun-if-changed=services/calculator.rpc.rs\n")
            && output.contains("cargo:rerun-if-changed=services/clock.rpc.rs\n")),
        "rerun-if-changed lines for each input: {builds:?}"
    );
}
