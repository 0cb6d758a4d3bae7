//! `rpcnet-gen`, for generated code that is checked in: the same [`Builder`] writing into a
//! folder of the repository, and `--check` to fail CI when that code is stale. The binary is
//! a one-line `main` over [`run`], so tests drive the same code.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::builder::{Builder, Generated, write_all};
use crate::error::display;
use crate::file::generated_from;
use crate::{BuildError, configure};

/// Exit code: done, or everything up to date.
pub const EXIT_OK: u8 = 0;
/// Exit code of `--check`: a generated file is stale, missing, or orphaned (its source is
/// gone).
pub const EXIT_STALE: u8 = 1;
/// Exit code: an error (bad input, unwritable output, bad arguments).
pub const EXIT_ERROR: u8 = 2;

/// The command line of `rpcnet-gen`.
#[derive(Debug, Parser)]
#[command(
    name = "rpcnet-gen",
    version,
    about = "Writes the code of rpcnet service files (traits and their serde types), one module per file",
    after_help = "Exit codes: 0 done or up to date, 1 stale (--check), 2 error."
)]
pub struct Args {
    /// A service file, or a folder: every `*.rpc.rs` file in it, in name order.
    #[arg(long, short, value_name = "FILE OR FOLDER")]
    pub input: PathBuf,
    /// The folder to write into, created if needed: `calculator.rpc.rs` becomes `calculator.rs`.
    /// A module rpcnet-gen wrote there earlier whose source file is gone is removed.
    #[arg(long, short, value_name = "FOLDER", default_value = "src/generated")]
    pub output: PathBuf,
    /// The default load balancing strategy of the generated cluster clients.
    #[arg(long, default_value = "least_connections", value_name = "NAME")]
    pub strategy: String,
    /// Write nothing; exit with 1, naming each stale, missing or orphaned file (one rpcnet-gen
    /// wrote from a source that is gone), unless all are up to date.
    #[arg(long)]
    pub check: bool,
}

/// Runs `rpcnet-gen` with `args` (the first is the program name), writing what it reports to
/// `out` and errors, as `error: ...`, to `err`. Returns the exit code.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(clap_error) => {
            let code = if clap_error.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let rendered = clap_error.render().to_string();
            let _ = if clap_error.use_stderr() {
                err.write_all(rendered.as_bytes())
            } else {
                out.write_all(rendered.as_bytes())
            };
            return code;
        }
    };
    match execute(&args, out, err) {
        Ok(code) => code,
        Err(error) => {
            // One `error:` line per problem, each `path:line:column: message` where it has one.
            for line in error.to_string().lines() {
                let _ = writeln!(err, "error: {line}");
            }
            EXIT_ERROR
        }
    }
}

fn execute(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8, BuildError> {
    let inputs = inputs(&args.input)?;
    let builder: Builder = configure().strategy(&args.strategy).emit_rerun_if_changed(false);
    let generated = builder.generate(&inputs)?;
    let orphans = orphans(&args.output, &args.input, &generated)?;
    if args.check {
        let mut stale = 0;
        for module in &generated {
            let path = args.output.join(&module.file_name);
            if !module.is_written_at(&path) {
                let what = if path.exists() { "stale" } else { "missing" };
                let _ = writeln!(err, "{what}: {} (from {})", display(&path), display(&module.input));
                stale += 1;
            }
        }
        for (path, source) in &orphans {
            let _ = writeln!(err, "orphaned: {} (generated from {source}, which is gone)", display(path));
            stale += 1;
        }
        if stale > 0 {
            let _ = writeln!(
                err,
                "error: {stale} generated file(s) out of date; run `rpcnet-gen --input {} --output {}{}`",
                display(&args.input),
                display(&args.output),
                strategy_flag(&args.strategy)
            );
            return Ok(EXIT_STALE);
        }
        let _ = writeln!(out, "{} generated file(s) up to date", generated.len());
        return Ok(EXIT_OK);
    }
    let written = write_all(&args.output, &generated)?;
    for (module, written) in generated.iter().zip(written) {
        let status = if written { "wrote" } else { "unchanged" };
        let _ = writeln!(out, "{status} {}", display(&args.output.join(&module.file_name)));
    }
    for (path, source) in &orphans {
        std::fs::remove_file(path).map_err(|source| BuildError::Output { path: path.clone(), source })?;
        let _ = writeln!(out, "removed {} (generated from {source}, which is gone)", display(path));
    }
    Ok(EXIT_OK)
}

/// The modules in `output` that rpcnet-gen wrote (its header says so) from a source that no
/// longer exists beside the inputs (in the `input` folder, or the input file's folder), and
/// that this run does not write: with each, the source its header names. Hand-written files,
/// and modules of sources that still exist, are not orphans.
fn orphans(output: &Path, input: &Path, generated: &[Generated]) -> Result<Vec<(PathBuf, String)>, BuildError> {
    let sources = if input.is_dir() { input } else { input.parent().unwrap_or(Path::new("")) };
    let entries = match std::fs::read_dir(output) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(BuildError::Output { path: output.to_owned(), source }),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| BuildError::Output { path: output.to_owned(), source })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".rs") || generated.iter().any(|g| g.file_name == name) || !entry.path().is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        let Some(source) = generated_from(&text) else { continue };
        // Older headers named the source by its path as typed: its file name is what counts.
        let source_name = Path::new(source).file_name().map(|n| n.to_owned()).unwrap_or_default();
        if !sources.join(source_name).exists() {
            found.push((output.join(name), source.to_owned()));
        }
    }
    found.sort();
    Ok(found)
}

fn strategy_flag(strategy: &str) -> String {
    if strategy == "least_connections" { String::new() } else { format!(" --strategy {strategy}") }
}

/// The input files: `input` itself, or every `*.rpc.rs` file in it if it is a folder.
fn inputs(input: &Path) -> Result<Vec<PathBuf>, BuildError> {
    if !input.is_dir() {
        return Ok(vec![input.to_owned()]);
    }
    let entries =
        std::fs::read_dir(input).map_err(|source| BuildError::ReadInput { path: input.to_owned(), source })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| BuildError::ReadInput { path: input.to_owned(), source })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".rpc.rs") && entry.path().is_file() {
            files.push(input.join(name));
        }
    }
    if files.is_empty() {
        return Err(BuildError::NoServiceFiles { path: input.to_owned() });
    }
    files.sort();
    Ok(files)
}
