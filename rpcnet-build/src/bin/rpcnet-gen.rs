//! `rpcnet-gen`: writes the code of service files (lands with the build helper).
fn main() {}
