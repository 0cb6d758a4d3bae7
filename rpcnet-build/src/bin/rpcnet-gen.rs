//! `rpcnet-gen --input <file or folder> --output <folder> [--strategy <name>] [--check]`:
//! writes the code of rpcnet service files for checking in. All logic is in
//! `rpcnet_build::cli`; see `rpcnet-gen --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = rpcnet_build::cli::run(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code)
}
