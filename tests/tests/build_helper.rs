//! `rpcnet-build` agrees with the runtime and with the macro: its strategy names are
//! `LoadBalancingStrategy::NAMES` and map to the same variants, and every trait the macro
//! rejects (each UI case) gets the macro's own messages, at the same lines and columns.

use std::fs;
use std::path::Path;

use rpcnet::LoadBalancingStrategy;
use rpcnet_build::{BuildError, STRATEGY_NAMES, configure};

#[test]
fn strategy_names_are_the_runtimes() {
    assert_eq!(STRATEGY_NAMES, LoadBalancingStrategy::NAMES, "rpcnet-build's copy of the names is in sync");
    let service = "pub trait Probe { async fn probe(&self) -> u8; }";
    for name in STRATEGY_NAMES {
        let strategy: LoadBalancingStrategy = name.parse().expect("every name parses");
        let generated = configure().strategy(name).generate_source("probe.rpc.rs", service).unwrap();
        let variant = format!("LoadBalancingStrategy::{strategy:?};");
        assert!(generated.contains(&variant), "`{name}` defaults the cluster client to `{variant}`");
    }
}

/// `(path:line:column: message)` for each `error: message` / ` --> path:line:column` pair.
fn macro_errors(stderr: &str) -> Vec<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    lines
        .windows(2)
        .filter_map(|pair| {
            let message = pair[0].strip_prefix("error: ")?;
            let place = pair[1].trim_start().strip_prefix("--> ")?;
            Some(format!("{place}: {message}"))
        })
        .collect()
}

#[test]
fn every_trait_the_macro_rejects_gets_the_same_messages_from_the_builder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut categories: Vec<_> = fs::read_dir(root.join("tests/ui")).unwrap().map(|e| e.unwrap().path()).collect();
    categories.sort();
    let mut compared = 0;
    for category in categories {
        let mut cases: Vec<_> = fs::read_dir(&category)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect();
        cases.sort();
        for case in cases {
            let relative = case.strip_prefix(root).unwrap();
            let source = fs::read_to_string(&case).unwrap();
            let stderr = fs::read_to_string(case.with_extension("stderr")).unwrap();
            match configure().generate_source(relative, &source) {
                // Types that cannot travel are found by rustc, after expansion, for both.
                Ok(_) => assert!(
                    relative.starts_with("tests/ui/types"),
                    "{}: the macro rejects it but the builder accepts it",
                    relative.display()
                ),
                Err(err @ BuildError::Invalid { .. }) => {
                    let expected = macro_errors(&stderr).join("\n");
                    assert_eq!(err.to_string(), expected, "{}", relative.display());
                    compared += 1;
                }
                Err(other) => panic!("{}: unexpected {other:?}", relative.display()),
            }
        }
    }
    assert!(compared >= 20, "every generator message was compared ({compared} cases)");
}
