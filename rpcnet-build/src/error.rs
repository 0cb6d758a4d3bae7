//! What can go wrong when generating from service files: one variant per failure, each
//! naming the file and, for problems inside it, the line and column, as
//! `path:line:column: message` (the form editors and terminals link to).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::strategy::STRATEGY_NAMES;

/// A failure of [`Builder::compile`](crate::Builder::compile) or `rpcnet-gen`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The file is not valid Rust.
    #[error("{}", Located(path, std::slice::from_ref(diagnostic)))]
    Syntax {
        /// The file, as given.
        path: PathBuf,
        /// Where and what.
        diagnostic: Diagnostic,
    },
    /// A service trait breaks a rule of `#[rpc_service]`: the same messages the macro gives,
    /// all of them, in the order of the file.
    #[error("{}", Located(path, diagnostics))]
    Invalid {
        /// The file, as given.
        path: PathBuf,
        /// Every problem found.
        diagnostics: Vec<Diagnostic>,
    },
    /// An input file does not exist.
    #[error("input `{}` does not exist", display(path))]
    MissingInput {
        /// The file, as given.
        path: PathBuf,
    },
    /// An input file exists but cannot be read as UTF-8 text.
    #[error("cannot read input `{}`: {source}", display(path))]
    ReadInput {
        /// The file, as given.
        path: PathBuf,
        /// What the OS (or the UTF-8 check) said.
        source: io::Error,
    },
    /// An input file holds no trait, so nothing would be generated from it.
    #[error(
        "{}: no service in this file: write a trait such as `pub trait Calculator {{ async fn add(&self, a: i64, b: i64) -> i64; }}`",
        display(path)
    )]
    NoService {
        /// The file, as given.
        path: PathBuf,
    },
    /// A folder given as input holds no `*.rpc.rs` file.
    #[error("no `*.rpc.rs` file in `{}`", display(path))]
    NoServiceFiles {
        /// The folder, as given.
        path: PathBuf,
    },
    /// [`Builder::strategy`](crate::Builder::strategy) was given a name that is not a
    /// strategy.
    #[error("unknown load balancing strategy `{name}`; valid names: {}", STRATEGY_NAMES.join(", "))]
    UnknownStrategy {
        /// The name given.
        name: String,
    },
    /// No output folder: `OUT_DIR` is set only while Cargo runs a build script.
    #[error("OUT_DIR is not set: call `compile` from build.rs, or choose the output folder with `.out_dir(path)`")]
    OutDirUnset,
    /// An output name is empty or holds a path separator.
    #[error("invalid output name `{name}` for `{}`: use a plain file name such as `calculator`", display(input))]
    InvalidOutputName {
        /// The input file.
        input: PathBuf,
        /// The name.
        name: String,
    },
    /// Two inputs would be written to the same file.
    #[error(
        "`{}` and `{}` would both be written to `{name}`: give one another name with `.output_name(..)`",
        display(first),
        display(second)
    )]
    DuplicateOutput {
        /// The output file name.
        name: String,
        /// The first input.
        first: PathBuf,
        /// The second input.
        second: PathBuf,
    },
    /// The output folder or a file in it cannot be created or written.
    #[error("cannot write `{}`: {source}", display(path))]
    Output {
        /// The folder or file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// One problem at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
    /// What is wrong, and how to fix it.
    pub message: String,
}

impl Diagnostic {
    /// Each message of `error` at the start of its span.
    pub(crate) fn all(error: syn::Error) -> Vec<Self> {
        error.into_iter().map(|e| Self::one(&e)).collect()
    }

    /// The first message of `error`.
    pub(crate) fn one(error: &syn::Error) -> Self {
        let start = error.span().start();
        Self { line: start.line, column: start.column + 1, message: error.to_string() }
    }
}

/// `path:line:column: message`, one line per diagnostic.
struct Located<'a>(&'a Path, &'a [Diagnostic]);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = display(self.0);
        for (i, d) in self.1.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{path}:{}:{}: {}", d.line, d.column, d.message)?;
        }
        Ok(())
    }
}

/// A path as the user gave it, with `/` separators on every platform so that generated
/// headers and messages are the same everywhere.
pub(crate) fn display(path: &Path) -> String {
    let text = path.to_string_lossy();
    let text = text.strip_prefix("./").unwrap_or(&text);
    if cfg!(windows) { text.replace('\\', "/") } else { text.to_owned() }
}
