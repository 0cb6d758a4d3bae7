//! `rpcnet-node`: one rpcnet cluster node per host. A worker serves calls and joins the
//! cluster through its seeds; a client joins without serving and drives a load balanced
//! over the workers it discovers, printing what each answered. See the README for a
//! three-host cluster by hand, and `harness/` for many hosts on one machine.
//!
//! ```text
//! rpcnet-node worker --name w1 --dev --gossip 10.0.0.1:7946 --bind 10.0.0.1:7000 --tag zone=eu-1
//! rpcnet-node worker --name w2 --dev --gossip 10.0.0.2:7946 --bind 10.0.0.2:7000 --seed 10.0.0.1:7946
//! rpcnet-node client --name c1 --dev --gossip 10.0.0.3:7946 --seed 10.0.0.1:7946 --seconds 30
//! ```

mod client;
mod options;
mod output;
mod service;
mod signal;
mod worker;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(about = "One rpcnet cluster node: a worker serving calls, or a client driving a load over the workers")]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Serve calls and join the cluster.
    Worker(worker::WorkerArgs),
    /// Join the cluster and drive a load over its workers.
    Client(client::ClientArgs),
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(async {
            match cli.role {
                Role::Worker(args) => worker::run(args).await,
                Role::Client(args) => client::run(args).await,
            }
        }),
        Err(err) => Err(format!("tokio runtime: {err}")),
    };
    if let Err(err) = result {
        #[allow(clippy::print_stderr)] // the binary's own error, as the last line it prints
        {
            eprintln!("rpcnet-node: {err}");
        }
        std::process::exit(2);
    }
}
