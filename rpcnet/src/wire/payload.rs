//! `Payload`: a frame's payload as it arrived, in one piece or in the pieces the transport
//! delivered, and `Received`, the bytes of a stream that a decoder has not parsed yet.
//! Neither copies what it is given: a payload that spans packets stays in their buffers.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The payload of one frame: usually one piece, several when it spanned the chunks the
/// transport delivered. Nothing is copied to put it together; [`Buf`] reads across the
/// pieces, and [`into_bytes`](Self::into_bytes) joins them when one slice is needed.
///
/// ```
/// use bytes::{Buf, Bytes};
/// use rpcnet::wire::Payload;
/// let mut payload = Payload::from_pieces([Bytes::from_static(b"hel"), Bytes::from_static(b"lo")]);
/// assert_eq!(payload.len(), 5);
/// assert_eq!(payload.copy_to_bytes(5), "hello");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Payload {
    /// The unread part of the first piece.
    first: Bytes,
    /// The pieces after it, if any: boxed, since most payloads are one piece, and the
    /// futures of calls, which hold payloads, stay smaller for it.
    rest: Option<Box<Pieces>>,
    len: usize,
}

/// Pieces after the first, none of them empty; those before `next` were read.
#[derive(Debug, Clone, Default)]
struct Pieces {
    list: Vec<Bytes>,
    next: usize,
}

impl Payload {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// A payload made of `pieces`, in order.
    pub fn from_pieces(pieces: impl IntoIterator<Item = Bytes>) -> Self {
        let mut payload = Self::new();
        for piece in pieces {
            payload.push(piece);
        }
        payload
    }

    fn push(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        self.len += piece.len();
        if self.len == piece.len() {
            self.first = piece;
        } else {
            self.rest.get_or_insert_default().list.push(piece);
        }
    }

    /// Bytes left to read.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is left.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes as one slice, if they are in one piece.
    pub fn as_contiguous(&self) -> Option<&[u8]> {
        (self.first.len() == self.len).then_some(&self.first[..])
    }

    /// The pieces not read yet, in order.
    fn pieces(&self) -> impl Iterator<Item = &Bytes> {
        let rest = self.rest.as_deref().map_or(&[][..], |rest| &rest.list[rest.next..]);
        std::iter::once(&self.first).chain(rest)
    }

    /// Makes the next piece the first one, once the first is read. The list of pieces is
    /// emptied once every one was read, so that a long stream does not grow it.
    fn next_piece(&mut self) {
        let Some(rest) = self.rest.as_deref_mut() else {
            self.first = Bytes::new();
            return;
        };
        self.first = match rest.list.get_mut(rest.next) {
            Some(piece) => std::mem::take(piece),
            None => Bytes::new(),
        };
        rest.next += 1;
        if rest.next >= rest.list.len() {
            rest.list.clear();
            rest.next = 0;
        }
    }

    /// The bytes in one buffer: the piece itself if there is one, else one copy into a
    /// buffer of exactly the payload's length.
    pub fn into_bytes(self) -> Bytes {
        if self.first.len() == self.len {
            return self.first;
        }
        let mut joined = BytesMut::with_capacity(self.len);
        for piece in self.pieces() {
            joined.extend_from_slice(piece);
        }
        joined.freeze()
    }
}

/// Two payloads are equal when their bytes are, however they are split into pieces.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        if self.len != other.len {
            return false;
        }
        fn bytes(p: &Payload) -> impl Iterator<Item = u8> + '_ {
            p.pieces().flat_map(|piece| piece.iter()).copied()
        }
        bytes(self).eq(bytes(other))
    }
}

impl Eq for Payload {}

impl From<Bytes> for Payload {
    fn from(bytes: Bytes) -> Self {
        Self { len: bytes.len(), first: bytes, rest: None }
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(Bytes::from(bytes))
    }
}

impl From<Payload> for Bytes {
    fn from(payload: Payload) -> Self {
        payload.into_bytes()
    }
}

impl Buf for Payload {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        &self.first
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.len, "advanced {cnt} bytes past the end of a {} byte payload", self.len);
        self.len -= cnt;
        while cnt > 0 {
            let step = cnt.min(self.first.len());
            self.first.advance(step);
            cnt -= step;
            if self.first.is_empty() {
                self.next_piece();
            }
        }
    }

    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        // A slice of the first piece when it holds them all: no copy.
        if len <= self.first.len() {
            self.len -= len;
            let taken = self.first.split_to(len);
            if self.first.is_empty() {
                self.next_piece();
            }
            return taken;
        }
        assert!(len <= self.len, "asked for {len} bytes of a {} byte payload", self.len);
        let mut joined = BytesMut::with_capacity(len);
        joined.put(Buf::take(&mut *self, len));
        joined.freeze()
    }
}

