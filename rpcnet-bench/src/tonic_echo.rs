//! tonic: a gRPC unary `Echo` of a protobuf `bytes` field over HTTP/2 and TLS (rustls, ring),
//! one HTTP/2 connection per client; stubs come from `build.rs` (tonic-build's `manual`
//! builder, no protoc) and the message is a hand-written prost struct.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

/// The stubs `build.rs` wrote: `echo_client::EchoClient` and `echo_server::{Echo, EchoServer}`.
#[allow(unreachable_pub, missing_docs, missing_debug_implementations, clippy::all)]
mod stubs {
    include!(concat!(env!("OUT_DIR"), "/bench.Echo.rs"));
}

use stubs::echo_client::EchoClient;
use stubs::echo_server::{Echo, EchoServer};

/// The request and the response: one `bytes` field, decoded into `Bytes` (a slice of the
/// receive buffer, not a copy).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EchoMessage {
    #[prost(bytes = "bytes", tag = "1")]
    pub(crate) payload: Bytes,
}

/// tonic's limits are 4 MiB to decode; the bench allows what the rpcnet impls allow.
const MAX_MESSAGE: usize = 64 << 20;

// HTTP/2 flow control. hyper's defaults (1 MiB per stream and per connection on the server)
// would make every call of 1 MiB wait for a WINDOW_UPDATE, and 16 such calls in flight share
// one connection window. A stream window of 4 MiB holds the largest message of the default
// grid whole; a connection window of 64 MiB holds every byte in flight in the grid (64 x
// 256 KiB or 16 x 1 MiB = 16 MiB) four times over, so on loopback flow control never stalls
// a sender, as QUIC's windows do not in the quinn and rpcnet runs. BDP-adaptive windows stay
// off: their pings would make the windows depend on timing. Frames keep h2's 16 KiB default,
// which is what tonic users get and the size of a TLS record anyway.
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 64 << 20;

struct Mirror;

#[tonic::async_trait]
impl Echo for Mirror {
    async fn echo(&self, request: tonic::Request<EchoMessage>) -> Result<tonic::Response<EchoMessage>, tonic::Status> {
        Ok(tonic::Response::new(request.into_inner()))
    }
}

/// Binds to a free loopback port; the returned future serves until the process ends.
pub(crate) async fn server(cert_dir: &Path) -> (SocketAddr, impl Future<Output = ()>) {
    let cert = std::fs::read(cert_dir.join("server.pem")).unwrap();
    let key = std::fs::read(cert_dir.join("server-key.pem")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    // rustls negotiates TLS 1.3 (both ends offer it; tonic's safe defaults also allow 1.2).
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    let service = EchoServer::new(Mirror).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE);
    let router = Server::builder()
        .tls_config(tls)
        .unwrap()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_adaptive_window(Some(false))
        .add_service(service);
    (addr, async move { router.serve_with_incoming(incoming).await.unwrap() })
}

/// One HTTP/2 connection; callers clone the client (a handle on the same connection).
pub(crate) async fn connect(addr: SocketAddr, cert_dir: &Path) -> EchoClient<Channel> {
    let ca = std::fs::read(cert_dir.join("ca.pem")).unwrap();
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_adaptive_window(false)
        .connect()
        .await
        .unwrap();
    EchoClient::new(channel).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE)
}

/// One call; returns the length of the echo.
pub(crate) async fn echo(client: &EchoClient<Channel>, payload: Bytes) -> usize {
    let reply = client.clone().echo(EchoMessage { payload }).await.unwrap();
    reply.into_inner().payload.len()
}
