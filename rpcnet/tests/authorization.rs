//! Authorization under mutual TLS: two clients with certificates from one CA, an access
//! policy that lets only one of them write, a closure check, and what a refused client
//! sees (PermissionDenied, not retry-safe, its connection still serving).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::subscribe;
use futures::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rpcnet::server::{AccessPolicy, Authorize, Context, Denied};
use rpcnet::transport::Identity;
use rpcnet::{CallOptions, ErrorKind, Metadata, RpcClient, RpcConfig, RpcError, RpcServer, ServerHandle};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA of the test's own, which signs the clients' certificates.
struct ClientCa {
    certificate: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl ClientCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "authorization test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap().der().clone();
        Self { certificate, issuer: Issuer::new(params, key) }
    }

    /// A client certificate with common name `name`, the DNS name `name.clients.test` and
    /// the given URIs.
    fn client(&self, name: &str, uris: &[&str]) -> Identity {
        let mut params = CertificateParams::new(vec![format!("{name}.clients.test")]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "rpcnet tests");
        params.distinguished_name.push(DnType::CommonName, name);
        for uri in uris {
            params.subject_alt_names.push(SanType::URI((*uri).try_into().unwrap()));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Identity::new(
            vec![certificate.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }

    fn server_config(&self) -> RpcConfig {
        RpcConfig::dev("127.0.0.1:0").with_client_ca_certificates(vec![self.certificate.clone()])
    }
}

/// How many times each handler ran.
#[derive(Default)]
struct Runs {
    read: Arc<AtomicUsize>,
    write: Arc<AtomicUsize>,
}

/// A server with `Svc.read`, `Svc.write` (both counting their runs in `runs`) and
/// `Svc.whoami`, which answers with what the call's context says of the client.
async fn start(config: RpcConfig, check: Option<impl Authorize>, runs: &Runs) -> (SocketAddr, ServerHandle) {
    subscribe();
    let mut server = RpcServer::new(config);
    let read = runs.read.clone();
    server
        .register("Svc.read", move |request| {
            read.fetch_add(1, Ordering::SeqCst);
            async move { Ok(request) }
        })
        .await;
    let write = runs.write.clone();
    server
        .register("Svc.write", move |_request| {
            write.fetch_add(1, Ordering::SeqCst);
            async move { Ok(b"written".to_vec()) }
        })
        .await;
    server
        .register("Svc.whoami", |_request| async move {
            let context = Context::current().expect("a handler runs inside its call");
            let identity = context.peer_identity().expect("under mutual TLS the client has an identity");
            let mut names = vec![identity.subject().to_owned(), identity.common_name().unwrap_or("-").to_owned()];
            names.extend(identity.dns_names().iter().cloned());
            names.extend(identity.uris().iter().cloned());
            Ok(names.join("|").into_bytes())
        })
        .await;
    if let Some(check) = check {
        server.set_authorization(check).expect("a valid check");
    }
    server.spawn().expect("server binds to a loopback port")
}

fn client_config(identity: Identity) -> RpcConfig {
    RpcConfig::dev("127.0.0.1:0").with_client_identity(identity)
}

/// `Svc.read` for both clients, `Svc.write` for `allowed-client` only.
fn policy() -> AccessPolicy {
    AccessPolicy::new()
        .allow_service("Svc", ["allowed-client", "other-client.clients.test"])
        .allow_method("Svc.write", ["allowed-client"])
}

#[tokio::test]
async fn only_the_allowed_client_writes_and_the_refused_one_keeps_its_connection() {
    let ca = ClientCa::new();
    let runs = Runs::default();
    let (addr, server) = start(ca.server_config(), Some(policy()), &runs).await;
    let allowed = RpcClient::connect(addr, client_config(ca.client("allowed-client", &[]))).await.unwrap();
    let other = RpcClient::connect(addr, client_config(ca.client("other-client", &[]))).await.unwrap();

    assert_eq!(allowed.call("Svc.write", b"x".to_vec()).await.unwrap(), b"written");
    assert_eq!(runs.write.load(Ordering::SeqCst), 1);

    let refused = other.call("Svc.write", b"x".to_vec()).await.unwrap_err();
    let RpcError::PermissionDenied(ref message) = refused else { panic!("expected PermissionDenied, got {refused:?}") };
    assert!(
        message.contains("`Svc.write`") && message.contains("CN=other-client"),
        "names method and client: {message}"
    );
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied);
    assert!(!refused.is_retry_safe(), "another server with the same policy refuses it too");
    assert_eq!(runs.write.load(Ordering::SeqCst), 1, "the refused call's handler never ran");

    // The refusal ends the call, not the connection: the same client reads on it.
    assert_eq!(other.call("Svc.read", b"after".to_vec()).await.unwrap(), b"after");
    assert_eq!(allowed.call("Svc.read", b"too".to_vec()).await.unwrap(), b"too");
    assert_eq!(runs.read.load(Ordering::SeqCst), 2);
    assert_eq!(server.in_flight_calls(), 0, "a refused call takes no place in flight");
    server.shutdown().await;
}

#[tokio::test]
async fn a_handler_reads_the_identity_in_the_client_certificate() {
    let ca = ClientCa::new();
    let (addr, server) = start(ca.server_config(), Some(AccessPolicy::new().allow_unlisted()), &Runs::default()).await;
    let identity = ca.client("allowed-client", &["spiffe://rpcnet.test/billing"]);
    let client = RpcClient::connect(addr, client_config(identity)).await.unwrap();
    let seen = String::from_utf8(client.call("Svc.whoami", Vec::new()).await.unwrap()).unwrap();
    assert_eq!(
        seen,
        "CN=allowed-client,O=rpcnet tests|allowed-client|allowed-client.clients.test|spiffe://rpcnet.test/billing"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_closure_check_refuses_by_identity_and_health_checks_always_pass() {
    let ca = ClientCa::new();
    let runs = Runs::default();
    // Only workloads of one trust domain may call, whatever their names.
    let check = |call: &Context| -> Result<(), Denied> {
        let in_domain = call
            .peer_identity()
            .is_some_and(|identity| identity.uris().iter().any(|uri| uri.starts_with("spiffe://rpcnet.test/")));
        if in_domain { Ok(()) } else { Err(Denied::new(format!("{} is for rpcnet.test workloads", call.method()))) }
    };
    let (addr, server) = start(ca.server_config(), Some(check), &runs).await;
    let inside = RpcClient::connect(addr, client_config(ca.client("a", &["spiffe://rpcnet.test/a"]))).await.unwrap();
    let outside = RpcClient::connect(addr, client_config(ca.client("b", &["spiffe://elsewhere/b"]))).await.unwrap();

    assert_eq!(inside.call("Svc.read", b"in".to_vec()).await.unwrap(), b"in");
    let refused = outside.call("Svc.read", b"out".to_vec()).await.unwrap_err();
    assert!(
        matches!(refused, RpcError::PermissionDenied(ref m) if m == "Svc.read is for rpcnet.test workloads"),
        "the check's own message reaches the caller: {refused:?}"
    );
    assert_eq!(runs.read.load(Ordering::SeqCst), 1);
    outside.ping(Duration::from_secs(5)).await.expect("the built-in ping passes every check");
    server.shutdown().await;
}

#[tokio::test]
async fn a_closure_check_combines_the_policy_with_a_rule_on_metadata() {
    let ca = ClientCa::new();
    let runs = Runs::default();
    let policy = policy();
    // Writes must say why, on top of what the policy allows.
    let check = move |call: &Context| -> Result<(), Denied> {
        policy.authorize(call)?;
        match (call.method(), call.metadata().get_str("reason")) {
            ("Svc.write", None) => Err(Denied::new("`Svc.write` needs a `reason` entry")),
            _ => Ok(()),
        }
    };
    let (addr, server) = start(ca.server_config(), Some(check), &runs).await;
    let allowed = RpcClient::connect(addr, client_config(ca.client("allowed-client", &[]))).await.unwrap();

    let refused = allowed.call("Svc.write", Vec::new()).await.unwrap_err();
    assert!(matches!(refused, RpcError::PermissionDenied(ref m) if m.contains("reason")), "got {refused:?}");
    let mut metadata = Metadata::new();
    metadata.insert("reason", "ticket 7").unwrap();
    let written = allowed.call_with("Svc.write", Vec::new(), CallOptions::new().with_metadata(metadata)).await;
    assert_eq!(written.unwrap(), b"written".as_slice());
    assert_eq!(runs.write.load(Ordering::SeqCst), 1, "only the call with a reason ran");
    server.shutdown().await;
}

#[tokio::test]
async fn streaming_calls_are_refused_before_their_handler_reads_a_request() {
    let ca = ClientCa::new();
    let uploads = Arc::new(AtomicUsize::new(0));
    subscribe();
    let mut server = RpcServer::new(ca.server_config());
    let started = uploads.clone();
    server
        .register_client_streaming("Svc.upload", move |_requests| {
            started.fetch_add(1, Ordering::SeqCst);
            async move { Ok(Vec::new()) }
        })
        .await;
    server.register_streaming("Svc.chat", |requests| async move { requests.map(Ok) }).await;
    server.set_authorization(policy()).unwrap();
    let (addr, handle) = server.spawn().unwrap();
    let other = RpcClient::connect(addr, client_config(ca.client("outsider", &[]))).await.unwrap();

    let upload = futures::stream::iter(vec![vec![7; 64 * 1024]; 16]);
    let refused = other.call_client_streaming("Svc.upload", upload).await;
    assert!(matches!(refused, Err(RpcError::PermissionDenied(_))), "got {refused:?}");
    let mut chat = other.call_streaming("Svc.chat", futures::stream::iter([b"hi".to_vec()])).await.unwrap();
    let first = chat.next().await.expect("one item: the refusal");
    assert!(matches!(first, Err(RpcError::PermissionDenied(ref m)) if m.contains("`Svc.chat`")), "got {first:?}");
    assert_eq!(uploads.load(Ordering::SeqCst), 0);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_policy_refuses_every_call_of_a_client_without_a_certificate() {
    // A server without mutual TLS: its clients have no identity to match.
    let runs = Runs::default();
    let (addr, server) = start(RpcConfig::dev("127.0.0.1:0"), Some(AccessPolicy::new().allow_unlisted()), &runs).await;
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let refused = client.call("Svc.read", b"x".to_vec()).await.unwrap_err();
    assert!(matches!(refused, RpcError::PermissionDenied(ref m) if m.contains("certificate")), "got {refused:?}");
    assert_eq!(runs.read.load(Ordering::SeqCst), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_check_every_client_calls_every_method() {
    let ca = ClientCa::new();
    let runs = Runs::default();
    let (addr, server) = start(ca.server_config(), None::<AccessPolicy>, &runs).await;
    let other = RpcClient::connect(addr, client_config(ca.client("other-client", &[]))).await.unwrap();
    assert_eq!(other.call("Svc.write", Vec::new()).await.unwrap(), b"written");
    server.shutdown().await;
}

#[tokio::test]
async fn a_policy_with_an_empty_name_is_refused_when_set() {
    subscribe();
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    let err = server.set_authorization(policy().allow_method("Svc.delete", ["admin", ""])).unwrap_err();
    assert!(
        matches!(err, RpcError::Config(ref m) if m.contains("allow_method") && m.contains("`Svc.delete`")),
        "the error names the setter and the rule: {err:?}"
    );
}
