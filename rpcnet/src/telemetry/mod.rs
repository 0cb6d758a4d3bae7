//! Tracing of calls: one `tracing` span per call on each side, named and filled with the
//! OpenTelemetry semantic conventions for RPC (`spans.rs`), and, behind the `opentelemetry`
//! feature, the W3C trace context carried in the call's metadata (`propagation.rs`).

mod spans;
mod stream;

#[cfg(feature = "opentelemetry")]
mod propagation;

#[cfg(feature = "opentelemetry")]
#[allow(unused_imports)] // the client sends metadata in the next step
pub(crate) use propagation::{continue_trace, inject_trace};
pub(crate) use spans::{
    client_span, record_cancelled, record_failed, record_failure, record_ok, record_result, server_span,
};
pub(crate) use stream::traced_stream;
