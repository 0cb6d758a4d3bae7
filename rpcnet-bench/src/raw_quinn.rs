//! The limit of this design on this machine: quinn with one stream per call, no framework.
//! The server echoes each stream's bytes; the client writes, finishes, and reads to the end.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Tuning;

const MAX_MESSAGE: usize = 64 * 1024 * 1024;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The same socket and transport settings rpcnet uses, so only the framework differs
/// (`--stock-quinn`: quinn's own defaults, as rpcnet had before it tuned them).
fn endpoint(addr: SocketAddr, server: Option<quinn::ServerConfig>, tuning: &Tuning) -> quinn::Endpoint {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    socket.set_recv_buffer_size(4 << 20).unwrap();
    socket.set_send_buffer_size(4 << 20).unwrap();
    socket.bind(&addr.into()).unwrap();
    let mut config = quinn::EndpointConfig::default();
    match tuning.max_udp_payload {
        Some(size) => config.max_udp_payload_size(size).unwrap(),
        None if !tuning.stock_quinn => config.max_udp_payload_size(MTU_UPPER_BOUND).unwrap(),
        None => &mut config,
    };
    let runtime = Arc::new(quinn::TokioRuntime);
    let socket = quinn::Runtime::wrap_udp_socket(&*runtime, socket.into()).unwrap();
    let socket: Arc<dyn quinn::AsyncUdpSocket> =
        if tuning.stock_quinn { socket } else { Arc::new(rpcnet::transport::SplitSends::new(socket)) };
    quinn::Endpoint::new_with_abstract_socket(config, server, socket, runtime).unwrap()
}

// rpcnet's defaults (rpcnet/src/transport/endpoint.rs and RpcConfig::new), which explain them.
const MTU_UPPER_BOUND: u16 = 65_527;
const RECEIVE_WINDOW: u32 = 4 << 20;
const STREAM_RECEIVE_WINDOW: u32 = 2 << 20;
const ACK_ELICITING_THRESHOLD: u32 = 3;

fn transport(tuning: &Tuning, server: bool) -> Arc<quinn::TransportConfig> {
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(if server { 256u32 } else { 0u32 }.into());
    transport.max_concurrent_uni_streams(0u32.into());
    if let Some(size) = tuning.max_udp_payload {
        transport.initial_mtu(size);
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(size);
        transport.mtu_discovery_config(Some(mtu));
        let mut cubic = quinn::congestion::CubicConfig::default();
        cubic.initial_window(10 * u64::from(size));
        transport.congestion_controller_factory(Arc::new(cubic));
    }
    if tuning.stock_quinn {
        return Arc::new(transport);
    }
    if tuning.max_udp_payload.is_none() {
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(MTU_UPPER_BOUND);
        transport.mtu_discovery_config(Some(mtu));
    }
    transport.receive_window(RECEIVE_WINDOW.into());
    transport.stream_receive_window(STREAM_RECEIVE_WINDOW.into());
    transport.send_window(RECEIVE_WINDOW.into());
    let mut ack = quinn::AckFrequencyConfig::default();
    ack.ack_eliciting_threshold(ACK_ELICITING_THRESHOLD.into());
    transport.ack_frequency_config(Some(ack));
    Arc::new(transport)
}

pub(crate) fn server(cert_dir: &Path, tuning: &Tuning) -> quinn::Endpoint {
    let chain =
        CertificateDer::pem_file_iter(cert_dir.join("server.pem")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(cert_dir.join("server-key.pem")).unwrap();
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    tls.alpn_protocols = vec![b"bench".to_vec()];
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls).unwrap()));
    config.transport_config(transport(tuning, true));
    endpoint("127.0.0.1:0".parse().unwrap(), Some(config), tuning)
}

pub(crate) async fn serve(endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                tokio::spawn(async move {
                    let Ok(request) = recv.read_to_end(MAX_MESSAGE).await else { return };
                    if send.write_chunk(Bytes::from(request)).await.is_ok() {
                        let _ = send.finish();
                    }
                });
            }
        });
    }
}

pub(crate) struct Client {
    conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr, cert_dir: &Path, tuning: &Tuning) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cert_dir.join("ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"bench".to_vec()];
        let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
        config.transport_config(transport(tuning, false));
        let mut endpoint = endpoint("127.0.0.1:0".parse().unwrap(), None, tuning);
        endpoint.set_default_client_config(config);
        let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
        Self { conn, _endpoint: endpoint }
    }

    /// Packets both ways, lost packets and path MTU of the connection so far.
    pub(crate) fn stats(&self) -> String {
        let s = self.conn.stats();
        format!(
            "tx={} rx={} tx_ios={} rx_ios={} lost={} mtu={} cwnd={} congestion_events={}",
            s.udp_tx.datagrams,
            s.udp_rx.datagrams,
            s.udp_tx.ios,
            s.udp_rx.ios,
            s.path.lost_packets,
            s.path.current_mtu,
            s.path.cwnd,
            s.path.congestion_events
        )
    }

    pub(crate) async fn echo(&self, payload: Bytes) -> usize {
        let (mut send, mut recv) = self.conn.open_bi().await.unwrap();
        send.write_chunk(payload).await.unwrap();
        send.finish().unwrap();
        recv.read_to_end(MAX_MESSAGE).await.unwrap().len()
    }
}
