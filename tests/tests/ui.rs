//! What `#[rpc_service]` says about traits it rejects (one case per message), and the
//! shapes it accepts. Regenerate the expected output with `TRYBUILD=overwrite`.

#[test]
fn diagnostics() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*/*.rs");
    cases.pass("tests/pass/*.rs");
}
