//! `RequestStream`: the requests of a streaming call as raw-bytes handlers read them, each
//! a plain `Vec<u8>`. The error that ends them early is not lost: the handler can ask for
//! it, and the call fails with it whatever the handler answers afterwards.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::error::RpcError;
use crate::stream::RpcStream;

/// The requests of a streaming call, for handlers registered with
/// [`RpcServer::register_streaming`](crate::RpcServer::register_streaming) and
/// [`register_client_streaming`](crate::RpcServer::register_client_streaming).
///
/// Each item is one request message. The stream ends when the client finishes its
/// requests, or at the first error reading them (the client reset its half, a frame broke
/// the protocol or a limit, a frame stalled). After an error, [`error`](Self::error) says
/// which, and the call fails with that error: the server sends the caller that error
/// instead of whatever the handler answers from then on, so a cut-off upload is never
/// acknowledged as if it were whole. A handler with side effects (committing a batch)
/// should check [`error`](Self::error) before making them.
///
/// ```
/// use futures::StreamExt;
/// use rpcnet::{RpcConfig, RpcServer};
/// # async fn demo() {
/// let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
/// server
///     .register_client_streaming("count_bytes", |mut requests| async move {
///         let mut total = 0usize;
///         while let Some(request) = requests.next().await {
///             total += request.len();
///         }
///         if let Some(err) = requests.error() {
///             // The upload was cut off: nothing is committed, and the caller gets `err`.
///             return Err(err.clone());
///         }
///         Ok(total.to_le_bytes().to_vec())
///     })
///     .await;
/// # }
/// ```
pub struct RequestStream {
    /// `None` once the requests have ended, cleanly or not.
    requests: Option<RpcStream<Vec<u8>>>,
    failure: Arc<OnceLock<RpcError>>,
}

impl fmt::Debug for RequestStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestStream")
            .field("ended", &self.requests.is_none())
            .field("error", &self.failure.get())
            .finish()
    }
}

impl RequestStream {
    /// The requests, and the handle through which the server learns of their error.
    pub(crate) fn new(requests: RpcStream<Vec<u8>>) -> (Self, RequestFailure) {
        let failure = Arc::new(OnceLock::new());
        (Self { requests: Some(requests), failure: failure.clone() }, RequestFailure(failure))
    }

    /// The error that ended the requests before the client finished them, if one did.
    pub fn error(&self) -> Option<&RpcError> {
        self.failure.get()
    }
}

impl Stream for RequestStream {
    type Item = Vec<u8>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        let Some(requests) = self.requests.as_mut() else { return Poll::Ready(None) };
        match ready!(requests.poll_next_unpin(cx)) {
            Some(Ok(request)) => Poll::Ready(Some(request)),
            Some(Err(err)) => {
                tracing::debug!(error = %err, "the requests of a streaming call ended with an error");
                let _ = self.failure.set(err);
                self.requests = None;
                Poll::Ready(None)
            }
            None => {
                self.requests = None;
                Poll::Ready(None)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.requests {
            Some(requests) => (0, requests.size_hint().1),
            None => (0, Some(0)),
        }
    }
}

/// The server's side of a [`RequestStream`]: what the call fails with if the requests broke.
pub(crate) struct RequestFailure(Arc<OnceLock<RpcError>>);

impl RequestFailure {
    /// `Err` with the requests' error, if they ended with one.
    pub(crate) fn check(&self) -> Result<(), RpcError> {
        match self.0.get() {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// The handler's responses, ready to write, up to the requests' error: once that is
    /// set, the next response (or the end) is replaced by it and the stream ends.
    pub(crate) fn responses<S>(self, responses: S) -> RpcStream<Bytes>
    where
        S: Stream<Item = Result<Vec<u8>, RpcError>> + Send + 'static,
    {
        let responses = Box::pin(responses);
        RpcStream::new(futures::stream::unfold(Some((responses, self)), |state| async move {
            let (mut responses, failure) = state?;
            let next = responses.next().await;
            if let Err(err) = failure.check() {
                return Some((Err(err), None));
            }
            let next = next?;
            Some((next.map(Bytes::from), Some((responses, failure))))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_ends_the_requests_and_replaces_what_the_handler_answers_next() {
        futures::executor::block_on(async {
            let broken = RpcStream::new(futures::stream::iter([
                Ok(b"a".to_vec()),
                Err(RpcError::Protocol("cut".into())),
                Ok(b"never".to_vec()),
            ]));
            let (mut requests, failure) = RequestStream::new(broken);
            assert_eq!(requests.next().await, Some(b"a".to_vec()));
            assert!(requests.error().is_none(), "no error before it happens");
            assert_eq!(requests.next().await, None, "the error ends the requests");
            assert_eq!(requests.next().await, None, "and they stay ended");
            assert!(matches!(requests.error(), Some(RpcError::Protocol(m)) if m == "cut"));
            let answers = failure.responses(futures::stream::iter([Ok(b"accepted 1".to_vec())]));
            let answers: Vec<_> = answers.collect().await;
            assert_eq!(answers.len(), 1, "one item: the error instead of the answer");
            assert!(matches!(&answers[0], Err(RpcError::Protocol(m)) if m == "cut"), "got {answers:?}");
        });
    }

    #[test]
    fn clean_requests_leave_the_answers_alone() {
        futures::executor::block_on(async {
            let (requests, failure) = RequestStream::new(RpcStream::from_iter([b"x".to_vec(), b"y".to_vec()]));
            assert_eq!(requests.collect::<Vec<_>>().await, vec![b"x".to_vec(), b"y".to_vec()]);
            failure.check().expect("no error");
            let answers = failure.responses(futures::stream::iter([Ok(b"1".to_vec()), Ok(b"2".to_vec())]));
            let answers: Vec<_> = answers.map(|a| a.unwrap()).collect().await;
            assert_eq!(answers, vec![Bytes::from_static(b"1"), Bytes::from_static(b"2")]);
        });
    }
}
