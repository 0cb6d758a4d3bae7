//! The span of one call: `rpc.server` around a handler, `rpc.client` around each call
//! attempt, with the OpenTelemetry RPC conventions as fields and the outcome recorded when
//! the call ends. A span no subscriber wants is `None`: a cached check, and nothing else.

use std::fmt;
use std::net::SocketAddr;

use tracing::Span;
use tracing::field::{Empty, display};

use crate::error::{ErrorKind, RpcError};
use crate::metadata::Metadata;

/// The value of `rpc.system` on every rpcnet span.
const RPC_SYSTEM: &str = "rpcnet";

/// A method's wire name (`"Calculator.add"`) split as the conventions want it: the service
/// (`"Calculator"`, none without a dot) and the method (`"add"`).
fn split(method: &str) -> (Option<&str>, &str) {
    match method.rsplit_once('.') {
        Some((service, name)) => (Some(service), name),
        None => (None, method),
    }
}

/// The span name of the conventions, `{rpc.service}/{rpc.method}`, written only if a
/// subscriber records it.
struct SpanName<'a>(&'a str);

impl fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match split(self.0) {
            (Some(service), name) => write!(f, "{service}/{name}"),
            (None, name) => f.write_str(name),
        }
    }
}

/// The span of a call the server serves: `method` as it came on the wire, `local` the
/// server's address (its IP is left out when the server listens on every address: the one
/// the client reached is not known), `peer` the client's. With the `opentelemetry` feature,
/// a trace context in `metadata` becomes the span's parent. `None` if no subscriber wants
/// the span: the call then pays for nothing more (a disabled `Span` still costs its drop,
/// and entering it on every poll).
///
/// Spans are at INFO, like a request log line: a subscriber's usual default filter keeps
/// them, so a trace does not break at a server whose filter says `info`.
// Out of line: the calls' hot paths keep a call and a check, not the macro's expansion.
#[inline(never)]
pub(crate) fn server_span(
    method: &str,
    local: Option<SocketAddr>,
    peer: SocketAddr,
    metadata: &Metadata,
) -> Option<Span> {
    // The fields are evaluated only if the span is enabled.
    let span = tracing::info_span!(
        target: "rpcnet::server",
        "rpc.server",
        otel.name = %SpanName(method),
        otel.kind = "server",
        rpc.system = RPC_SYSTEM,
        rpc.service = split(method).0,
        rpc.method = split(method).1,
        server.address = local.map(|local| local.ip()).filter(|ip| !ip.is_unspecified()).map(display),
        server.port = local.map(|local| local.port()),
        client.address = %peer.ip(),
        client.port = peer.port(),
        otel.status_code = Empty,
        otel.status_description = Empty,
        "error.type" = Empty,
    );
    if span.is_disabled() {
        return forget(span);
    }
    #[cfg(feature = "opentelemetry")]
    super::continue_trace(&span, metadata);
    #[cfg(not(feature = "opentelemetry"))]
    let _ = metadata;
    Some(span)
}

/// The span of one call attempt by a client to the server at `remote`; its parent is the
/// caller's current span (a handler's server span, when a handler calls on). `None` if no
/// subscriber wants it.
#[inline(never)]
pub(crate) fn client_span(method: &str, remote: SocketAddr) -> Option<Span> {
    let span = tracing::info_span!(
        target: "rpcnet::client",
        "rpc.client",
        otel.name = %SpanName(method),
        otel.kind = "client",
        rpc.system = RPC_SYSTEM,
        rpc.service = split(method).0,
        rpc.method = split(method).1,
        server.address = %remote.ip(),
        server.port = remote.port(),
        otel.status_code = Empty,
        otel.status_description = Empty,
        "error.type" = Empty,
    );
    if span.is_disabled() { forget(span) } else { Some(span) }
}

/// No span for a disabled one: it holds nothing (no subscriber knows it), and forgetting it
/// spares its drop, which with tracing's `log` feature checks for a logger (~25 instructions
/// a call, twice).
fn forget(disabled: Span) -> Option<Span> {
    debug_assert!(disabled.is_disabled());
    std::mem::forget(disabled);
    None
}

/// The call succeeded.
pub(crate) fn record_ok(span: Option<&Span>) {
    if let Some(span) = span {
        span.record("otel.status_code", "OK");
    }
}

/// The call failed with `error`: `error.type` is its [`ErrorKind`] (`"timeout"`,
/// `"application_error"`, ...), the status description its message.
pub(crate) fn record_failed(span: Option<&Span>, error: &RpcError) {
    if let Some(span) = span {
        record_error(span, error.kind(), error);
    }
}

/// The client gave up on the call (the server's side of a cancellation).
pub(crate) fn record_cancelled(span: Option<&Span>) {
    if let Some(span) = span {
        record_error(span, ErrorKind::Cancelled, &"the client cancelled the call");
    }
}

/// Records a streaming call's failure to start, and hands the result on: its success is
/// recorded when its responses end ([`traced_stream`](super::traced_stream)).
pub(crate) fn record_failure<T>(span: Option<&Span>, result: Result<T, RpcError>) -> Result<T, RpcError> {
    if let Err(error) = &result {
        record_failed(span, error);
    }
    result
}

/// Records the outcome of a call as its caller sees it, and hands it on.
pub(crate) fn record_result<T>(span: Option<&Span>, result: Result<T, RpcError>) -> Result<T, RpcError> {
    match &result {
        Ok(_) => record_ok(span),
        Err(error) => record_failed(span, error),
    }
    result
}

/// The call failed: an error `kind` and what to say about it.
pub(super) fn record_error(span: &Span, kind: ErrorKind, message: &dyn fmt::Display) {
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", display(message));
    span.record("error.type", kind.as_str());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_service_from_the_method() {
        assert_eq!(split("Calculator.add"), (Some("Calculator"), "add"));
        assert_eq!(split("pkg.Calculator.add"), (Some("pkg.Calculator"), "add"));
        assert_eq!(split("echo"), (None, "echo"));
        assert_eq!(SpanName("Calculator.add").to_string(), "Calculator/add");
        assert_eq!(SpanName("echo").to_string(), "echo");
    }
}
