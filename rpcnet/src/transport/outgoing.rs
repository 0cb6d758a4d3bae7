//! Frames on their way out. A small payload is copied behind its header into one buffer
//! (one chunk for quinn); a large one travels uncopied beside its header. Headers and small
//! frames are carved from a per-thread block (`block.rs`), so writing one allocates nothing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use quinn::SendStream;

use super::block::carve;
use super::write_error;
use crate::RpcError;

/// Largest payload copied behind its header; above this a copy costs more than the second
/// chunk does.
const COALESCE_MAX: usize = 4 * 1024;

/// Bytes ready for one write on a call's stream.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Prefix and payload in one buffer.
    One(Bytes),
    /// Prefix, then the payload as it was handed over.
    Two([Bytes; 2]),
}

impl Outgoing {
    /// `prefix` writes what goes before the payload (version byte, head, frame header), at
    /// most `prefix_len` bytes.
    pub(crate) fn new(prefix_len: usize, prefix: impl FnOnce(&mut BytesMut), payload: Bytes) -> Self {
        if payload.len() <= COALESCE_MAX {
            Self::One(carve(prefix_len + payload.len(), |buf| {
                prefix(buf);
                buf.extend_from_slice(&payload);
            }))
        } else {
            Self::Two([carve(prefix_len, prefix), payload])
        }
    }

    /// Writes every byte; see [`WriteAll`].
    pub(crate) fn write(self, send: &mut SendStream) -> WriteAll<'_> {
        let (chunks, end) = match self {
            Self::One(bytes) => ([bytes, Bytes::new()], 1),
            Self::Two(chunks) => (chunks, 2),
        };
        WriteAll { send, chunks, start: 0, end }
    }
}

/// The future of [`Outgoing::write`]: quinn's `write_chunks` polled afresh until every chunk
/// is written. A plain future rather than `write_chunk` or an `async fn`: those are several
/// times larger, and the state of every call carries this one. `write_chunks` writes nothing
/// unless it completes, so making it anew at each poll loses nothing.
#[derive(Debug)]
pub(crate) struct WriteAll<'a> {
    send: &'a mut SendStream,
    chunks: [Bytes; 2],
    start: usize,
    end: usize,
}

impl Future for WriteAll<'_> {
    type Output = Result<(), RpcError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        while this.start < this.end {
            let write = this.send.write_chunks(&mut this.chunks[this.start..this.end]);
            let written = ready!(std::pin::pin!(write).poll(cx)).map_err(write_error)?;
            this.start += written.chunks;
        }
        Poll::Ready(Ok(()))
    }
}
