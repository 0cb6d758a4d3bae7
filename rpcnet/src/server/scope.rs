//! The scope of one call: its [`Context`] and the response metadata its handler sets, made
//! the task-local value of the handler's future (`tokio::task_local!`), and the accessors
//! ([`Context::current`] and its kin) that find it from anything the handler awaits.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Poll, ready};

use tokio::task::futures::TaskLocalFuture;

use super::context::Context;
use crate::metadata::{Metadata, MetadataError, MetadataValue};
use crate::wire::Limits;

tokio::task_local! {
    static CURRENT: CallScope;
}

/// What one call's handler can reach: its context and the response metadata set so far.
pub(crate) struct CallScope {
    context: Context,
    response: RefCell<Metadata>,
    /// The server's limits, which response metadata must fit as a request head does.
    limits: Limits,
}

impl CallScope {
    pub(crate) fn new(context: Context, limits: Limits) -> Self {
        Self { context, response: RefCell::new(Metadata::new()), limits }
    }

    pub(crate) fn context(&self) -> &Context {
        &self.context
    }

    /// Adds an entry to the response metadata if the whole still fits the limits.
    pub(crate) fn insert_response(&self, key: &str, value: MetadataValue) -> Result<(), MetadataError> {
        let mut candidate = self.response.borrow().clone();
        candidate.insert(key, value)?;
        let (entries, max_entries) = (candidate.len(), usize::from(self.limits.max_metadata_entries));
        if entries > max_entries {
            return Err(MetadataError::OverLimit(format!("{entries} entries, at most {max_entries}")));
        }
        let (len, max_len) = (candidate.wire_len(), usize::from(self.limits.max_head_len));
        if len > max_len {
            return Err(MetadataError::OverLimit(format!("{len} bytes, at most {max_len}")));
        }
        *self.response.borrow_mut() = candidate;
        Ok(())
    }

    /// Runs `call` in this scope; resolves to what `call` returned and the response
    /// metadata still unsent when it ended (the handler wrote no message).
    ///
    /// Boxed with the scope, not around the whole task: the task of every call then stays
    /// under the allocator's 1 KiB fast path, as does this box for a unary handler
    /// (`-Zprint-type-sizes`). A trait object, so a call's future has one place where it
    /// waits for its handler, whatever the route.
    pub(crate) fn run<'a, F: Future + Send + 'a>(self, call: F) -> ScopedCall<'a, F::Output> {
        ScopedCall { scoped: Box::pin(CURRENT.scope(self, call)) }
    }
}

/// A call's handler stage running in its scope (see [`CallScope::run`]).
pub(crate) struct ScopedCall<'a, T> {
    scoped: Pin<Box<dyn InScope<Output = T> + Send + 'a>>,
}

/// A future running in a call's scope, whose unsent response metadata is taken at its end.
trait InScope: Future {
    fn take_unsent(self: Pin<&mut Self>) -> Metadata;
}

impl<F: Future> InScope for TaskLocalFuture<CallScope, F> {
    fn take_unsent(self: Pin<&mut Self>) -> Metadata {
        self.take_value().map(|scope| scope.response.into_inner()).unwrap_or_default()
    }
}

impl<T> Future for ScopedCall<'_, T> {
    type Output = (T, Metadata);

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let output = ready!(self.scoped.as_mut().poll(cx));
        Poll::Ready((output, self.scoped.as_mut().take_unsent()))
    }
}

/// The accessors of the current call's context: they read the scope this module keeps.
impl Context {
    /// The context of the call this task serves, or `None` outside a call (in a task the
    /// handler spawned, for example: pass the context along instead).
    pub fn current() -> Option<Context> {
        with_scope(|scope| scope.context().clone())
    }

    /// Runs `f` on the current call's context without cloning it; `None` outside a call.
    pub fn with_current<R>(f: impl FnOnce(&Context) -> R) -> Option<R> {
        with_scope(|scope| f(scope.context()))
    }

    /// Adds an entry to the current call's response metadata, which goes back with the
    /// response's first frame (so a streaming handler sets it before its first message;
    /// once that is sent, later entries are not). Fails if the entry breaks the rules of
    /// [`Metadata::insert`], if the response metadata would exceed the server's limits
    /// (as many entries and bytes as a request head may carry), or outside a call.
    pub fn insert_response_metadata(key: &str, value: impl Into<MetadataValue>) -> Result<(), MetadataError> {
        let value = value.into();
        with_scope(|scope| scope.insert_response(key, value)).ok_or(MetadataError::OutsideCall)?
    }
}

/// Runs `f` on the scope of the call this task serves; `None` outside one.
pub(crate) fn with_scope<R>(f: impl FnOnce(&CallScope) -> R) -> Option<R> {
    CURRENT.try_with(|scope| f(scope)).ok()
}

/// Whether the current call has response metadata to send (false outside a call).
pub(crate) fn has_response_metadata() -> bool {
    with_scope(|scope| !scope.response.borrow().is_empty()).unwrap_or(false)
}

/// The response metadata set so far in the current call, taken (empty outside a call):
/// the server sends it with its first response frame.
pub(crate) fn take_response_metadata() -> Metadata {
    with_scope(|scope| std::mem::take(&mut *scope.response.borrow_mut())).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::server::peer::Peer;

    fn scope(method: &str) -> CallScope {
        let peer = Arc::new(Peer { address: "127.0.0.1:9".parse().unwrap(), identity: None });
        CallScope::new(Context::new(method.into(), None, peer, Metadata::new()), Limits::default())
    }

    #[tokio::test]
    async fn the_scope_is_current_only_while_its_call_is_polled_and_nested_scopes_restore_the_outer_one() {
        assert!(Context::current().is_none());
        let (method, unsent) = scope("Outer.call")
            .run(async {
                let inner = scope("Inner.call").run(async { Context::current().unwrap().method().to_owned() });
                let (inner_method, _) = inner.await;
                assert_eq!(inner_method, "Inner.call");
                tokio::task::yield_now().await;
                Context::insert_response_metadata("left", "unsent").unwrap();
                Context::current().unwrap().method().to_owned()
            })
            .await;
        assert_eq!(method, "Outer.call", "the outer scope is current again after the inner one ended");
        assert_eq!(unsent.get_str("left"), Some("unsent"), "metadata no message carried comes back");
        assert!(Context::current().is_none(), "nothing is current after the call");
    }

    #[tokio::test]
    async fn a_panicking_handler_leaves_no_scope_behind() {
        let panicked = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
            scope("Panics.call").run(async { panic!("handler bug") }),
        ))
        .await;
        assert!(panicked.is_err());
        assert!(Context::current().is_none());
    }
}
