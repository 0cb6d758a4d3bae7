//! `RpcError`, the one error type of every call, its coarse `ErrorKind`, and
//! `ServiceError`, a handler's own error.

use std::fmt;

use thiserror::Error;

use crate::codec::CodecError;
use crate::wire::{StatusCode, WireError};

/// Everything that can go wrong with a call, told apart so callers branch on the variant
/// instead of parsing text.
///
/// ```
/// use rpcnet::RpcError;
/// fn should_fail_over(err: &RpcError) -> bool {
///     // The call certainly did not run: try another server.
///     err.is_retry_safe()
/// }
/// assert!(should_fail_over(&RpcError::Overloaded("busy".into())));
/// assert!(!should_fail_over(&RpcError::Timeout));
/// ```
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum RpcError {
    /// No connection could be made, or the call could not be started on it; the request
    /// was not sent. Check the address and that the server runs; safe to retry.
    #[error("connection failed: {0}")]
    Connection(String),
    /// The connection was lost while the call was in flight: the server may or may not have
    /// run it. Retry only calls that are safe to repeat.
    #[error("connection lost during the call: {0}")]
    ConnectionLost(String),
    /// The TLS handshake failed: the server's certificate is not trusted, or the server
    /// refused the client's certificate (or its absence, when mutual TLS is required).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The configuration is unusable (missing or unreadable certificate, value out of range).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The call's deadline passed. Raise it per call or with `RpcConfig::with_default_timeout`.
    #[error("deadline exceeded")]
    Timeout,
    /// The call was cancelled by the peer or by shutdown.
    #[error("call cancelled: {0}")]
    Cancelled(String),
    /// The server has no handler for this method name.
    #[error("unknown method `{0}`: no handler is registered under this name on the server")]
    UnknownMethod(String),
    /// A message could not be encoded or decoded (type mismatch, size limit of the codec).
    #[error("codec error: {0}")]
    Codec(String),
    /// A peer broke the wire protocol (malformed head or frame, wrong call kind, version).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A frame was larger than the receiver accepts. Raise `RpcConfig::with_max_frame_size`
    /// on both sides, or stream the data in smaller messages.
    #[error("frame too large: {0}")]
    FrameTooLarge(String),
    /// A bound was hit (calls in flight on the server, or every endpoint at its cap): the
    /// call was refused before it ran. Safe to retry later or elsewhere.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// The server is shutting down and did not start the call. Safe to retry elsewhere.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The server's access policy refused this client the method (see
    /// [`AccessPolicy`](crate::server::AccessPolicy)); the handler did not run. Not retry-safe:
    /// another server with the same policy refuses it too. The message names the method and
    /// why; grant the client's certificate name access on the server, or call with another
    /// identity.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// No endpoint can take the call: none is known, or none matches the filter or is healthy.
    #[error("{}", no_endpoint_message(.filter.as_deref(), *.known, *.healthy))]
    NoEndpointAvailable {
        /// The tag filter the selection used, if any.
        filter: Option<String>,
        /// Endpoints known to the client.
        known: usize,
        /// Of those, how many matched the filter and were eligible.
        healthy: usize,
    },
    /// A [`Balancer`](crate::balance::Balancer) returned an index outside the endpoints it
    /// was given: a bug in that balancer, whose `pick` must return an index below
    /// `endpoints.len()` (or `None` to pick nothing). The call was not sent.
    #[error(
        "the balancer picked endpoint {index} of {endpoints}: a bug in its `Balancer::pick`, which must return \
         an index below `endpoints.len()` (or `None`)"
    )]
    InvalidPick {
        /// The index the balancer returned.
        index: usize,
        /// How many endpoints it was given.
        endpoints: usize,
    },
    /// The handler's own error, carried through unchanged.
    #[error(transparent)]
    Service(ServiceError),
    /// The handler failed unexpectedly (it panicked); the server and connection live on.
    #[error("internal server error: {0}")]
    Internal(String),
}

fn no_endpoint_message(filter: Option<&str>, known: usize, healthy: usize) -> String {
    match filter {
        Some(filter) => {
            format!("no endpoint matches `{filter}` ({known} known, {healthy} eligible)")
        }
        None => format!("no endpoint available ({known} known, {healthy} eligible)"),
    }
}

