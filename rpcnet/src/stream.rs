//! `RpcStream<T>`: the one stream type of rpcnet, for requests and responses of streaming
//! calls, raw (`Vec<u8>`) or typed, in argument or return position.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};

use crate::error::RpcError;

/// A stream of messages of a streaming call: each item is a message or the error that ended
/// the stream.
///
/// Reading is lazy: the next message is read from the network only when polled, so a slow
/// consumer slows the sender down through QUIC flow control (backpressure) instead of
/// filling memory.
///
/// ```
/// use futures::StreamExt;
/// use rpcnet::RpcStream;
/// # futures::executor::block_on(async {
/// let mut numbers = RpcStream::from_iter([1, 2, 3]);
/// let mut sum = 0;
/// while let Some(n) = numbers.next().await {
///     sum += n?;
/// }
/// assert_eq!(sum, 6);
/// # Ok::<(), rpcnet::RpcError>(()) });
/// ```
pub struct RpcStream<T> {
    inner: Pin<Box<dyn Stream<Item = Result<T, RpcError>> + Send + 'static>>,
}

impl<T: Send + 'static> RpcStream<T> {
    /// Wraps a stream of results: an `Err` item ends the call with that error.
    pub fn new<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<T, RpcError>> + Send + 'static,
    {
        Self { inner: Box::pin(stream) }
    }

    /// Wraps a stream of plain messages, none of which fails.
    pub fn from_stream<S>(stream: S) -> Self
    where
        S: Stream<Item = T> + Send + 'static,
    {
        Self::new(stream.map(Ok))
    }

    /// A stream of the given messages.
    // Not `FromIterator`: this keeps the iterator lazy instead of collecting it to be `Send`.
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I>(items: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Self::from_stream(futures::stream::iter(items))
    }

    /// A stream with no messages.
    pub fn empty() -> Self {
        Self::new(futures::stream::empty())
    }

    /// A stream that fails at once with `error`.
    pub fn error(error: RpcError) -> Self {
        Self::new(futures::stream::once(async move { Err(error) }))
    }

    /// Maps each message, keeping errors.
    pub fn map_messages<U, F>(self, mut f: F) -> RpcStream<U>
    where
        U: Send + 'static,
        F: FnMut(T) -> Result<U, RpcError> + Send + 'static,
    {
        RpcStream::new(self.inner.map(move |item| item.and_then(&mut f)))
    }

    /// Reads every message into a vector, failing on the first error.
    pub async fn collect_messages(mut self) -> Result<Vec<T>, RpcError> {
        let mut out = Vec::new();
        while let Some(item) = self.inner.next().await {
            out.push(item?);
        }
        Ok(out)
    }
}

impl<T> Stream for RpcStream<T> {
    type Item = Result<T, RpcError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<T> fmt::Debug for RpcStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcStream").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_pass_through_map_and_stop_collect() {
        futures::executor::block_on(async {
            let stream = RpcStream::new(futures::stream::iter([Ok(1), Err(RpcError::Timeout), Ok(3)]));
            let doubled = stream.map_messages(|n| Ok(n * 2));
            let err = doubled.collect_messages().await.unwrap_err();
            assert!(matches!(err, RpcError::Timeout), "the first error must end collection");
            let all = RpcStream::from_iter(vec![1, 2]).collect_messages().await.unwrap();
            assert_eq!(all, vec![1, 2]);
            assert!(RpcStream::<u8>::empty().collect_messages().await.unwrap().is_empty());
        });
    }
}
