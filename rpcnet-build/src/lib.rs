//! Code generation for rpcnet: one generator, two front doors.
//!
//! - [`codegen`]: the generator behind `#[rpcnet::rpc_service]`: a service trait in; the
//!   trait, a server (`XServer<T>`), a typed client (`XClient`) and a load-balanced cluster
//!   client (`XClusterClient`) out.
//! - [`configure`]: the `build.rs` helper that runs the same generator on service files and
//!   writes one formatted module per file into `OUT_DIR`, for `rpcnet::include_service!`.
//! - `rpcnet-gen` (feature `cli`, on by default; see [`cli`]): the same, into a folder of
//!   the repository, with `--check` to catch stale checked-in code.
//!
//! A service file is an ordinary Rust file holding one or more service traits and the serde
//! types they use:
//!
//! ```text
//! // services/calculator.rpc.rs
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! pub enum CalcError { DivisionByZero }
//!
//! pub trait Calculator {
//!     async fn add(&self, a: i64, b: i64) -> i64;
//!     async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError>;
//! }
//! ```
//!
//! ```no_run
//! // build.rs
//! fn main() {
//!     rpcnet_build::configure()
//!         .strategy("round_robin")      // default strategy of CalculatorClusterClient
//!         .compile(&["services/calculator.rpc.rs"])
//!         .expect("rpcnet codegen");
//! }
//! ```
//!
//! and in the crate, `rpcnet::include_service!("calculator");` brings in the types as
//! written, the trait, `CalculatorServer`, `CalculatorClient` and `CalculatorClusterClient`.
//!
//! Every trait in the file is a service; a `#[rpc_service]` attribute on it is optional (and
//! its `crate = "..."` option is honoured). Every other item is kept as written, in place.
//! `//` comments are not kept (`///` docs are), and the file's `//!` docs are dropped, as an
//! included file cannot carry inner attributes. Because the module is `include!`d, include
//! two service files into two modules if both `use` the same names. Output is formatted by
//! prettyplease and deterministic: same input, same bytes.

// The examples are whole `build.rs` files, `fn main` included.
#![allow(clippy::needless_doctest_main)]

pub mod codegen;

mod builder;
#[cfg(feature = "cli")]
pub mod cli;
mod error;
mod file;
mod strategy;

pub use builder::{Builder, compile, configure};
pub use error::{BuildError, Diagnostic};
pub use strategy::STRATEGY_NAMES;
