//! The response half of a call on the server: the version byte, message frames, and a
//! terminal error frame or a reset.

use bytes::{BufMut, Bytes, BytesMut};
use quinn::{SendStream, VarInt};

use crate::RpcError;
use crate::transport::Outgoing;
use crate::wire::{FRAME_HEADER_LEN, FrameHeader, FrameTag, PROTOCOL_VERSION, StatusCode, StreamCode, encode_status};

fn status_payload(code: StatusCode, message: &str) -> Bytes {
    let mut payload = BytesMut::new();
    encode_status(code, message, &mut payload);
    payload.freeze()
}

/// Writes the response half of a call: the version byte before the first frame, then frames.
pub(crate) struct Responder {
    pub(crate) send: SendStream,
    started: bool,
    max_frame_len: u32,
}

impl Responder {
    pub(crate) fn new(send: SendStream, max_frame_len: u32) -> Self {
        Self { send, started: false, max_frame_len }
    }

    /// A frame ready to write, with the version byte in front of the first one.
    fn frame(&mut self, tag: FrameTag, payload: Bytes) -> Result<Outgoing, RpcError> {
        let header = FrameHeader::new(tag, payload.len(), self.max_frame_len).map_err(|e| {
            RpcError::FrameTooLarge(format!("the response {e}; raise RpcConfig::with_max_frame_size on both sides"))
        })?;
        let first = !std::mem::replace(&mut self.started, true);
        Ok(Outgoing::new(
            1 + FRAME_HEADER_LEN,
            |buf| {
                if first {
                    buf.put_u8(PROTOCOL_VERSION);
                }
                header.encode(buf);
            },
            payload,
        ))
    }

    pub(crate) async fn message(&mut self, payload: Bytes) -> Result<(), RpcError> {
        self.frame(FrameTag::Message, payload)?.write(&mut self.send).await
    }

    /// Writes `err` as the terminal frame and finishes the stream.
    pub(crate) async fn fail(&mut self, err: &RpcError) {
        let frame = match err {
            RpcError::Service(service) => self.frame(FrameTag::ServiceError, Bytes::from(service.payload.clone())),
            other => self.frame(FrameTag::Status, status_payload(other.status_code(), &other.status_message())),
        };
        // A service error larger than a frame: send a status saying so instead.
        let frame = frame.unwrap_or_else(|too_large| {
            self.frame(FrameTag::Status, status_payload(StatusCode::FrameTooLarge, &too_large.to_string()))
                .expect("status messages are small")
        });
        if frame.write(&mut self.send).await.is_ok() {
            self.finish();
        }
    }

    /// Answers a request that never reached a handler, with a status code of its own.
    pub(crate) async fn refuse(&mut self, code: StatusCode, message: &str) {
        let frame = self.frame(FrameTag::Status, status_payload(code, message)).expect("status messages are small");
        if frame.write(&mut self.send).await.is_ok() {
            self.finish();
        }
    }

    pub(crate) fn finish(&mut self) {
        let _ = self.send.finish();
    }

    /// Finishes a successful response; one without messages still carries its version byte.
    pub(crate) async fn finish_ok(&mut self) {
        if !std::mem::replace(&mut self.started, true) && self.send.write_all(&[PROTOCOL_VERSION]).await.is_err() {
            return;
        }
        self.finish();
    }

    pub(crate) fn reset(&mut self, code: StreamCode) {
        let _ = self.send.reset(VarInt::from_u32(code.as_u32()));
    }
}
