//! quinn's errors on a call's stream or connection, as `RpcError`s that say what happened
//! and whether the request may have run: a lost connection, a reset, a refused handshake
//! (with the TLS alert named).

use quinn::{ConnectionError, ReadError, VarInt, WriteError};

use super::endpoint::SHUTDOWN_CODE;
use crate::error::RpcError;
use crate::wire::StreamCode;

/// A failed read on a call's stream.
pub(crate) fn read_error(err: ReadError) -> RpcError {
    match err {
        ReadError::Reset(code) if code.into_inner() == StreamCode::TimedOut as u64 => RpcError::Timeout,
        ReadError::Reset(code) => RpcError::Cancelled(format!("the peer reset the stream ({})", describe_code(code))),
        ReadError::ConnectionLost(e) => connection_error(e, true),
        ReadError::ClosedStream | ReadError::IllegalOrderedRead => {
            RpcError::Internal(format!("bug in rpcnet: read on a closed stream: {err}"))
        }
        ReadError::ZeroRttRejected => RpcError::Connection("the server rejected early data".into()),
    }
}

/// A failed write on a call's stream.
pub(crate) fn write_error(err: WriteError) -> RpcError {
    match err {
        WriteError::Stopped(code) => {
            RpcError::Cancelled(format!("the peer stopped reading the stream ({})", describe_code(code)))
        }
        WriteError::ConnectionLost(e) => connection_error(e, true),
        WriteError::ClosedStream => RpcError::Internal(format!("bug in rpcnet: write on a closed stream: {err}")),
        WriteError::ZeroRttRejected => RpcError::Connection("the server rejected early data".into()),
    }
}

fn describe_code(code: VarInt) -> &'static str {
    match code.into_inner() {
        c if c == StreamCode::Cancelled as u64 => "cancelled",
        c if c == StreamCode::Protocol as u64 => "protocol violation",
        c if c == StreamCode::Shutdown as u64 => "shutting down",
        c if c == StreamCode::TimedOut as u64 => "timed out",
        _ => "unknown code",
    }
}

/// A connection-level failure. `in_flight` says whether a request may already have been
/// sent, which decides between [`RpcError::ConnectionLost`] and [`RpcError::Connection`].
pub(crate) fn connection_error(err: ConnectionError, in_flight: bool) -> RpcError {
    // TLS alerts travel as QUIC CRYPTO_ERROR codes 0x100 + alert.
    let tls_alert = |code: quinn::TransportErrorCode| {
        let code = u64::from(code);
        (0x100..0x200).contains(&code).then(|| (code - 0x100) as u8)
    };
    match &err {
        ConnectionError::TransportError(e) => {
            if let Some(alert) = tls_alert(e.code) {
                return RpcError::Tls(format!("{} ({})", e.reason, alert_name(alert)));
            }
        }
        ConnectionError::ConnectionClosed(close)
            if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
        {
            return RpcError::Connection(
                "the server refused the connection: it is at its limit of connections (in all, or from this \
                 address), or shutting down"
                    .into(),
            );
        }
        ConnectionError::ConnectionClosed(close) => {
            if let Some(alert) = tls_alert(close.error_code) {
                return RpcError::Tls(format!(
                    "the peer refused the handshake: {} ({})",
                    String::from_utf8_lossy(&close.reason),
                    alert_name(alert)
                ));
            }
        }
        ConnectionError::ApplicationClosed(close) if close.error_code == SHUTDOWN_CODE => {
            let message = format!("the server closed the connection: {}", String::from_utf8_lossy(&close.reason));
            return if in_flight { RpcError::ConnectionLost(message) } else { RpcError::Unavailable(message) };
        }
        ConnectionError::LocallyClosed => {
            let message = "this side closed the connection (RpcClient::close, or its endpoint left the cluster)";
            return if in_flight {
                RpcError::ConnectionLost(message.into())
            } else {
                RpcError::Connection(message.into())
            };
        }
        _ => {}
    }
    if in_flight { RpcError::ConnectionLost(err.to_string()) } else { RpcError::Connection(err.to_string()) }
}

fn alert_name(alert: u8) -> &'static str {
    match alert {
        40 => "handshake failure",
        42 => "bad certificate",
        43 => "unsupported certificate",
        44 => "certificate revoked",
        45 => "certificate expired",
        46 => "certificate unknown",
        48 => "unknown CA: the certificate is not signed by a trusted authority",
        49 => "access denied",
        51 => "decrypt error",
        116 => "certificate required: the server requires a client certificate",
        120 => "no application protocol: the peer does not speak rpcnet",
        _ => "TLS alert",
    }
}
