//! `InSpan`: a call's future polled inside its span, if it has one. `tracing::Instrument`
//! needs a `Span` even when there is none to enter; this takes an `Option`, so a call no
//! subscriber traces pays one check a poll and is awaited at the one place it always was.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tracing::Span;

pin_project! {
    /// `inner`, entered into `span` (when there is one) each time it is polled. The span is
    /// borrowed: its owner keeps it open until the call ends.
    pub(crate) struct InSpan<'s, F> {
        span: Option<&'s Span>,
        #[pin]
        inner: F,
    }
}

impl<'s, F> InSpan<'s, F> {
    pub(crate) fn new(span: Option<&'s Span>, inner: F) -> Self {
        Self { span, inner }
    }
}

impl<F: Future> Future for InSpan<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        match this.span {
            Some(span) => {
                let _entered = span.enter();
                this.inner.poll(cx)
            }
            None => this.inner.poll(cx),
        }
    }
}
