//! W3C trace context through call metadata (the `opentelemetry` feature): a client writes its
//! span's context as `traceparent` (and `tracestate`), a server reads it back as the parent
//! of its span, so one trace runs through every service a request crosses.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metadata::Metadata;

/// The metadata key of the W3C `traceparent` (version, trace id, parent span id, flags).
pub(crate) const TRACEPARENT: &str = "traceparent";

/// Writes the OpenTelemetry context of `span` (an enabled client span) into `metadata`, replacing any
/// trace context already there. The W3C propagator is used directly, not the one installed
/// globally with `opentelemetry::global::set_text_map_propagator`: rpcnet's wire format is
/// W3C trace context whatever else a program propagates.
pub(crate) fn inject_trace(span: &Span, metadata: &mut Metadata) {
    TraceContextPropagator::new().inject_context(&span.context(), &mut MetadataInjector(metadata));
}

/// Makes the trace context in `metadata`, if there is one, the parent of `span` (a server
/// span, just created and enabled).
pub(crate) fn continue_trace(span: &Span, metadata: &Metadata) {
    if metadata.get_str(TRACEPARENT).is_none() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&MetadataExtractor(metadata));
    // Fails only when no OpenTelemetry layer records the span: then there is no trace to
    // continue, and the span stays as it is.
    let _ = span.set_parent(parent);
}

struct MetadataInjector<'a>(&'a mut Metadata);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes `tracestate` even when it is empty; an empty entry says
        // nothing and costs bytes on the wire.
        if value.is_empty() {
            self.0.remove(key);
            return;
        }
        if let Err(error) = self.0.insert(key, value) {
            tracing::debug!(key, %error, "trace context left out of the call's metadata");
        }
    }
}

struct MetadataExtractor<'a>(&'a Metadata);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get_str(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(key, _)| key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context written by one side reads back the same on the other, and an empty
    /// `tracestate` stays off the wire.
    #[test]
    fn trace_context_round_trips_through_metadata() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut incoming = Metadata::new();
        incoming.insert(TRACEPARENT, traceparent).unwrap();
        let context = TraceContextPropagator::new().extract(&MetadataExtractor(&incoming));

        let mut outgoing = Metadata::new();
        TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(&mut outgoing));
        assert_eq!(outgoing.get_str(TRACEPARENT), Some(traceparent));
        assert_eq!(outgoing.get("tracestate"), None);
        assert_eq!(outgoing.len(), 1);
    }
}
