//! Feeds arbitrary bytes to every wire decoder, as a request (head, then frames) and as a
//! response (version byte, then frames). Decoders must never panic, never read past what
//! they declare, a head that decodes must encode back to the same bytes, and the server's
//! raw head decoder must agree with the full one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpcnet::wire::{FRAME_HEADER_LEN, FrameHeader, FrameTag, Limits, RawRequestHead, RequestHead, decode_status};

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
    // What a server reads on every call must agree with the full decoder: the same length,
    // and the same verdict except for a method name that is not UTF-8.
    let raw = RawRequestHead::decode(data, &LIMITS);
    let full = RequestHead::decode(data, &LIMITS);
    match (&raw, &full) {
        (Ok(Some((raw, raw_used))), Ok(Some((head, used)))) => {
            assert_eq!(raw_used, used);
            assert_eq!(raw.method, head.method.as_bytes());
            assert_eq!((raw.kind, raw.deadline, raw.metadata_count), (head.kind, head.deadline, head.metadata.len()));
        }
        (Ok(Some((raw, _))), Err(_)) => assert!(std::str::from_utf8(raw.method).is_err(), "only the name may differ"),
        (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
        _ => panic!("raw and full decoders disagree: {raw:?} vs {full:?}"),
    }
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
