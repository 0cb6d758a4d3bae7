//! The `build.rs` helper: [`configure`] sets every default in one place, each setter states
//! its own, and [`Builder::compile`] reads the service files, generates every module in
//! memory first (so a bad file writes nothing), then writes those that changed.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::codegen::Options;
use crate::error::BuildError;
use crate::{file, strategy};

/// Generates modules from service files; made by [`configure`].
///
/// ```no_run
/// // build.rs
/// fn main() {
///     rpcnet_build::configure()
///         .strategy("least_connections")
///         .compile(&["services/calculator.rpc.rs"])
///         .expect("rpcnet codegen");
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    strategy: String,
    out_dir: Option<PathBuf>,
    output_names: Vec<(PathBuf, String)>,
    emit_rerun_if_changed: bool,
}

/// A [`Builder`] with the defaults: least-connections cluster clients, output into
/// `OUT_DIR`, each module named after its file, and `cargo:rerun-if-changed` lines when run
/// by a build script.
pub fn configure() -> Builder {
    Builder {
        strategy: "least_connections".to_owned(),
        out_dir: None,
        output_names: Vec::new(),
        emit_rerun_if_changed: in_build_script(),
    }
}

/// `configure().compile(inputs)`: the defaults, for the common case.
pub fn compile(inputs: &[impl AsRef<Path>]) -> Result<(), BuildError> {
    configure().compile(inputs)
}

/// One generated module, before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generated {
    /// The input file, as given.
    pub(crate) input: PathBuf,
    /// The output file's name, such as `calculator.rs`.
    pub(crate) file_name: String,
    /// The module's text.
    pub(crate) contents: String,
}

impl Builder {
    /// The default strategy of every generated `XClusterClient`, by name: one of
    /// [`STRATEGY_NAMES`](crate::STRATEGY_NAMES), such as `"round_robin"`. Clients can
    /// still choose another at run time with `XClusterClient::builder().strategy(..)`.
    /// Default: `"least_connections"`. An unknown name makes [`compile`](Self::compile)
    /// fail with [`BuildError::UnknownStrategy`], which lists the valid names.
    pub fn strategy(mut self, name: &str) -> Self {
        name.clone_into(&mut self.strategy);
        self
    }

    /// The folder to write into. Default: `OUT_DIR`, which Cargo sets for build scripts.
    /// A module written elsewhere is included with `include!("path/to/calculator.rs")`
    /// instead of `rpcnet::include_service!`.
    pub fn out_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(path.into());
        self
    }

    /// The output name of `input` (given as in [`compile`](Self::compile)): `"calc"` writes
    /// `calc.rs`, included with `include_service!("calc")`. Default: the input's file name
    /// up to its first dot (`services/calculator.rpc.rs` → `calculator.rs`).
    pub fn output_name(mut self, input: impl Into<PathBuf>, name: &str) -> Self {
        self.output_names.push((input.into(), name.strip_suffix(".rs").unwrap_or(name).to_owned()));
        self
    }

    /// Whether [`compile`](Self::compile) prints `cargo:rerun-if-changed=<input>` for each
    /// input, so that Cargo reruns the build script when a service file changes, and only
    /// then (Cargo still reruns it when `build.rs` itself changes). Default: true when run by
    /// a build script (Cargo sets `CARGO_CFG_TARGET_OS` only there), false otherwise.
    pub fn emit_rerun_if_changed(mut self, emit: bool) -> Self {
        self.emit_rerun_if_changed = emit;
        self
    }

    /// Generates one module per input file and writes it into the output folder, creating
    /// the folder if needed; a file whose contents did not change is left untouched. Every
    /// module is generated before any is written, so a bad input writes nothing.
    #[allow(clippy::print_stdout)] // Cargo reads a build script's instructions on stdout.
    pub fn compile(&self, inputs: &[impl AsRef<Path>]) -> Result<(), BuildError> {
        for line in self.rerun_lines(inputs) {
            println!("{line}");
        }
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR").map(PathBuf::from).ok_or(BuildError::OutDirUnset)?,
        };
        let generated = self.generate(inputs)?;
        write_all(&out_dir, &generated).map(drop)
    }

    /// The module that [`compile`](Self::compile) would write for a file holding `source`,
    /// read from `path` (which appears in the header and in errors and is not read).
    pub fn generate_source(&self, path: impl AsRef<Path>, source: &str) -> Result<String, BuildError> {
        file::generate(path.as_ref(), source, &self.options()?)
    }

    /// Every module, in input order, or the first error.
    pub(crate) fn generate(&self, inputs: &[impl AsRef<Path>]) -> Result<Vec<Generated>, BuildError> {
        let options = self.options()?;
        let mut outputs: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut generated = Vec::new();
        for input in inputs {
            let input = input.as_ref();
            let file_name = format!("{}.rs", self.output_stem(input)?);
            if let Some(first) = outputs.insert(file_name.clone(), input.to_owned()) {
                return Err(BuildError::DuplicateOutput { name: file_name, first, second: input.to_owned() });
            }
            let source = fs::read_to_string(input).map_err(|source| match source.kind() {
                io::ErrorKind::NotFound => BuildError::MissingInput { path: input.to_owned() },
                _ => BuildError::ReadInput { path: input.to_owned(), source },
            })?;
            let contents = file::generate(input, &source, &options)?;
            generated.push(Generated { input: input.to_owned(), file_name, contents });
        }
        Ok(generated)
    }

    /// The `cargo:rerun-if-changed` lines for `inputs`, if they are to be printed.
    pub(crate) fn rerun_lines(&self, inputs: &[impl AsRef<Path>]) -> Vec<String> {
        if !self.emit_rerun_if_changed {
            return Vec::new();
        }
        inputs.iter().map(|input| format!("cargo:rerun-if-changed={}", input.as_ref().display())).collect()
    }

    fn options(&self) -> Result<Options, BuildError> {
        let cluster_strategy = strategy::variant(&self.strategy)
            .ok_or_else(|| BuildError::UnknownStrategy { name: self.strategy.clone() })?;
        Ok(Options { cluster_strategy, ..Options::default() })
    }

    /// The output name of `input` without `.rs`.
    fn output_stem(&self, input: &Path) -> Result<String, BuildError> {
        let chosen = self.output_names.iter().rev().find(|(path, _)| path == input).map(|(_, name)| name.clone());
        let name = chosen.unwrap_or_else(|| {
            let file_name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            file_name.split('.').next().unwrap_or_default().to_owned()
        });
        if name.is_empty() || name.contains(['/', '\\']) || name == ".." {
            return Err(BuildError::InvalidOutputName { input: input.to_owned(), name });
        }
        Ok(name)
    }
}

