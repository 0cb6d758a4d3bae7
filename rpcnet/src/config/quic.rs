//! `RpcConfig`'s QUIC transport: sockets, packet sizes, flow-control windows, congestion
//! control, keep-alives and the idle timeout.

use std::time::Duration;

use super::RpcConfig;
use crate::transport::CongestionControl;

impl RpcConfig {
    /// A client sends a keep-alive this often so its idle connections stay open. Default
    /// 10 s; `None` lets idle connections close after the idle timeout, and the client
    /// reconnects on its next call. A server never sends keep-alives, whatever this says:
    /// keeping a connection is its client's choice, and a server's idle timeout
    /// ([`with_idle_timeout`](Self::with_idle_timeout)) reclaims connections whose client
    /// went quiet. The value still has to be less than the idle timeout.
    pub fn with_keep_alive_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.endpoint.keep_alive_interval = interval.into();
        self
    }

    /// A connection with no traffic for this long is closed. Default 30 s; must exceed the
    /// keep-alive interval, and be below QUIC's limit of 2^62 ms. Both sides announce
    /// theirs and the shorter applies. Also named
    /// [`with_max_idle_timeout`](Self::with_max_idle_timeout).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.endpoint.idle_timeout = timeout;
        self
    }

    /// The same setting as [`with_idle_timeout`](Self::with_idle_timeout), under the name of
    /// QUIC's transport parameter (`max_idle_timeout`) and of the rpcnet 0.1 book.
    pub fn with_max_idle_timeout(self, timeout: Duration) -> Self {
        self.with_idle_timeout(timeout)
    }

    /// Send and receive buffer of the UDP socket, in bytes. Default 4 MiB: kernel defaults
    /// drop packets when many large calls arrive at once. The kernel may grant less
    /// (`net.core.rmem_max`).
    pub fn with_udp_buffer_size(mut self, bytes: usize) -> Self {
        self.endpoint.udp_buffer_size = bytes;
        self
    }

    /// A fixed packet size: the UDP payload QUIC starts with and never probes past. Unset by
    /// default, which starts at QUIC's safe 1,200 bytes and probes the path up to
    /// [`with_mtu_upper_bound`](Self::with_mtu_upper_bound). Set it only on paths known to
    /// carry it (up to 65,507 on IPv4 loopback): a path that drops such packets never
    /// completes a handshake. Range 1,200 to 65,527.
    pub fn with_max_udp_payload_size(mut self, bytes: u16) -> Self {
        self.endpoint.max_udp_payload_size = Some(bytes);
        self
    }

    /// The largest UDP payload path MTU discovery probes for. Default 65,527, UDP's
    /// largest. Packets start at 1,200 bytes, which every path carries, and grow as probes
    /// get through, so each path finds its own size (1,452 on Ethernet, 8,952 on jumbo
    /// frames, 65,495 on IPv4 loopback): fewer, larger packets cost less CPU per byte. A
    /// path that starts losing the larger packets is noticed and the size falls back to
    /// 1,200 (black-hole detection). A lower bound makes the search on an ordinary
    /// 1,500-byte path lose fewer probes (~230 KB per connection every 10 minutes at the
    /// default); 1,452 is quinn's own, for Ethernet. Range 1,200 to 65,527;
    /// [`with_max_udp_payload_size`](Self::with_max_udp_payload_size) takes precedence.
    pub fn with_mtu_upper_bound(mut self, bytes: u16) -> Self {
        self.endpoint.mtu_upper_bound = bytes;
        self
    }

    /// The most a peer may send on one connection ahead of what the application has read,
    /// over all its streams (QUIC's connection flow-control window), and so the most quinn
    /// buffers for a connection; the same figure bounds what is kept of this side's own
    /// writes until acknowledged, and one stream may take up to 2 MiB of it. Default 4 MiB:
    /// the default UDP buffer ([`with_udp_buffer_size`](Self::with_udp_buffer_size)), so a
    /// peer's burst fits in the socket (with 16 MiB or no bound, 16 calls of 1 MiB lost
    /// packets there and ran slower); it covers 1 Gbit/s at 32 ms round trips, and a
    /// server's worst case is `4 MiB x` [`with_max_connections`](Self::with_max_connections)
    /// (plus the calls its handlers hold). Raise it with the UDP buffer for long fat paths.
    /// Range 64 KiB to 1 GiB.
    pub fn with_receive_window(mut self, bytes: u32) -> Self {
        self.endpoint.receive_window = bytes;
        self
    }

    /// The connection's receive window: the same setting as
    /// [`with_receive_window`](Self::with_receive_window), under the name that sets it apart
    /// from [`with_stream_receive_window`](Self::with_stream_receive_window). Default 4 MiB;
    /// range 64 KiB to 1 GiB, and at least the stream window.
    pub fn with_connection_receive_window(self, bytes: u32) -> Self {
        self.with_receive_window(bytes)
    }

    /// The most a peer may send on one stream (one call) ahead of what the application has
    /// read (QUIC's stream flow-control window). Default: the connection's window, up to
    /// 2 MiB (so 2 MiB at the default 4 MiB), so a 1 MiB message goes out without waiting
    /// for credit while one stalled call cannot take the whole connection's window. Range 1
    /// byte to the connection's window (a `u32` always fits QUIC's 62-bit limit).
    pub fn with_stream_receive_window(mut self, bytes: u32) -> Self {
        self.endpoint.stream_receive_window = Some(bytes);
        self
    }

    /// The congestion controller of this side's connections. Default
    /// [`CongestionControl::Cubic`] (quinn's default, and what rpcnet's measurements ran).
    /// Each side controls only what it sends: a server's choice governs its responses.
    pub fn with_congestion_control(mut self, controller: CongestionControl) -> Self {
        self.endpoint.congestion = controller;
        self
    }
}
