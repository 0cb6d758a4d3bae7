//! `RpcConfig::validate`: every setting against its range, naming the setter that fixes a
//! value out of range; `bind` and `connect` call it first.

use super::RpcConfig;
use crate::error::RpcError;

impl RpcConfig {
    /// Checks every value against its range. `bind` and `connect` call this first.
    pub fn validate(&self) -> Result<(), RpcError> {
        fn out_of_range(what: &str, value: impl std::fmt::Debug, range: &str, setter: &str) -> RpcError {
            RpcError::Config(format!("{what} is {value:?}, must be {range}: fix it with RpcConfig::{setter}"))
        }
        if let Some(err) = &self.bind_addr_error {
            return Err(RpcError::Config(err.clone()));
        }
        if let Some(err) = &self.dev_ca_error {
            return Err(err.clone());
        }
        let limits = &self.limits;
        if !(64..=1 << 30).contains(&limits.max_frame_len) {
            return Err(out_of_range("max frame size", limits.max_frame_len, "64 B to 1 GiB", "with_max_frame_size"));
        }
        if limits.max_head_len < 64 {
            return Err(out_of_range("max head size", limits.max_head_len, "at least 64 B", "with_max_head_size"));
        }
        if self.endpoint.max_concurrent_streams == 0 {
            return Err(out_of_range("max concurrent streams", 0, "at least 1", "with_max_concurrent_streams"));
        }
        if self.max_in_flight_calls == 0 {
            return Err(out_of_range("max in-flight calls", 0, "at least 1", "with_max_in_flight_calls"));
        }
        if self.max_connections == 0 {
            return Err(out_of_range("max connections", 0, "at least 1", "with_max_connections"));
        }
        if self.max_connections_per_address == 0 {
            return Err(out_of_range(
                "max connections per address",
                0,
                "at least 1",
                "with_max_connections_per_address",
            ));
        }
        let largest_frame = limits.max_frame_len as usize + crate::wire::FRAME_HEADER_LEN;
        if let Some(buffered) = self.max_buffered_per_connection
            && buffered < largest_frame
        {
            return Err(out_of_range(
                "max buffered per connection",
                buffered,
                "at least the max frame size plus 5 bytes",
                "with_max_buffered_per_connection",
            ));
        }
        for (what, value, setter) in [
            ("connect timeout", self.connect_timeout, "with_connect_timeout"),
            ("idle timeout", self.endpoint.idle_timeout, "with_idle_timeout"),
            ("request read timeout", self.request_read_timeout, "with_request_read_timeout"),
            ("write timeout", self.write_timeout, "with_write_timeout"),
            ("handshake idle timeout", self.handshake_idle_timeout, "with_handshake_idle_timeout"),
        ] {
            if value.is_zero() {
                return Err(out_of_range(what, value, "more than zero", setter));
            }
        }
        if let Some(keep_alive) = self.endpoint.keep_alive_interval
            && (keep_alive.is_zero() || keep_alive >= self.endpoint.idle_timeout)
        {
            return Err(out_of_range(
                "keep-alive interval",
                keep_alive,
                "more than zero and less than the idle timeout",
                "with_keep_alive_interval",
            ));
        }
        if self.endpoint.udp_buffer_size < 64 * 1024 {
            return Err(out_of_range(
                "UDP buffer size",
                self.endpoint.udp_buffer_size,
                "at least 64 KiB",
                "with_udp_buffer_size",
            ));
        }
        if let Some(size) = self.endpoint.max_udp_payload_size
            && !(1200..=65_527).contains(&size)
        {
            return Err(out_of_range("max UDP payload size", size, "1200 to 65527", "with_max_udp_payload_size"));
        }
        if !(1200..=65_527).contains(&self.endpoint.mtu_upper_bound) {
            return Err(out_of_range(
                "MTU upper bound",
                self.endpoint.mtu_upper_bound,
                "1200 to 65527",
                "with_mtu_upper_bound",
            ));
        }
        if !(64 * 1024..=1 << 30).contains(&self.endpoint.receive_window) {
            return Err(out_of_range(
                "receive window",
                self.endpoint.receive_window,
                "64 KiB to 1 GiB",
                "with_receive_window",
            ));
        }
        if let Some(stream) = self.endpoint.stream_receive_window
            && (stream == 0 || stream > self.endpoint.receive_window)
        {
            return Err(out_of_range(
                "stream receive window",
                stream,
                &format!("1 byte to the connection's window ({} bytes)", self.endpoint.receive_window),
                "with_stream_receive_window",
            ));
        }
        if quinn::IdleTimeout::try_from(self.endpoint.idle_timeout).is_err() {
            return Err(out_of_range(
                "idle timeout",
                self.endpoint.idle_timeout,
                "below QUIC's limit of 2^62 ms",
                "with_idle_timeout",
            ));
        }
        if let Some(suites) = &self.endpoint.tls.cipher_suites {
            crate::transport::check_cipher_suites(suites)
                .map_err(|why| RpcError::Config(format!("{why}: fix it with RpcConfig::with_cipher_suites")))?;
        }
        Ok(())
    }
}
