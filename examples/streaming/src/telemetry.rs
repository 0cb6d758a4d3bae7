//! The messages the telemetry binaries exchange, and their MessagePack encoding
//! (the book's step 4).

use rpcnet::RpcError;
use serde::{Deserialize, Serialize};

/// One reading of a sensor: what the client uploads, and the subscription request.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct MetricReading {
    /// The sensor's name.
    pub sensor: String,
    /// Its value.
    pub value: f64,
}

/// The rolling average of a sensor, streamed to a subscriber.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct LiveUpdate {
    /// The sensor's name.
    pub sensor: String,
    /// The average of the readings so far.
    pub rolling_avg: f64,
}

/// A chat line, either way.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ChatMessage {
    /// Who wrote it.
    pub from: String,
    /// What they wrote.
    pub body: String,
}

/// The answer to an upload: how many readings the server took.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Ack {
    /// Readings received.
    pub accepted: usize,
}

/// `value` as MessagePack bytes.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RpcError> {
    rmp_serde::to_vec(value).map_err(|e| RpcError::Codec(e.to_string()))
}

/// A value from MessagePack bytes.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, RpcError> {
    rmp_serde::from_slice(bytes).map_err(|e| RpcError::Codec(e.to_string()))
}
