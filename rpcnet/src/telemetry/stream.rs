//! The span of a streaming call whose responses outlive the call's start: the response
//! stream carries it, records how the stream ended, and closes it when dropped, so the span
//! lasts as long as the call and not only as long as its handshake.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tracing::Span;

use super::spans::{record_error, record_failed, record_ok};
use crate::error::{ErrorKind, RpcError};
use crate::stream::RpcStream;

/// `responses` carrying `span` to their end; unchanged without a span.
pub(crate) fn traced_stream<T: Send + 'static>(span: Option<Span>, responses: RpcStream<T>) -> RpcStream<T> {
    match span {
        Some(span) => RpcStream::new(Traced { span, responses, ended: false }),
        None => responses,
    }
}

struct Traced<T> {
    span: Span,
    responses: RpcStream<T>,
    /// The outcome is recorded: the stream ended or failed.
    ended: bool,
}

impl<T> Stream for Traced<T> {
    type Item = Result<T, RpcError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = Pin::new(&mut this.responses).poll_next(cx);
        match &next {
            Poll::Ready(Some(Err(error))) if !this.ended => {
                record_failed(Some(&this.span), error);
                this.ended = true;
            }
            Poll::Ready(None) if !this.ended => {
                record_ok(Some(&this.span));
                this.ended = true;
            }
            _ => {}
        }
        next
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.responses.size_hint()
    }
}

impl<T> Drop for Traced<T> {
    fn drop(&mut self) {
        if !self.ended {
            record_error(&self.span, ErrorKind::Cancelled, &"the caller dropped the response stream");
        }
    }
}
