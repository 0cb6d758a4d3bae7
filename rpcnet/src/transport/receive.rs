//! The receiving half of a call's stream: chunks read from quinn go into a wire decoder,
//! which owns the protocol's rules. One async loop, `next`, reads until the decoder has
//! something to hand out; the bounds a server puts on a connection's partial frames and on
//! a stalled frame are kept here too.

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use quinn::{RecvStream, VarInt};
use tokio::sync::Semaphore;

use super::errors::read_error;
use crate::error::RpcError;
use crate::wire::{StreamCode, StreamDecoder, WireError};

/// Largest chunk read while the size of the frame being received is not known yet: quinn's
/// chunks are single STREAM frames and rarely reach it, so it costs nothing, and it bounds
/// what one stream can hold beyond its reservation.
pub(crate) const UNRESERVED_READ: usize = 64 * 1024;

/// Why nothing came out of a stream: the decoder refused its bytes, or reading failed.
#[derive(Debug)]
pub(crate) enum ReceiveError {
    /// The bytes broke the protocol.
    Wire(WireError),
    /// The stream or its connection failed.
    Stream(RpcError),
    /// The peer sent part of a frame and then nothing more for this long.
    Stalled(Duration),
}

impl From<ReceiveError> for RpcError {
    fn from(err: ReceiveError) -> Self {
        match err {
            ReceiveError::Wire(err) => err.into(),
            ReceiveError::Stream(err) => err,
            ReceiveError::Stalled(_) => RpcError::Timeout,
        }
    }
}

/// The bytes of partly received frames that the streams of one connection may hold
/// together. A stream reserves a frame's whole length once its header is in, all at once
/// and in turn, so streams that wait hold nothing and the ones holding always progress.
#[derive(Debug, Clone)]
pub(crate) struct FrameBudget(Arc<Semaphore>);

impl FrameBudget {
    /// A budget of `bytes`; it must be at least the largest frame (header included), or
    /// such a frame would wait forever.
    pub(crate) fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }
}

/// The bounds a server puts on a stream it reads: the connection's budget for partial
/// frames, and how long a started frame may go without a byte.
#[derive(Debug, Clone)]
pub(crate) struct ReadBounds {
    pub(crate) budget: FrameBudget,
    pub(crate) stall: Duration,
}

/// A quinn receive stream feeding decoder `D`.
#[derive(Debug)]
pub(crate) struct ReceiveHalf<D> {
    recv: RecvStream,
    pub(crate) decoder: D,
    ended: bool,
    bounds: Option<ReadBounds>,
    /// Bytes of `bounds.budget` this stream holds.
    reserved: usize,
}

impl<D: StreamDecoder> ReceiveHalf<D> {
    /// A stream read without bounds of its own (a client's: its calls have deadlines).
    pub(crate) fn new(recv: RecvStream, decoder: D) -> Self {
        Self { recv, decoder, ended: false, bounds: None, reserved: 0 }
    }

    /// A stream read within `bounds`.
    pub(crate) fn bounded(recv: RecvStream, decoder: D, bounds: ReadBounds) -> Self {
        Self { recv, decoder, ended: false, bounds: Some(bounds), reserved: 0 }
    }

    /// What `poll` takes out of the decoder, reading chunks (waiting for them) until it
    /// has something. The decoders answer every poll once they know of the end, so this
    /// never reads past the end of the stream.
    pub(crate) async fn next<T>(
        &mut self,
        mut poll: impl FnMut(&mut D) -> Result<Option<T>, WireError>,
    ) -> Result<T, ReceiveError> {
        loop {
            if let Some(item) = poll(&mut self.decoder).map_err(ReceiveError::Wire)? {
                self.release_beyond(self.decoder.buffered());
                return Ok(item);
            }
            debug_assert!(!self.ended, "bug in rpcnet: a decoder asked for more after the end");
            // Between frames (a call's first read, above all) a bounded stream reads as an
            // unbounded one does, but no more than a reservation-free chunk.
            let read = match &self.bounds {
                None => self.recv.read_chunk(usize::MAX, true).await,
                Some(_) if self.decoder.buffered() == 0 => self.recv.read_chunk(UNRESERVED_READ, true).await,
                Some(_) => self.bounded_read().await?,
            };
            match read.map_err(|e| ReceiveError::Stream(read_error(e)))? {
                Some(chunk) => self.decoder.handle_chunk(chunk.bytes),
                None => {
                    self.ended = true;
                    self.decoder.handle_end();
                }
            }
        }
    }

    /// One read inside a frame (or a head) within the bounds: a frame under way is
    /// reserved whole first, reads stop at its end, and one that gets no byte for `stall`
    /// (waiting for the budget included: under attack, the streams waiting for it are the
    /// stalled ones) ends the call.
    async fn bounded_read(&mut self) -> Result<Result<Option<quinn::Chunk>, quinn::ReadError>, ReceiveError> {
        let buffered = self.decoder.buffered();
        debug_assert!(buffered > 0, "bug in rpcnet: a read between frames takes the plain path");
        let frame = self.decoder.frame_in_progress().filter(|&frame| frame > buffered);
        let bounds = self.bounds.as_ref().expect("bug in rpcnet: a bounded read without bounds");
        let (recv, reserved, stall) = (&mut self.recv, &mut self.reserved, bounds.stall);
        let read = async move {
            let Some(frame) = frame else { return recv.read_chunk(UNRESERVED_READ, true).await };
            if frame > *reserved {
                let more = u32::try_from(frame - *reserved).expect("frames are smaller than 4 GiB");
                // All at once, in turn: a stream waiting here holds none of the budget.
                bounds.budget.0.acquire_many(more).await.expect("the budget is never closed").forget();
                *reserved = frame;
            }
            recv.read_chunk(frame - buffered, true).await
        };
        let mut read = std::pin::pin!(read);
        // The stall timer is armed only if the rest of the frame is late.
        if let Poll::Ready(read) = futures::poll!(read.as_mut()) {
            return Ok(read);
        }
        tokio::time::timeout(stall, read).await.map_err(|_| ReceiveError::Stalled(stall))
    }

    /// Gives back what this stream reserved beyond `keep` bytes.
    fn release_beyond(&mut self, keep: usize) {
        if self.reserved > keep {
            if let Some(bounds) = &self.bounds {
                bounds.budget.0.add_permits(self.reserved - keep);
            }
            self.reserved = keep;
        }
    }

    /// Tells the peer to stop sending on this stream.
    pub(crate) fn stop(&mut self, code: StreamCode) {
        let _ = self.recv.stop(VarInt::from_u32(code.as_u32()));
    }
}

impl<D> Drop for ReceiveHalf<D> {
    fn drop(&mut self) {
        if let (Some(bounds), reserved @ 1..) = (&self.bounds, self.reserved) {
            bounds.budget.0.add_permits(reserved);
        }
    }
}