/// What kind of failure an [`RpcError`] is, coarser than its variants: for code that
/// branches on a few cases (retry elsewhere, give up, report) and for metrics labels.
/// `RpcError` has the detail; this is the rpcnet 0.1 book's `e.kind()`.
///
/// ```
/// use rpcnet::{ErrorKind, RpcError};
/// let err = RpcError::ConnectionLost("reset".into());
/// match err.kind() {
///     ErrorKind::ConnectionFailed => { /* the server may be gone: try another */ }
///     ErrorKind::Timeout => { /* took too long */ }
///     _ => { /* the rest */ }
/// }
/// assert_eq!(err.kind().as_str(), "connection_failed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No connection, a lost one, or a failed TLS handshake ([`RpcError::Connection`],
    /// [`ConnectionLost`](RpcError::ConnectionLost), [`Tls`](RpcError::Tls)).
    ConnectionFailed,
    /// The deadline passed ([`RpcError::Timeout`]).
    Timeout,
    /// Cancelled by the caller, the peer or shutdown ([`RpcError::Cancelled`]).
    Cancelled,
    /// A message could not be encoded or decoded ([`RpcError::Codec`]).
    SerializationError,
    /// The handler's own error, or a handler that panicked ([`RpcError::Service`],
    /// [`Internal`](RpcError::Internal)).
    ApplicationError,
    /// Refused before it ran: overloaded, shutting down, or no endpoint
    /// ([`RpcError::Overloaded`], [`Unavailable`](RpcError::Unavailable),
    /// [`NoEndpointAvailable`](RpcError::NoEndpointAvailable)).
    Unavailable,
    /// The peers disagree on the protocol: unknown method, malformed data, a frame too large
    /// ([`RpcError::UnknownMethod`], [`Protocol`](RpcError::Protocol),
    /// [`FrameTooLarge`](RpcError::FrameTooLarge)).
    Protocol,
    /// A mistake on this side: configuration, or a balancer that picked no endpoint it was
    /// given ([`RpcError::Config`], [`InvalidPick`](RpcError::InvalidPick)).
    Configuration,
    /// The server refused this client the method ([`RpcError::PermissionDenied`]).
    PermissionDenied,
}

impl ErrorKind {
    /// A short lowercase name (`"connection_failed"`), for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionFailed => "connection_failed",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::SerializationError => "serialization_error",
            Self::ApplicationError => "application_error",
            Self::Unavailable => "unavailable",
            Self::Protocol => "protocol",
            Self::Configuration => "configuration",
            Self::PermissionDenied => "permission_denied",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RpcError {
    /// What kind of failure this is; see [`ErrorKind`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Connection(_) | Self::ConnectionLost(_) | Self::Tls(_) => ErrorKind::ConnectionFailed,
            Self::Timeout => ErrorKind::Timeout,
            Self::Cancelled(_) => ErrorKind::Cancelled,
            Self::Codec(_) => ErrorKind::SerializationError,
            Self::Service(_) | Self::Internal(_) => ErrorKind::ApplicationError,
            Self::Overloaded(_) | Self::Unavailable(_) | Self::NoEndpointAvailable { .. } => ErrorKind::Unavailable,
            Self::UnknownMethod(_) | Self::Protocol(_) | Self::FrameTooLarge(_) => ErrorKind::Protocol,
            Self::Config(_) | Self::InvalidPick { .. } => ErrorKind::Configuration,
            Self::PermissionDenied(_) => ErrorKind::PermissionDenied,
        }
    }

    /// Wraps a handler's own error payload (already encoded) as a service error.
    pub fn service(payload: impl Into<Vec<u8>>) -> Self {
        Self::Service(ServiceError { payload: payload.into() })
    }

    /// True when the call certainly did not run on a server, so it may go to another one
    /// whatever the method does: the request was never sent, or the server refused it
    /// before starting the handler. A handler that returns `Overloaded` or `Unavailable`
    /// itself says the same of its call, so return those only for work not done.
    pub fn is_retry_safe(&self) -> bool {
        matches!(self, Self::Connection(_) | Self::Overloaded(_) | Self::Unavailable(_))
    }

    /// The status code the server writes for this error, and whether it is a service error.
    pub(crate) fn status_code(&self) -> StatusCode {
        match self {
            Self::UnknownMethod(_) => StatusCode::UnknownMethod,
            Self::Timeout => StatusCode::DeadlineExceeded,
            Self::Cancelled(_) => StatusCode::Cancelled,
            Self::Codec(_) => StatusCode::Codec,
            Self::Protocol(_) => StatusCode::Protocol,
            Self::FrameTooLarge(_) => StatusCode::FrameTooLarge,
            Self::Overloaded(_) | Self::NoEndpointAvailable { .. } => StatusCode::Overloaded,
            Self::Unavailable(_) => StatusCode::Unavailable,
            Self::PermissionDenied(_) => StatusCode::PermissionDenied,
            Self::Connection(_)
            | Self::ConnectionLost(_)
            | Self::Tls(_)
            | Self::Config(_)
            | Self::Service(_)
            | Self::InvalidPick { .. }
            | Self::Internal(_) => StatusCode::Internal,
        }
    }

    /// Rebuilds the error a server sent in a STATUS frame.
    pub(crate) fn from_status(code: u16, message: &str) -> Self {
        let message = message.to_owned();
        match StatusCode::from_u16(code) {
            Some(StatusCode::UnknownMethod) => Self::UnknownMethod(message),
            Some(StatusCode::DeadlineExceeded) => Self::Timeout,
            Some(StatusCode::Cancelled) => Self::Cancelled(message),
            Some(StatusCode::Codec) => Self::Codec(message),
            Some(StatusCode::Protocol | StatusCode::UnsupportedVersion) => Self::Protocol(message),
            Some(StatusCode::FrameTooLarge) => Self::FrameTooLarge(message),
            Some(StatusCode::Overloaded) => Self::Overloaded(message),
            Some(StatusCode::Unavailable) => Self::Unavailable(message),
            Some(StatusCode::Internal) => Self::Internal(message),
            Some(StatusCode::PermissionDenied) => Self::PermissionDenied(message),
            None => Self::Internal(format!("unknown status code {code}: {message}")),
        }
    }

    /// The message the server writes next to the code (the variant itself is the code).
    pub(crate) fn status_message(&self) -> String {
        match self {
            Self::UnknownMethod(method) => method.clone(),
            Self::Cancelled(m)
            | Self::Codec(m)
            | Self::Protocol(m)
            | Self::FrameTooLarge(m)
            | Self::Overloaded(m)
            | Self::Unavailable(m)
            | Self::PermissionDenied(m)
            | Self::Internal(m) => m.clone(),
            other => other.to_string(),
        }
    }
}