/// The bytes of a stream received and not yet parsed, as the chunks they arrived in.
#[derive(Debug, Default)]
pub(crate) struct Received {
    chunks: Payload,
}

impl Received {
    /// Appends a chunk.
    pub(crate) fn push(&mut self, chunk: Bytes) {
        self.chunks.push(chunk);
    }

    pub(crate) fn len(&self) -> usize {
        self.chunks.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The first byte, if any.
    pub(crate) fn first(&self) -> Option<u8> {
        self.chunks.first.first().copied()
    }

    /// A copy of the first `N` bytes, if that many have arrived (headers are read this way).
    pub(crate) fn peek<const N: usize>(&self) -> Option<[u8; N]> {
        if let Some(bytes) = self.chunks.first.get(..N) {
            return bytes.try_into().ok();
        }
        if self.len() < N {
            return None;
        }
        // A header cut by a packet boundary.
        let mut out = [0; N];
        let mut filled = 0;
        for piece in self.chunks.pieces() {
            let step = piece.len().min(N - filled);
            out[filled..filled + step].copy_from_slice(&piece[..step]);
            filled += step;
            if filled == N {
                break;
            }
        }
        Some(out)
    }

    /// Discards `n` bytes (at most [`len`](Self::len)).
    pub(crate) fn advance(&mut self, n: usize) {
        self.chunks.advance(n);
    }

    /// Takes the first `n` bytes (at most [`len`](Self::len)) as a payload, without copying.
    pub(crate) fn take(&mut self, n: usize) -> Payload {
        debug_assert!(n <= self.len(), "bug in rpcnet: took more than was received");
        if n == self.len() {
            return std::mem::take(&mut self.chunks);
        }
        let mut taken = Payload::new();
        let mut left = n;
        while left > 0 {
            let first = &mut self.chunks.first;
            if first.len() <= left {
                left -= first.len();
                self.chunks.len -= first.len();
                taken.push(std::mem::take(first));
                self.chunks.next_piece();
            } else {
                self.chunks.len -= left;
                taken.push(first.split_to(left));
                left = 0;
            }
        }
        taken
    }

    /// The bytes of the first chunk not parsed yet.
    pub(crate) fn front(&self) -> &[u8] {
        &self.chunks.first
    }

    /// The first `n` bytes (at most [`len`](Self::len)) as one slice, joining the chunks
    /// they arrived in if they are several (request heads, which are small, are read so).
    pub(crate) fn contiguous(&mut self, n: usize) -> &[u8] {
        if self.chunks.first.len() < n {
            let joined = self.take(n).into_bytes();
            let rest = std::mem::take(&mut self.chunks);
            self.chunks = Payload::from(joined);
            for piece in rest.pieces() {
                self.chunks.push(piece.clone());
            }
        }
        &self.chunks.first[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(parts: &[&'static [u8]]) -> Payload {
        Payload::from_pieces(parts.iter().map(|p| Bytes::from_static(p)))
    }

    #[test]
    fn a_payload_reads_across_its_pieces_and_joins_only_when_asked() {
        let mut payload = pieces(&[b"ab", b"", b"cde", b"f"]);
        assert_eq!(payload.len(), 6, "empty pieces count for nothing");
        assert_eq!(payload.as_contiguous(), None);
        assert_eq!(payload.copy_to_bytes(1), "a", "within the first piece");
        assert_eq!(payload.copy_to_bytes(3), "bcd", "across pieces");
        assert_eq!(payload.clone().into_bytes(), "ef");
        payload.advance(2);
        assert!(payload.is_empty());
        let one = Payload::from(Bytes::from_static(b"xyz"));
        assert_eq!(one.as_contiguous(), Some(&b"xyz"[..]), "one piece is contiguous");
    }

    #[test]
    fn received_bytes_are_peeked_and_taken_across_chunk_boundaries() {
        let mut received = Received::default();
        for chunk in [&b"\x01\x02"[..], b"\x03", b"\x04\x05\x06"] {
            received.push(Bytes::from_static(chunk));
        }
        assert_eq!(received.peek::<4>(), Some([1, 2, 3, 4]));
        assert_eq!(received.peek::<7>(), None, "only six bytes arrived");
        received.advance(1);
        let taken = received.take(3);
        assert_eq!(taken.into_bytes(), &[2, 3, 4][..]);
        assert_eq!(received.len(), 2);
        assert_eq!(received.first(), Some(5));
        received.push(Bytes::from_static(&[7]));
        assert_eq!(received.contiguous(3), &[5, 6, 7][..], "joined once");
        assert_eq!(received.len(), 3, "and still there");
        received.advance(3);
        assert!(received.is_empty());
    }
}
