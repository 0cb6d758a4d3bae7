//! The configuration's defaults, setters and checks.

use super::*;
use crate::transport::CipherSuite;

#[test]
fn defaults_are_valid_and_documented() {
    let config = RpcConfig::new("cert.pem", "127.0.0.1:0");
    config.validate().expect("defaults must validate");
    assert_eq!(config.limits().max_frame_len, 16 * 1024 * 1024);
    assert_eq!(config.default_timeout(), Some(Duration::from_secs(30)));
    assert_eq!(config.server_name(), "localhost");
    assert_eq!(config.max_buffered_per_connection(), 2 * ((16 << 20) + 5), "two frames with headers");
    let large = config.with_max_frame_size(64 << 20);
    assert_eq!(large.max_buffered_per_connection(), 2 * ((64 << 20) + 5), "follows the largest frame");
    large.validate().expect("raising the frame size alone stays valid");
}

#[test]
fn a_buffer_smaller_than_a_frame_is_refused() {
    let err = RpcConfig::new("c", "127.0.0.1:0").with_max_buffered_per_connection(1 << 20).validate().unwrap_err();
    assert!(err.to_string().contains("with_max_buffered_per_connection"), "got {err}");
}

#[test]
fn out_of_range_values_name_their_setter() {
    let err = RpcConfig::new("c", "127.0.0.1:0").with_max_frame_size(10).validate().unwrap_err();
    assert!(err.to_string().contains("with_max_frame_size"), "got {err}");
    let err =
        RpcConfig::new("c", "127.0.0.1:0").with_keep_alive_interval(Duration::from_secs(60)).validate().unwrap_err();
    assert!(err.to_string().contains("with_keep_alive_interval"), "got {err}");
    let err = RpcConfig::new("c", "127.0.0.1:0").with_mtu_upper_bound(1199).validate().unwrap_err();
    assert!(err.to_string().contains("with_mtu_upper_bound"), "got {err}");
    let err = RpcConfig::new("c", "127.0.0.1:0").with_receive_window(1024).validate().unwrap_err();
    assert!(err.to_string().contains("with_receive_window"), "got {err}");
    let err = RpcConfig::new("c", "127.0.0.1:0").with_stream_receive_window(0).validate().unwrap_err();
    assert!(err.to_string().contains("with_stream_receive_window"), "got {err}");
    let err = RpcConfig::new("c", "127.0.0.1:0")
        .with_connection_receive_window(1 << 20)
        .with_stream_receive_window(2 << 20)
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("connection's window (1048576"), "a stream above its connection: {err}");
    let err = RpcConfig::new("c", "127.0.0.1:0").with_cipher_suites(&[]).validate().unwrap_err();
    assert!(err.to_string().contains("with_cipher_suites"), "got {err}");
    let tls12 = [CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];
    let err = RpcConfig::new("c", "127.0.0.1:0").with_cipher_suites(&tls12).validate().unwrap_err();
    assert!(err.to_string().contains("not a TLS 1.3 suite"), "got {err}");
    let err = RpcConfig::new("c", "127.0.0.1:0")
        .with_max_idle_timeout(Duration::from_secs(u64::MAX / 1000))
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("2^62"), "got {err}");
    let err = RpcConfig::new("c", "127.0.0.1:0").with_max_in_flight_calls(0).validate().unwrap_err();
    assert!(matches!(err, RpcError::Config(_)));
}

#[test]
fn a_bind_address_is_a_literal_or_a_host_name_with_a_port() {
    assert_eq!(RpcConfig::new("c", "[::1]:7").bind_addr(), "[::1]:7".parse::<SocketAddr>().unwrap());
    assert_eq!(RpcConfig::dev("127.0.0.1:0").bind_addr(), "127.0.0.1:0".parse::<SocketAddr>().unwrap());
    let named = RpcConfig::new("c", "localhost:8080");
    named.validate().expect("a host name with a port is a bind address");
    assert!(named.bind_addr().ip().is_loopback() && named.bind_addr().port() == 8080, "{}", named.bind_addr());
}

#[test]
fn a_bad_bind_address_is_a_configuration_error_naming_it() {
    for bad in ["nonsense", "localhost", "127.0.0.1", "localhost:http", "127.0.0.1:99999", ""] {
        let err = RpcConfig::new("c", bad).validate().unwrap_err();
        assert!(
            matches!(&err, RpcError::Config(m) if m.contains(&format!("`{bad}`")) && m.contains("localhost:0")),
            "`{bad}` must be refused with advice: {err:?}"
        );
        let err = RpcConfig::dev(bad).validate().unwrap_err();
        assert!(matches!(err, RpcError::Config(_)), "dev reads its address as new does: {err:?}");
    }
    let fixed = RpcConfig::new("c", "nonsense").with_bind_addr("127.0.0.1:0".parse().unwrap());
    fixed.validate().expect("with_bind_addr replaces the unusable address");
}
