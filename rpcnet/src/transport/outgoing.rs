//! Frames on their way out. A small payload is copied behind its header into one buffer
//! (one chunk for quinn); a large one travels uncopied beside its header. Headers and small
//! frames are carved from a per-thread block (`block.rs`), so writing one allocates nothing.

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

    pub(crate) async fn write(self, send: &mut SendStream) -> Result<(), RpcError> {
        match self {
            Self::One(bytes) => send.write_chunk(bytes).await,
            Self::Two(mut chunks) => send.write_all_chunks(&mut chunks).await,
        }
        .map_err(write_error)
    }
}
