//! Per-thread blocks that small buffers are carved from: frame headers, small frames and
//! encoded messages. The carved bytes share their block's allocation (reference counted),
//! so writing one costs no `malloc`, which matters when many calls are in flight at once.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

/// Size of the per-thread blocks frames are carved from.
const BLOCK_SIZE: usize = 64 * 1024;

thread_local! {
    /// The unused rest of this thread's current block.
    static BLOCK: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Writes at most `len` bytes with `write` into a buffer carved from this thread's block.
///
/// The block is freed once every buffer carved from it is dropped (quinn drops a frame when
/// the peer acknowledged it). With many calls in flight this replaces a `malloc`/`free` pair
/// per buffer, which the allocator's per-thread cache cannot absorb, by one per block.
pub(crate) fn carve(len: usize, write: impl FnOnce(&mut BytesMut)) -> Bytes {
    BLOCK.with(|block| {
        let mut block = block.borrow_mut();
        if block.capacity() < len {
            *block = BytesMut::with_capacity(BLOCK_SIZE.max(len));
        }
        write(&mut block);
        block.split().freeze()
    })
}

/// Like [`carve`], for writes whose length is not known in advance: the buffer grows (by
/// reallocating itself only) if `write` needs more than the block has left.
///
/// `write` may run user code (a `Serialize` impl): if that code encodes a message itself,
/// the inner write gets a buffer of its own instead of the block that is in use.
pub(crate) fn carve_growing<R>(write: impl FnOnce(&mut BytesMut) -> R) -> (R, Bytes) {
    BLOCK.with(|block| {
        let Ok(mut block) = block.try_borrow_mut() else {
            let mut own = BytesMut::new();
            let result = write(&mut own);
            return (result, own.freeze());
        };
        if block.capacity() < BLOCK_SIZE / 16 {
            *block = BytesMut::with_capacity(BLOCK_SIZE);
        }
        let result = write(&mut block);
        (result, block.split().freeze())
    })
}