/// Writes every module into `dir` (created if needed), skipping files already up to date;
/// returns whether each was written.
pub(crate) fn write_all(dir: &Path, generated: &[Generated]) -> Result<Vec<bool>, BuildError> {
    fs::create_dir_all(dir).map_err(|source| BuildError::Output { path: dir.to_owned(), source })?;
    let mut written = Vec::new();
    for module in generated {
        let path = dir.join(&module.file_name);
        if module.is_written_at(&path) {
            written.push(false);
            continue;
        }
        fs::write(&path, &module.contents).map_err(|source| BuildError::Output { path: path.clone(), source })?;
        written.push(true);
    }
    Ok(written)
}

/// Whether a build script is running: Cargo sets `CARGO_CFG_*` only for build scripts.
fn in_build_script() -> bool {
    std::env::var_os("CARGO_CFG_TARGET_OS").is_some()
}

impl Generated {
    /// Whether `path` holds exactly this module.
    pub(crate) fn is_written_at(&self, path: &Path) -> bool {
        fs::read(path).is_ok_and(|current| current == self.contents.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerun_lines_are_printed_per_input_unless_turned_off() {
        let inputs = ["services/a.rpc.rs", "services/b.rpc.rs"];
        let on = configure().emit_rerun_if_changed(true).rerun_lines(&inputs);
        assert_eq!(
            on,
            ["cargo:rerun-if-changed=services/a.rpc.rs", "cargo:rerun-if-changed=services/b.rpc.rs"],
            "one line per input, in order"
        );
        assert!(configure().emit_rerun_if_changed(false).rerun_lines(&inputs).is_empty(), "turned off");
        assert!(configure().rerun_lines(&inputs).is_empty(), "a test is not a build script: off by default");
    }

    #[test]
    fn output_names_default_to_the_stem_before_the_first_dot_and_can_be_chosen() {
        let builder = configure().output_name("services/calculator.rpc.rs", "calc.rs");
        assert_eq!(builder.output_stem(Path::new("services/calculator.rpc.rs")).unwrap(), "calc");
        assert_eq!(builder.output_stem(Path::new("other/kv.rpc.rs")).unwrap(), "kv");
        assert_eq!(builder.output_stem(Path::new("plain.rs")).unwrap(), "plain");
        let err = builder.output_stem(Path::new("services/.rpc.rs")).unwrap_err();
        assert!(matches!(err, BuildError::InvalidOutputName { .. }), "{err}");
        let err = configure().output_name("a.rpc.rs", "x/y").output_stem(Path::new("a.rpc.rs")).unwrap_err();
        assert!(err.to_string().contains("plain file name"), "{err}");
    }
}
