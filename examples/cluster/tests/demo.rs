//! The demo, run as a user runs it (shorter): it ends by itself, loses no call, and tells
//! how the kill and the addition went.

use std::process::Command;

#[test]
fn the_demo_runs_a_cluster_through_a_kill_and_an_addition_without_failed_calls() {
    let output = Command::new(env!("CARGO_BIN_EXE_example-cluster"))
        .args(["--seconds", "9", "--concurrency", "8"])
        .output()
        .expect("the demo starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the demo failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("The client found all 4 workers by gossip"), "{stdout}");
    assert!(stdout.contains("failed calls: 0 "), "{stdout}");
    assert!(stdout.contains("w2 killed: suspected after"), "{stdout}");
    for worker in ["w1", "w3", "w4", "w5"] {
        // Summary lines read `    w1    1234   33.4%`.
        let calls: Option<u64> = stdout.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [name, calls, share] if *name == worker && share.ends_with('%') => calls.parse().ok(),
                _ => None,
            }
        });
        assert!(calls.is_some_and(|n| n > 0), "{worker} got no calls:\n{stdout}");
    }
}
