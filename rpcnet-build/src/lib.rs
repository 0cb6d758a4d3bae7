//! Code generation for rpcnet.
//!
//! - [`codegen`]: the generator behind `#[rpcnet::rpc_service]`: a service trait in, a typed
//!   server, a typed client and their wire names out.
//! - [`configure`]: the `build.rs` helper that runs the same generator on service files and
//!   writes formatted modules into `OUT_DIR`, and the `rpcnet-gen` command line tool.

pub mod codegen;
