//! The check a server runs on every call before its handler: the `Authorize` trait (a
//! closure, or an `AccessPolicy` from `access_policy.rs`), `Denied`, its refusal, which the
//! caller receives as `PermissionDenied`, and running the check on one call.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use thiserror::Error;

use super::context::Context;
use crate::error::RpcError;
use crate::wire::StatusCode;

/// A refusal of an [`Authorize`] check: the caller receives
/// [`RpcError::PermissionDenied`] with this message, and the handler does not run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct Denied {
    message: String,
}

impl Denied {
    /// A refusal that tells the caller `message` (keep secrets out of it: the client reads it).
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }

    /// What the caller is told.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Decides whether a call may run, from its [`Context`]: the method, the caller's
/// [`PeerIdentity`](super::PeerIdentity) under mutual TLS, its metadata. Set one on a server with
/// [`RpcServer::set_authorization`](crate::RpcServer::set_authorization); it runs on every
/// call (except the built-in `rpcnet.ping`) once the request head is read, before the call
/// takes a place among the calls in flight and before its request is read. It must be quick
/// and must not block: it runs on the call's task. A panic in it fails the call as
/// [`RpcError::Internal`].
///
/// Any `Fn(&Context) -> Result<(), Denied>` is one. Checks combine by calling one from
/// another, such as an [`AccessPolicy`](super::AccessPolicy) and a rule on metadata:
///
/// ```
/// use rpcnet::server::{AccessPolicy, Authorize, Context, Denied};
/// let policy = AccessPolicy::new().allow_service("Reports", ["analytics"]);
/// let check = move |call: &Context| -> Result<(), Denied> {
///     policy.authorize(call)?;
///     match call.metadata().get_str("tenant") {
///         Some(_) => Ok(()),
///         None => Err(Denied::new("calls to Reports name their tenant")),
///     }
/// };
/// let mut server = rpcnet::RpcServer::new(rpcnet::RpcConfig::dev("127.0.0.1:0"));
/// server.set_authorization(check)?;
/// # Ok::<(), rpcnet::RpcError>(())
/// ```
pub trait Authorize: Send + Sync + 'static {
    /// `Ok` lets the call run; `Err` refuses it with the refusal's message.
    fn authorize(&self, context: &Context) -> Result<(), Denied>;

    /// Checked once, by [`RpcServer::set_authorization`](crate::RpcServer::set_authorization):
    /// an `Err` (an [`RpcError::Config`]) keeps a server from taking a check built from bad
    /// input. Nothing to check by default.
    fn validate(&self) -> Result<(), RpcError> {
        Ok(())
    }
}

impl<F> Authorize for F
where
    F: Fn(&Context) -> Result<(), Denied> + Send + Sync + 'static,
{
    fn authorize(&self, context: &Context) -> Result<(), Denied> {
        self(context)
    }
}

/// The server's check, shared by its calls.
#[derive(Clone)]
pub(crate) struct Authorization(Arc<dyn Authorize>);

impl Authorization {
    pub(crate) fn new(check: impl Authorize) -> Self {
        Self(Arc::new(check))
    }

    /// Runs the check on a call; on refusal, logs it and gives the status to answer with.
    pub(crate) fn refusal(&self, context: &Context) -> Option<(StatusCode, String)> {
        match catch_unwind(AssertUnwindSafe(|| self.0.authorize(context))) {
            Ok(Ok(())) => None,
            Ok(Err(denied)) => {
                tracing::warn!(
                    method = context.method(),
                    peer = %context.peer_address(),
                    subject = context.peer_identity().map(|identity| identity.subject()),
                    reason = denied.message(),
                    "call refused by the access check"
                );
                Some((StatusCode::PermissionDenied, denied.message))
            }
            Err(_) => {
                tracing::error!(method = context.method(), peer = %context.peer_address(), "the access check panicked");
                Some((StatusCode::Internal, "the server's access check failed".to_owned()))
            }
        }
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authorization(..)")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metadata::Metadata;
    use crate::server::peer::Peer;

    fn call(method: &str) -> Context {
        let peer = Peer { address: "127.0.0.1:5000".parse().unwrap(), identity: None };
        Context::new(method.into(), None, Arc::new(peer), Metadata::new())
    }

    #[test]
    fn a_closure_is_a_check_and_a_panicking_check_fails_the_call_as_internal() {
        let only_reads =
            Authorization::new(
                |call: &Context| {
                    if call.method().ends_with(".read") { Ok(()) } else { Err(Denied::new("read-only")) }
                },
            );
        assert_eq!(only_reads.refusal(&call("Svc.read")), None);
        assert_eq!(
            only_reads.refusal(&call("Svc.write")),
            Some((StatusCode::PermissionDenied, "read-only".to_owned()))
        );
        let broken = Authorization::new(|_: &Context| -> Result<(), Denied> { panic!("bug in the check") });
        assert_eq!(broken.refusal(&call("Svc.read")).map(|(code, _)| code), Some(StatusCode::Internal));
    }
}
