//! The response half of a call on the server: the version byte, message frames, and a
//! terminal error frame or a reset.

use bytes::{Bytes, BytesMut};
use quinn::{SendStream, VarInt};

use crate::RpcError;
use crate::transport::write_error;
use crate::wire::{FrameHeader, FrameTag, PROTOCOL_VERSION, StatusCode, StreamCode, encode_status};

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

    /// Header bytes for a frame, with the version byte in front of the first one.
    fn header(&mut self, tag: FrameTag, len: usize) -> Result<Bytes, RpcError> {
        let header = FrameHeader::new(tag, len, self.max_frame_len).map_err(|e| {
            RpcError::FrameTooLarge(format!("the response {e}; raise RpcConfig::with_max_frame_size on both sides"))
        })?;
        let mut buf = BytesMut::with_capacity(6);
        if !std::mem::replace(&mut self.started, true) {
            buf.extend_from_slice(&[PROTOCOL_VERSION]);
        }
        header.encode(&mut buf);
        Ok(buf.freeze())
    }

    pub(crate) async fn message(&mut self, payload: Bytes) -> Result<(), RpcError> {
        let header = self.header(FrameTag::Message, payload.len())?;
        self.send.write_all_chunks(&mut [header, payload]).await.map_err(write_error)
    }

    /// Writes `err` as the terminal frame and finishes the stream.
    pub(crate) async fn fail(&mut self, err: &RpcError) {
        let (tag, payload) = match err {
            RpcError::Service(service) => (FrameTag::ServiceError, Bytes::from(service.payload.clone())),
            other => {
                let mut payload = BytesMut::new();
                encode_status(other.status_code(), &other.status_message(), &mut payload);
                (FrameTag::Status, payload.freeze())
            }
        };
        let frame = match self.header(tag, payload.len()) {
            Ok(header) => [header, payload],
            Err(too_large) => {
                // A service error larger than a frame: send a status saying so instead.
                let mut payload = BytesMut::new();
                encode_status(StatusCode::FrameTooLarge, &too_large.to_string(), &mut payload);
                let header = self.header(FrameTag::Status, payload.len()).expect("status messages are small");
                [header, payload.freeze()]
            }
        };
        if self.send.write_all_chunks(&mut { frame }).await.is_ok() {
            self.finish();
        }
    }

    /// Answers a request that never reached a handler, with a status code of its own.
    pub(crate) async fn refuse(&mut self, code: StatusCode, message: &str) {
        let mut payload = BytesMut::new();
        encode_status(code, message, &mut payload);
        if let Ok(header) = self.header(FrameTag::Status, payload.len())
            && self.send.write_all_chunks(&mut [header, payload.freeze()]).await.is_ok()
        {
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

