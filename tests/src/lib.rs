//! Cross-crate tests of rpcnet live in `tests/`; this library holds what they share.

/// Sends rpcnet's tracing output to the test's captured output (`RUST_LOG` filters).
pub fn subscribe() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "rpcnet=debug".into()),
        )
        .try_init();
}
