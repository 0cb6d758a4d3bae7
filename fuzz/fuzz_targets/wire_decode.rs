//! Feeds arbitrary bytes to the wire's piece decoders: a request head, then frames, and a
//! status. Decoders must never panic, never read past what they declare, and a head that
//! decodes must encode back to the same bytes. Whole calls: see `call_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpcnet::wire::{FRAME_HEADER_LEN, FrameHeader, FrameTag, Limits, RequestHead, decode_status};

const LIMITS: Limits = Limits { max_frame_len: 1 << 20, max_head_len: 1024, max_metadata_entries: 8 };

/// Walks frames until the input runs out or a frame is invalid.
fn frames(mut rest: &[u8]) {
    while let Ok(Some(header)) = FrameHeader::decode(rest, LIMITS.max_frame_len) {
        assert!(header.len <= LIMITS.max_frame_len, "decoder accepted a frame over the limit");
        let Some(payload) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + header.len as usize) else { return };
        if header.tag == FrameTag::Status {
            let _ = decode_status(payload);
        }
        rest = &rest[FRAME_HEADER_LEN + header.len as usize..];
    }
}

fuzz_target!(|data: &[u8]| {
    let full = RequestHead::decode(data, &LIMITS);
    if let Ok(Some((head, used))) = full {
        assert!(used <= data.len());
        let mut again = Vec::new();
        head.encode(&LIMITS, &mut again).expect("a decoded head encodes");
        assert_eq!(again, &data[..used], "decode then encode must give the same bytes");
        frames(&data[used..]);
    }
    if data.first() == Some(&rpcnet::wire::PROTOCOL_VERSION) {
        frames(&data[1..]);
    }
    let _ = decode_status(data);
});
