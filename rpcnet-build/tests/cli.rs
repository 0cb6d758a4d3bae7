//! `rpcnet-gen`, run as a process: it writes what the Builder writes, `--check` passes on
//! fresh output and fails with exit code 1 on stale or missing output, and errors are
//! `error: ...` lines on stderr with exit code 2, never a panic.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const CALCULATOR: &str = "use serde::{Deserialize, Serialize};\n\
    #[derive(Debug, Serialize, Deserialize)]\npub enum CalcError { DivisionByZero }\n\
    pub trait Calculator {\n    async fn add(&self, a: i64, b: i64) -> i64;\n    \
    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError>;\n}\n";
const CLOCK: &str = "pub trait Clock { async fn now(&self) -> u64; }\n";

/// Runs `rpcnet-gen` in `dir` with `args`.
fn gen_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rpcnet-gen")).args(args).current_dir(dir).output().expect("rpcnet-gen runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn services() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("services")).unwrap();
    fs::write(dir.path().join("services/calculator.rpc.rs"), CALCULATOR).unwrap();
    fs::write(dir.path().join("services/clock.rpc.rs"), CLOCK).unwrap();
    fs::write(dir.path().join("services/notes.md"), "not a service file").unwrap();
    dir
}

#[test]
fn generated_code_round_trips_with_check() {
    let dir = services();
    let root = dir.path();
    let wrote = gen_in(root, &["--input", "services", "--output", "src/generated", "--strategy", "round_robin"]);
    assert_eq!(wrote.status.code(), Some(0), "{}", text(&wrote.stderr));
    assert_eq!(text(&wrote.stdout), "wrote src/generated/calculator.rs\nwrote src/generated/clock.rs\n");
    let calculator = fs::read_to_string(root.join("src/generated/calculator.rs")).unwrap();
    let builder = rpcnet_build::configure().strategy("round_robin");
    assert_eq!(
        calculator,
        builder.generate_source("services/calculator.rpc.rs", CALCULATOR).unwrap(),
        "the CLI writes exactly what the Builder generates"
    );
    assert!(!root.join("src/generated/notes.rs").exists(), "only *.rpc.rs files are inputs");

    let check =
        gen_in(root, &["--input", "services", "--output", "src/generated", "--strategy", "round_robin", "--check"]);
    assert_eq!(check.status.code(), Some(0), "fresh output passes: {}", text(&check.stderr));
    assert_eq!(text(&check.stdout), "2 generated file(s) up to date\n");

    let again = gen_in(root, &["--input", "services", "--output", "src/generated", "--strategy", "round_robin"]);
    assert_eq!(text(&again.stdout), "unchanged src/generated/calculator.rs\nunchanged src/generated/clock.rs\n");

    // Edit one input and remove the other's output: --check names both and writes nothing.
    fs::write(root.join("services/calculator.rpc.rs"), CALCULATOR.replace("a: i64, b: i64) -> i64", "a: i64) -> i64"))
        .unwrap();
    fs::remove_file(root.join("src/generated/clock.rs")).unwrap();
    let stale =
        gen_in(root, &["--input", "services", "--output", "src/generated", "--strategy", "round_robin", "--check"]);
    assert_eq!(stale.status.code(), Some(1), "stale output fails with exit code 1");
    let stderr = text(&stale.stderr);
    assert!(stderr.contains("stale: src/generated/calculator.rs (from services/calculator.rpc.rs)"), "{stderr}");
    assert!(stderr.contains("missing: src/generated/clock.rs (from services/clock.rpc.rs)"), "{stderr}");
    assert!(stderr.contains("rpcnet-gen --input services --output src/generated --strategy round_robin"), "{stderr}");
    assert_eq!(
        fs::read_to_string(root.join("src/generated/calculator.rs")).unwrap(),
        calculator,
        "--check writes nothing"
    );
    assert!(!root.join("src/generated/clock.rs").exists(), "--check writes nothing");

    // Another default strategy is another output.
    let other = gen_in(root, &["--input", "services/clock.rpc.rs", "--output", "src/generated", "--check"]);
    assert_eq!(other.status.code(), Some(1));
}

