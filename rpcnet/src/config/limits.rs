//! `RpcConfig`'s bounds: sizes and counts a peer cannot exceed, the timeouts that bound
//! how long it may hold a resource, and the deadlines of calls.

use std::time::Duration;

use super::RpcConfig;

impl RpcConfig {
    /// Largest message (frame payload) sent or accepted, in bytes. Default 16 MiB; range
    /// 64 B to 1 GiB. A larger frame fails with [`RpcError::FrameTooLarge`](crate::RpcError::FrameTooLarge) before anything
    /// is allocated for it.
    pub fn with_max_frame_size(mut self, bytes: u32) -> Self {
        self.limits.max_frame_len = bytes;
        self
    }

    /// Largest request head accepted, in bytes. Default 8 KiB; range 64 B to 64 KiB - 1.
    pub fn with_max_head_size(mut self, bytes: u16) -> Self {
        self.limits.max_head_len = bytes;
        self
    }

    /// Most metadata entries accepted in one request head. Default 32.
    pub fn with_max_metadata_entries(mut self, entries: u8) -> Self {
        self.limits.max_metadata_entries = entries;
        self
    }

    /// Calls (QUIC streams) one client connection may have open at once on a server.
    /// Further calls wait on the client until one finishes. Default 256; at least 1.
    pub fn with_max_concurrent_streams(mut self, streams: u32) -> Self {
        self.endpoint.max_concurrent_streams = streams;
        self
    }

    /// Calls a server runs at once over all connections; more are refused at once with
    /// [`RpcError::Overloaded`](crate::RpcError::Overloaded). Default 10,000; at least 1.
    pub fn with_max_in_flight_calls(mut self, calls: usize) -> Self {
        self.max_in_flight_calls = calls;
        self
    }

    /// Connections a server keeps at once; further handshakes are refused. Default 1,024.
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Server side: connections one peer IP address may hold at once; more are refused at
    /// once. Default 128; at least 1. Both limits apply: one above
    /// [`with_max_connections`](Self::with_max_connections) is never reached.
    pub fn with_max_connections_per_address(mut self, connections: usize) -> Self {
        self.max_connections_per_address = connections;
        self
    }

    /// Server side: bytes of partly received request frames that the calls of one
    /// connection may hold together. A call whose next frame does not fit waits (QUIC flow
    /// control then holds its sender back) until others finish theirs; a frame stalled by
    /// its sender is cut off by the request read timeout. Default: twice the largest frame
    /// ([`with_max_frame_size`](Self::with_max_frame_size)), at least 32 MiB (so 32 MiB at
    /// the default frame size); a value set here must be at least the largest frame plus
    /// its 5-byte header. Each call may hold up to 64 KiB more before its frame's size is
    /// known.
    pub fn with_max_buffered_per_connection(mut self, bytes: usize) -> Self {
        self.max_buffered_per_connection = Some(bytes);
        self
    }

    /// The bytes of partial frames one connection may hold; see
    /// [`with_max_buffered_per_connection`](Self::with_max_buffered_per_connection).
    pub fn max_buffered_per_connection(&self) -> usize {
        let largest_frame = self.limits.max_frame_len as usize + crate::wire::FRAME_HEADER_LEN;
        self.max_buffered_per_connection.unwrap_or((2 * largest_frame).max(32 << 20))
    }

    /// Deadline of a unary or client-streaming call that sets none itself. Default 30 s;
    /// `None` waits forever. Streaming responses have no default deadline.
    pub fn with_default_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.default_timeout = timeout.into();
        self
    }

    /// How long a client waits for a connection (handshake included). Default 5 s.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Server side: the longest a request head (and a unary request message) may take to
    /// arrive, whatever the deadline, and the longest any request frame once begun (in
    /// streaming calls too) may go without a byte, so a peer that stops sending mid-frame
    /// frees its stream even on a call without a deadline. Default 10 s.
    pub fn with_request_read_timeout(mut self, timeout: Duration) -> Self {
        self.request_read_timeout = timeout;
        self
    }

    /// Server side: the longest a response write may go without the peer taking a byte
    /// (and the longest a finished reply may wait for the peer's acknowledgement). A call
    /// whose client does not read is then reset, with its permit and buffers freed; a slow
    /// but steady reader is not cut off. The call's deadline bounds the write as well.
    /// Default 10 s.
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Server side: a connection that opens no call within this time of its handshake is
    /// closed, so silent connections cannot hold the server's connection places. Clients
    /// reconnect on their next call. Default 10 s.
    pub fn with_handshake_idle_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_idle_timeout = timeout;
        self
    }

    /// Server side: how long a graceful shutdown lets calls in flight finish (and their
    /// replies be acknowledged) before it closes every connection. Default 10 s.
    pub fn with_shutdown_grace_period(mut self, grace: Duration) -> Self {
        self.shutdown_grace_period = grace;
        self
    }
}
