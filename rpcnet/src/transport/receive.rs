//! The receiving half of a call's stream: chunks read from quinn go into a wire decoder,
//! which owns the protocol's rules. One async loop, `next`, reads until the decoder has
//! something to hand out; everything else is the decoder's synchronous work.

use quinn::{RecvStream, VarInt};

use super::errors::read_error;
use crate::error::RpcError;
use crate::wire::{StreamCode, StreamDecoder, WireError};

/// Why nothing came out of a stream: the decoder refused its bytes, or reading failed.
#[derive(Debug)]
pub(crate) enum ReceiveError {
    /// The bytes broke the protocol.
    Wire(WireError),
    /// The stream or its connection failed.
    Stream(RpcError),
}

impl From<ReceiveError> for RpcError {
    fn from(err: ReceiveError) -> Self {
        match err {
            ReceiveError::Wire(err) => err.into(),
            ReceiveError::Stream(err) => err,
        }
    }
}

/// A quinn receive stream feeding decoder `D`.
#[derive(Debug)]
pub(crate) struct ReceiveHalf<D> {
    recv: RecvStream,
    pub(crate) decoder: D,
    ended: bool,
}

impl<D: StreamDecoder> ReceiveHalf<D> {
    pub(crate) fn new(recv: RecvStream, decoder: D) -> Self {
        Self { recv, decoder, ended: false }
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
                return Ok(item);
            }
            debug_assert!(!self.ended, "bug in rpcnet: a decoder asked for more after the end");
            match self.recv.read_chunk(usize::MAX, true).await.map_err(|e| ReceiveError::Stream(read_error(e)))? {
                Some(chunk) => self.decoder.handle_chunk(chunk.bytes),
                None => {
                    self.ended = true;
                    self.decoder.handle_end();
                }
            }
        }
    }

    /// Tells the peer to stop sending on this stream.
    pub(crate) fn stop(&mut self, code: StreamCode) {
        let _ = self.recv.stop(VarInt::from_u32(code.as_u32()));
    }
}
