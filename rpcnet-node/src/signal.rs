//! Waiting for the signal that ends a node: SIGTERM (what process managers send) or
//! Ctrl-C.

/// Resolves at the first SIGTERM or SIGINT.
pub(crate) async fn terminated() -> Result<(), String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.map_err(|e| format!("Ctrl-C handler: {e}"))?;
    Ok(())
}
