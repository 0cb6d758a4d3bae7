//! Certificates: files as in rpcnet 0.1, verification always on, and mutual TLS.

mod common;

use common::{TestServer, subscribe};
use rpcnet::transport::DevPki;
use rpcnet::{RpcClient, RpcConfig, RpcError};

fn temp_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rpcnet-tls-{name}-{}", std::process::id()))
}

#[tokio::test]
async fn certificates_from_pem_files_work_as_the_book_shows() {
    let dir = temp_dir("files");
    let ca = DevPki::get().write_pem_files(&dir).unwrap();
    let server_config = RpcConfig::new(dir.join("server.pem"), "127.0.0.1:0").with_key_path(dir.join("server-key.pem"));
    let server = TestServer::start_with(server_config).await;
    let client_config = RpcConfig::new(&ca, "127.0.0.1:0").with_server_name("localhost");
    let client = RpcClient::connect(server.addr, client_config).await.unwrap();
    assert_eq!(client.call("test.echo", b"from files".to_vec()).await.unwrap(), b"from files");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_server_without_its_key_is_a_configuration_error_naming_the_fix() {
    subscribe();
    let mut server = rpcnet::RpcServer::new(RpcConfig::new("missing.pem", "127.0.0.1:0"));
    let err = server.bind().unwrap_err();
    assert!(matches!(err, RpcError::Config(ref m) if m.contains("with_key_path")), "got {err:?}");
    let mut server = rpcnet::RpcServer::new(RpcConfig::new("missing.pem", "127.0.0.1:0").with_key_path("k.pem"));
    let err = server.bind().unwrap_err();
    assert!(matches!(err, RpcError::Config(ref m) if m.contains("missing.pem")), "got {err:?}");
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_server_fails_the_handshake() {
    let server = TestServer::start().await;
    // Trust only an unrelated certificate: the server's chain does not lead to it.
    let stranger = DevPki::get().issue("stranger").unwrap();
    let config = RpcConfig::dev("127.0.0.1:0").with_trusted_certificates(stranger.chain().to_vec());
    let err = RpcClient::connect(server.addr, config).await.unwrap_err();
    assert!(matches!(err, RpcError::Tls(_)), "got {err:?}");
}

#[tokio::test]
async fn a_client_expecting_another_name_fails_the_handshake() {
    let server = TestServer::start().await;
    let config = RpcConfig::dev("127.0.0.1:0").with_server_name("bank.example.com");
    let err = RpcClient::connect(server.addr, config).await.unwrap_err();
    assert!(matches!(err, RpcError::Tls(_)), "got {err:?}");
}

/// Connects and makes one call; under mutual TLS a rejected client may see the refusal at
/// connect or at its first call, as TLS 1.3 finishes the client's handshake first.
async fn first_call(addr: std::net::SocketAddr, config: RpcConfig) -> Result<Vec<u8>, RpcError> {
    let client = RpcClient::connect(addr, config).await?;
    client.call("test.echo", b"hi".to_vec()).await
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_configured_ca() {
    let server = TestServer::start_with(RpcConfig::dev("127.0.0.1:0").with_dev_client_auth()).await;

    let with_cert = first_call(server.addr, RpcConfig::dev("127.0.0.1:0").with_dev_client_auth()).await;
    assert_eq!(with_cert.unwrap(), b"hi");

    let without = first_call(server.addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap_err();
    assert!(matches!(without, RpcError::Tls(ref m) if m.contains("certificate")), "got {without:?}");

    // A certificate the server's CA did not sign.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["intruder".to_string()]).unwrap().self_signed(&key).unwrap();
    let identity =
        rpcnet::transport::Identity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
    let foreign = first_call(server.addr, RpcConfig::dev("127.0.0.1:0").with_client_identity(identity)).await;
    assert!(matches!(foreign, Err(RpcError::Tls(_))), "got {foreign:?}");

    // The server still serves clients that do present a good certificate.
    let again = first_call(server.addr, RpcConfig::dev("127.0.0.1:0").with_dev_client_auth()).await;
    assert_eq!(again.unwrap(), b"hi");
}

#[tokio::test]
async fn chosen_cipher_suites_are_negotiated_without_aes_128_and_must_overlap() {
    subscribe();
    use rpcnet::CipherSuite;
    let chacha = [CipherSuite::TLS13_CHACHA20_POLY1305_SHA256];
    let server = TestServer::start_with(RpcConfig::dev("127.0.0.1:0").with_cipher_suites(&chacha)).await;
    // QUIC's Initial packets use AES-128-GCM whatever the list says, so a list without it works.
    let config = RpcConfig::dev("127.0.0.1:0").with_cipher_suites(&chacha);
    let client = RpcClient::connect(server.addr, config).await.unwrap();
    assert_eq!(client.call("test.echo", b"chacha".to_vec()).await.unwrap(), b"chacha");
    let aes = [CipherSuite::TLS13_AES_256_GCM_SHA384];
    let err = first_call(server.addr, RpcConfig::dev("127.0.0.1:0").with_cipher_suites(&aes)).await.unwrap_err();
    assert!(matches!(err, RpcError::Tls(_)), "no suite in common fails the handshake: {err:?}");
}
