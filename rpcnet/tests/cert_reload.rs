//! Certificate reload without a restart: a server's certificate (new handshakes see the new
//! one, open connections keep theirs, a bad identity changes nothing), and a client's trust.

mod common;

use common::TestServer;
use rpcnet::transport::{DevPki, Identity};
use rpcnet::{RpcClient, RpcConfig, RpcError};

/// A client of the dev CA expecting `name` in the server's certificate.
async fn connect_as(server: &TestServer, name: &str) -> Result<RpcClient, RpcError> {
    RpcClient::connect(server.addr, RpcConfig::dev("127.0.0.1:0").with_server_name(name)).await
}

#[tokio::test]
async fn new_handshakes_present_the_reloaded_certificate_while_open_connections_keep_working() {
    let server = TestServer::start().await;
    let before = connect_as(&server, "localhost").await.unwrap();
    assert_eq!(before.call("test.echo", b"one".to_vec()).await.unwrap(), b"one");
    let err = connect_as(&server, "alpha.test").await.unwrap_err();
    assert!(matches!(err, RpcError::Tls(_)), "the first certificate is for localhost only: {err:?}");

    server.shutdown.reload_identity(DevPki::get().issue("alpha.test").unwrap()).unwrap();

    let after = connect_as(&server, "alpha.test").await.expect("a new client is shown the new certificate");
    assert_eq!(after.call("test.echo", b"two".to_vec()).await.unwrap(), b"two");
    let err = connect_as(&server, "localhost").await.unwrap_err();
    assert!(matches!(err, RpcError::Tls(_)), "the old certificate is no longer presented: {err:?}");
    // Had it reconnected, the client expecting localhost would have failed as just above.
    assert_eq!(
        before.call("test.echo", b"three".to_vec()).await.unwrap(),
        b"three",
        "an open connection keeps working"
    );
    assert!(before.is_connected());

    // Back to the localhost certificate, from PEM files as an operator would rotate them.
    let dir = std::env::temp_dir().join(format!("rpcnet-cert-reload-{}", std::process::id()));
    DevPki::get().write_pem_files(&dir).unwrap();
    let (cert, key) =
        (std::fs::read(dir.join("server.pem")).unwrap(), std::fs::read(dir.join("server-key.pem")).unwrap());
    server.shutdown.reload_certificate(cert, key).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let again = connect_as(&server, "localhost").await.expect("the PEM certificate is presented");
    assert_eq!(again.call("test.echo", b"four".to_vec()).await.unwrap(), b"four");
}

#[tokio::test]
async fn a_mismatched_key_or_bad_pem_is_refused_and_the_certificate_in_service_stays() {
    let server = TestServer::start().await;
    // A certificate for alpha.test and the key of another certificate: they do not belong together.
    let own_key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["alpha.test".to_owned()]).unwrap().self_signed(&own_key).unwrap();
    let other_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let err = server.shutdown.reload_certificate(cert.pem(), &other_key).await.unwrap_err();
    assert!(matches!(err, RpcError::Config(ref m) if m.contains("do not form a usable identity")), "got {err:?}");
    let mismatched = Identity::from_pem(cert.pem().as_bytes(), other_key.as_bytes()).unwrap();
    let err = server.shutdown.reload_identity(mismatched).unwrap_err();
    assert!(matches!(err, RpcError::Config(ref m) if m.contains("do not form a usable identity")), "got {err:?}");
    let err = server.shutdown.reload_certificate(b"not a certificate", b"not a key").await.unwrap_err();
    assert!(matches!(err, RpcError::Config(_)), "got {err:?}");

    let client = connect_as(&server, "localhost").await.expect("the first certificate is still presented");
    assert_eq!(client.call("test.echo", b"still".to_vec()).await.unwrap(), b"still");
    assert!(matches!(connect_as(&server, "alpha.test").await, Err(RpcError::Tls(_))), "alpha was never installed");
}

#[tokio::test]
async fn a_server_not_yet_bound_has_no_certificate_to_replace() {
    let server = rpcnet::RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    let err = server.handle().reload_identity(DevPki::get().issue("x.test").unwrap()).unwrap_err();
    assert!(matches!(err, RpcError::Config(ref m) if m.contains("not bound")), "got {err:?}");
}

#[tokio::test]
async fn a_client_reconnects_with_the_trust_it_was_given_last() {
    let server = TestServer::start().await;
    let client = server.client().await;
    assert_eq!(client.call("test.echo", b"trusted".to_vec()).await.unwrap(), b"trusted");
    // A certificate that did not sign the server's: trusting only it must fail the next handshake.
    let stranger = DevPki::get().issue("stranger").unwrap().chain().to_vec();
    client.reload_trust(stranger).unwrap();
    assert_eq!(client.call("test.echo", b"open".to_vec()).await.unwrap(), b"open", "the open connection stays");
    client.close();
    let err = client.call("test.echo", b"x".to_vec()).await.unwrap_err();
    assert!(
        matches!(err, RpcError::Tls(_)),
        "the new trust applies to the next connection (no resumed session): {err:?}"
    );
    client.reload_trust(vec![DevPki::get().ca_certificate().clone()]).unwrap();
    assert_eq!(client.call("test.echo", b"again".to_vec()).await.unwrap(), b"again");
    assert!(matches!(client.reload_trust(Vec::new()), Err(RpcError::Config(_))), "an empty trust list is refused");
}
