//! The Calculator of DESIGN.md on loopback: one call of every kind through the typed client.
//!
//! ```text
//! cargo run -p example-calculator
//! ```
#![allow(clippy::print_stdout)]

#[tokio::main]
async fn main() -> Result<(), rpcnet::RpcError> {
    tracing_subscriber::fmt().with_env_filter("rpcnet=info").init();
    let summary = example_calculator::run().await?;
    println!("add(2, 3)            -> {}", summary.sum);
    println!("div(7, 2), div(1, 0) -> {:?}, {:?}", summary.divisions.0, summary.divisions.1);
    println!("count(5)             -> {:?}", summary.counted);
    println!("sum(1..=100)         -> {}", summary.streamed_sum);
    println!("running(1, 2, 3, 4)  -> {:?}", summary.running);
    println!("sum with 50 ms       -> {:?}", summary.late);
    Ok(())
}
