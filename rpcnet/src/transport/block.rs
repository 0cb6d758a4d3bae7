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

/// Like [`carve`], for a `write` that may run user code and may fail: `len` is what it is
/// expected to write (a codec's measure), and the buffer still grows if it writes more.
/// A message larger than half a block gets a buffer of its own, allocated once at `len`
/// instead of grown from the block by doubling (each step a copy into memory not yet
/// touched).
pub(crate) fn carve_exact<R>(len: usize, write: impl FnOnce(&mut BytesMut) -> R) -> (R, Bytes) {
    BLOCK.with(|block| match block.try_borrow_mut() {
        Ok(mut block) if len <= BLOCK_SIZE / 2 => {
            if block.capacity() < len {
                *block = BytesMut::with_capacity(BLOCK_SIZE);
            }
            let result = write(&mut block);
            (result, block.split().freeze())
        }
        // Large, or the block is in use by an encode this one runs inside of.
        _ => {
            let mut own = BytesMut::with_capacity(len);
            let result = write(&mut own);
            (result, own.freeze())
        }
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