impl RpcError {
    /// A tower layer's error as the caller will see it: an [`RpcError`] as it is, tower's
    /// timeout as [`RpcError::Timeout`], tower's load shedding as [`RpcError::Overloaded`]
    /// (retry-safe: the call did not run), anything else as [`RpcError::Internal`] with its
    /// message. `side`: `"client"` or `"server"`, for the message.
    pub(crate) fn from_layer(err: tower::BoxError, side: &str) -> Self {
        match err.downcast::<RpcError>() {
            Ok(err) => *err,
            Err(err) if err.is::<tower::timeout::error::Elapsed>() => Self::Timeout,
            Err(err) if err.is::<tower::load_shed::error::Overloaded>() => {
                Self::Overloaded(format!("a {side} layer shed the call: {err}"))
            }
            Err(err) => Self::Internal(format!("a {side} layer failed the call: {err}")),
        }
    }
}

impl From<WireError> for RpcError {
    fn from(err: WireError) -> Self {
        match err {
            WireError::FrameTooLarge { .. } => Self::FrameTooLarge(err.to_string()),
            other => Self::Protocol(other.to_string()),
        }
    }
}

impl From<CodecError> for RpcError {
    fn from(err: CodecError) -> Self {
        Self::Codec(err.to_string())
    }
}

/// A handler's own error: bytes the service encoded, carried to the caller unchanged in a
/// SERVICE_ERROR frame. Typed clients decode it back into the service's error type.
#[derive(Clone, PartialEq, Eq, Error)]
pub struct ServiceError {
    /// The encoded error, as the handler produced it.
    pub payload: Vec<u8>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.payload) {
            Ok(text) => write!(f, "service error: {text}"),
            Err(_) => write!(f, "service error ({} bytes)", self.payload.len()),
        }
    }
}

impl fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceError({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_error_survives_the_wire() {
        let errors = [
            RpcError::UnknownMethod("Calc.nope".into()),
            RpcError::Timeout,
            RpcError::Cancelled("peer gone".into()),
            RpcError::Codec("bad".into()),
            RpcError::Protocol("bad".into()),
            RpcError::FrameTooLarge("big".into()),
            RpcError::Overloaded("busy".into()),
            RpcError::Unavailable("closing".into()),
            RpcError::PermissionDenied("not for you".into()),
            RpcError::Internal("panic".into()),
        ];
        for err in errors {
            let back = RpcError::from_status(err.status_code() as u16, &err.status_message());
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&err),
                "{err:?} must come back as the same variant"
            );
        }
    }

    #[test]
    fn messages_name_the_filter_and_counts() {
        let err = RpcError::NoEndpointAvailable { filter: Some("role=worker".into()), known: 3, healthy: 0 };
        assert_eq!(err.to_string(), "no endpoint matches `role=worker` (3 known, 0 eligible)");
    }

    #[test]
    fn service_error_shows_text_payloads() {
        assert_eq!(RpcError::service("out of stock").to_string(), "service error: out of stock");
        assert_eq!(RpcError::service(vec![0xff, 0]).to_string(), "service error (2 bytes)");
    }

    #[test]
    fn only_calls_that_never_ran_are_retry_safe() {
        assert!(RpcError::Connection("refused".into()).is_retry_safe());
        assert!(RpcError::Unavailable("shutting down".into()).is_retry_safe());
        assert!(!RpcError::ConnectionLost("reset".into()).is_retry_safe());
        assert!(!RpcError::service("x").is_retry_safe());
        assert!(!RpcError::PermissionDenied("no".into()).is_retry_safe(), "another server refuses it too");
    }

    #[test]
    fn a_refusal_of_the_access_policy_has_a_kind_of_its_own() {
        let err = RpcError::PermissionDenied("`Svc.write` refused".into());
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert_eq!(err.kind().as_str(), "permission_denied");
        assert_eq!(err.to_string(), "permission denied: `Svc.write` refused");
    }
}
