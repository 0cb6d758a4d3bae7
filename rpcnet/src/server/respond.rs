//! The response half of a call on the server: the version byte before the first frame,
//! message frames, and a terminal error frame or a reset.

use bytes::{Bytes, BytesMut};
use quinn::{SendStream, VarInt};

use crate::error::RpcError;
use crate::transport::{Outgoing, OutgoingMessage, Prefix};
use crate::wire::{FrameTag, PROTOCOL_VERSION, StatusCode, StreamCode, WireError, encode_status};

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
    fn frame(&mut self, tag: FrameTag, message: OutgoingMessage) -> Result<Outgoing, RpcError> {
        let prefix = if self.started { Prefix::Nothing } else { Prefix::Version };
        let frame = message.frame(tag, self.max_frame_len, prefix).map_err(|e| match e {
            WireError::FrameTooLarge { .. } => {
                RpcError::FrameTooLarge(format!("the response {e}; raise RpcConfig::with_max_frame_size on both sides"))
            }
            other => other.into(),
        })?;
        self.started = true;
        Ok(frame)
    }

    pub(crate) async fn message(&mut self, message: OutgoingMessage) -> Result<(), RpcError> {
        self.frame(FrameTag::Message, message)?.write(&mut self.send).await
    }

    fn status(&mut self, code: StatusCode, message: &str) -> Outgoing {
        self.frame(FrameTag::Status, status_payload(code, message).into()).expect("status messages are small")
    }

    /// Writes `err` as the terminal frame and finishes the stream.
    pub(crate) async fn fail(&mut self, err: &RpcError) {
        let frame = match err {
            RpcError::Service(service) => {
                self.frame(FrameTag::ServiceError, Bytes::from(service.payload.clone()).into())
            }
            other => Ok(self.status(other.status_code(), &other.status_message())),
        };
        // A service error larger than a frame: send a status saying so instead.
        let frame = frame.unwrap_or_else(|too_large| self.status(StatusCode::FrameTooLarge, &too_large.to_string()));
        if frame.write(&mut self.send).await.is_ok() {
            self.finish();
        }
    }

    /// Answers a request that never reached a handler, with a status code of its own.
    pub(crate) async fn refuse(&mut self, code: StatusCode, message: &str) {
        if self.status(code, message).write(&mut self.send).await.is_ok() {
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
