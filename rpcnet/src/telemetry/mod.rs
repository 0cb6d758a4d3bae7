//! Tracing of calls: a `tracing` span per call on each side with the OpenTelemetry RPC
//! conventions (`spans.rs`), entered around a handler (`instrument.rs`) or carried by a
//! response stream (`stream.rs`); the W3C trace context in metadata (`propagation.rs`).

mod instrument;
mod spans;
mod stream;

#[cfg(feature = "opentelemetry")]
mod propagation;

use std::borrow::Cow;

use tracing::Span;

use crate::metadata::Metadata;

pub(crate) use instrument::InSpan;
#[cfg(feature = "opentelemetry")]
pub(crate) use propagation::continue_trace;
pub(crate) use spans::{
    client_span, record_cancelled, record_failed, record_failure, record_ok, record_result, server_span,
};
pub(crate) use stream::traced_stream;

/// The metadata a call under `span` sends: the caller's `metadata`, and, with the
/// `opentelemetry` feature, the span's trace context. Borrowed as it is without the feature
/// or without a span.
pub(crate) fn outgoing_metadata<'a>(span: Option<&Span>, metadata: Option<&'a Metadata>) -> Option<Cow<'a, Metadata>> {
    #[cfg(feature = "opentelemetry")]
    if let Some(span) = span {
        let mut traced = metadata.cloned().unwrap_or_default();
        propagation::inject_trace(span, &mut traced);
        return Some(Cow::Owned(traced));
    }
    #[cfg(not(feature = "opentelemetry"))]
    let _ = span;
    metadata.map(Cow::Borrowed)
}
