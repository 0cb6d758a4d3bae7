//! Feeds whole calls to the call protocol's decoders, in arbitrary chunks: the first bytes of
//! the input choose where the rest is cut. The same bytes cut differently must give the same
//! events and the same verdict; decoders never panic, never hand out more bytes than they
//! were fed, and never hold more than they were fed.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rpcnet::wire::{
    CallKind, Limits, RequestDecoder, RequestEvent, ResponseDecoder, ResponseEvent, StreamDecoder, WireError,
};

const LIMITS: Limits = Limits { max_frame_len: 1 << 16, max_head_len: 1024, max_metadata_entries: 8 };

/// The chunks of `data`, cut at the sizes `cuts` gives in turn (1 to 16 bytes, and a
/// whole-rest chunk for a 0).
fn chunks<'a>(data: &'a [u8], cuts: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let cut = cuts.get(i % cuts.len().max(1)).copied().unwrap_or(0);
        let size = if cut == 0 { rest.len() } else { usize::from(cut % 16 + 1).min(rest.len()) };
        out.push(&rest[..size]);
        rest = &rest[size..];
        i += 1;
    }
    out
}

/// What a request decoder makes of `pieces`: the head's kind and method, the messages, and
/// how it ended.
fn request(pieces: &[&[u8]]) -> (Option<(CallKind, String)>, Vec<Vec<u8>>, Result<(), WireError>) {
    let mut decoder = RequestDecoder::new(LIMITS);
    let (mut fed, mut handed_out) = (0, 0);
    let mut next = pieces.iter();
    let mut head = None;
    let mut messages = Vec::new();
    let verdict = loop {
        assert!(decoder.buffered() <= fed - handed_out, "holds more than it was fed");
        let step = if head.is_none() {
            match decoder.poll_head() {
                Ok(Some(h)) => {
                    head = Some((h.kind, h.method.to_owned()));
                    continue;
                }
                Ok(None) => None,
                Err(err) => break Err(err),
            }
        } else {
            match decoder.poll_message() {
                Ok(Some(RequestEvent::Message(m))) => Some(m),
                Ok(Some(RequestEvent::End)) => break Ok(()),
                Ok(None) => None,
                Err(err) => break Err(err),
            }
        };
        match step {
            Some(message) => {
                handed_out += message.len();
                assert!(handed_out <= fed, "handed out more than it was fed");
                messages.push(message.into_bytes().to_vec());
            }
            None => match next.next() {
                Some(piece) => {
                    fed += piece.len();
                    decoder.handle_chunk(Bytes::copy_from_slice(piece));
                }
                None => decoder.handle_end(),
            },
        }
    };
    (head, messages, verdict)
}

/// What a response decoder for a call of `kind` makes of `pieces`.
fn response(kind: CallKind, pieces: &[&[u8]]) -> (Vec<String>, Result<(), WireError>) {
    let mut decoder = ResponseDecoder::new(kind, LIMITS);
    let (mut fed, mut handed_out) = (0, 0);
    let mut next = pieces.iter();
    let mut events = Vec::new();
    let verdict = loop {
        assert!(decoder.buffered() <= fed - handed_out, "holds more than it was fed");
        match decoder.poll() {
            Ok(Some(ResponseEvent::End)) => break Ok(()),
            Ok(Some(ResponseEvent::Message(m))) => {
                handed_out += m.len();
                events.push(format!("message {:?}", m.into_bytes()));
            }
            Ok(Some(ResponseEvent::ServiceError(p))) => {
                events.push(format!("service error {:?}", p.into_bytes()));
                break Ok(());
            }
            Ok(Some(ResponseEvent::Status { code, message })) => {
                events.push(format!("status {code} {message}"));
                break Ok(());
            }
            Ok(None) => match next.next() {
                Some(piece) => {
                    fed += piece.len();
                    decoder.handle_chunk(Bytes::copy_from_slice(piece));
                }
                None => decoder.handle_end(),
            },
            Err(err) => break Err(err),
        }
        assert!(handed_out <= fed, "handed out more than it was fed");
    };
    (events, verdict)
}

fuzz_target!(|input: &[u8]| {
    let Some((&count, rest)) = input.split_first() else { return };
    let (cuts, data) = rest.split_at(usize::from(count % 8).min(rest.len()));
    let whole = [data];
    let cut = chunks(data, cuts);
    let bytewise: Vec<&[u8]> = data.chunks(1).collect();

    let reference = request(&whole);
    assert_eq!(request(&cut), reference, "a request cut differently decodes differently");
    assert_eq!(request(&bytewise), reference, "a request fed byte by byte decodes differently");
    for kind in [CallKind::Unary, CallKind::ServerStreaming, CallKind::ClientStreaming, CallKind::BidiStreaming] {
        let reference = response(kind, &whole);
        assert_eq!(response(kind, &cut), reference, "a {kind:?} response cut differently decodes differently");
        assert_eq!(response(kind, &bytewise), reference, "a {kind:?} response byte by byte decodes differently");
    }
});