#[test]
fn errors_are_reported_on_stderr_with_exit_code_2() {
    let dir = services();
    let root = dir.path();
    fs::write(root.join("blocker"), "a regular file").unwrap();
    fs::write(root.join("services/broken.rpc.rs"), "pub trait Broken {\n    fn sync(&self);\n}\n").unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--input", "missing.rpc.rs", "--output", "out"], "error: input `missing.rpc.rs` does not exist\n"),
        (
            &["--input", "services/broken.rpc.rs", "--output", "out"],
            "error: services/broken.rpc.rs:2:5: rpc methods must be `async fn`: write `async fn sync(&self, ...)`\n",
        ),
        (&["--input", "empty", "--output", "out"], "error: no `*.rpc.rs` file in `empty`\n"),
        (&["--input", "services/clock.rpc.rs", "--output", "out", "--strategy", "fastest"], "error: unknown load"),
        (&["--input", "services/clock.rpc.rs", "--output", "blocker/out"], "error: cannot write `blocker/out`: "),
        (&["--output", "out"], "error: the following required arguments were not provided"),
    ];
    for (args, expected) in cases {
        let run = gen_in(root, args);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: expected `{expected}`, got `{stderr}`");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert!(!root.join("out").exists(), "nothing was written by a failing run");
}

#[test]
fn help_goes_to_stdout_with_exit_code_0() {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = rpcnet_build::cli::run(["rpcnet-gen", "--help"], &mut out, &mut err);
    assert_eq!(code, rpcnet_build::cli::EXIT_OK);
    let help = text(&out);
    for flag in ["--input", "--output", "--strategy", "--check"] {
        assert!(help.contains(flag), "{help}");
    }
    assert!(err.is_empty());
}

#[test]
fn check_names_orphans_and_a_run_removes_them() {
    let dir = services();
    let root = dir.path();
    let wrote = gen_in(root, &["--input", "services"]);
    assert_eq!(wrote.status.code(), Some(0), "--output defaults to src/generated: {}", text(&wrote.stderr));
    assert!(root.join("src/generated/clock.rs").is_file());
    fs::write(root.join("src/generated/mod.rs"), "pub mod calculator;\npub mod clock;\n").unwrap();

    // The source of clock.rs goes: --check reports its module, not the hand-written mod.rs.
    fs::remove_file(root.join("services/clock.rpc.rs")).unwrap();
    let check = gen_in(root, &["--input", "services", "--check"]);
    assert_eq!(check.status.code(), Some(1), "an orphan is stale output: {}", text(&check.stderr));
    let stderr = text(&check.stderr);
    assert!(
        stderr.contains("orphaned: src/generated/clock.rs (generated from clock.rpc.rs, which is gone)"),
        "{stderr}"
    );
    assert!(!stderr.contains("mod.rs"), "a file rpcnet-gen did not write is not its business: {stderr}");
    assert!(root.join("src/generated/clock.rs").exists(), "--check removes nothing");

    // One service file as input: modules of other sources that still exist are left alone.
    fs::write(root.join("services/clock.rpc.rs"), CLOCK).unwrap();
    let single = gen_in(root, &["--input", "services/calculator.rpc.rs", "--check"]);
    assert_eq!(single.status.code(), Some(0), "{}", text(&single.stderr));
    fs::remove_file(root.join("services/clock.rpc.rs")).unwrap();

    let run = gen_in(root, &["--input", "services"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(
        text(&run.stdout).contains("removed src/generated/clock.rs (generated from clock.rpc.rs, which is gone)"),
        "{}",
        text(&run.stdout)
    );
    assert!(!root.join("src/generated/clock.rs").exists() && root.join("src/generated/mod.rs").exists());
    assert_eq!(gen_in(root, &["--input", "services", "--check"]).status.code(), Some(0), "up to date again");
}

#[test]
fn output_written_from_one_checkout_checks_clean_from_another() {
    let (a, b) = (services(), services());
    let (a_services, a_out) = (a.path().join("services"), a.path().join("src/generated"));
    let b_services = b.path().join("services");
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |args: &[&Path], check: bool| {
        let mut all: Vec<&str> = vec!["--input", args[0].to_str().unwrap(), "--output", args[1].to_str().unwrap()];
        if check {
            all.push("--check");
        }
        gen_in(elsewhere.path(), &all)
    };
    assert_eq!(run(&[&a_services, &a_out], false).status.code(), Some(0));
    let check = run(&[&b_services, &a_out], true);
    assert_eq!(check.status.code(), Some(0), "absolute paths leave no trace in the output: {}", text(&check.stderr));
    let b_out = b.path().join("src/generated");
    assert_eq!(run(&[&b_services, &b_out], false).status.code(), Some(0));
    for name in ["calculator.rs", "clock.rs"] {
        assert_eq!(fs::read(a_out.join(name)).unwrap(), fs::read(b_out.join(name)).unwrap(), "{name}: same bytes");
    }
}
