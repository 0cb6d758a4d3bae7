//! 0-RTT: a client that resumes a session sends idempotent calls in early data, and no
//! other call; early data the server rejects is sent again, once, after the handshake.
//! What went out in early data is read off the wire: the client connects through a UDP
//! relay that counts the QUIC 0-RTT packets (long header type 1) it forwards to the server.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::subscribe;
use rpcnet::{CallOptions, RpcClient, RpcConfig, RpcServer, ServerHandle, rpc_service};
use tokio::net::UdpSocket;

/// The 0-RTT packets in one UDP datagram, and their bytes. QUIC v1 long headers (RFC 9000,
/// section 17.2): flags, version, connection IDs, a token for Initial packets, then the
/// length of the rest of the packet, so that coalesced packets can be walked. Header
/// protection hides only the low flag bits and the packet number, not the type or lengths.
fn zero_rtt_in(mut datagram: &[u8]) -> (usize, usize) {
    fn varint(bytes: &[u8]) -> Option<(usize, usize)> {
        let len = 1 << (bytes.first()? >> 6);
        let mut value = u64::from(bytes[0] & 0x3f);
        for byte in bytes.get(1..len)? {
            value = value << 8 | u64::from(*byte);
        }
        Some((value as usize, len))
    }
    let (mut packets, mut bytes) = (0, 0);
    while let Some(&flags) = datagram.first() {
        // A short header (1-RTT) runs to the end of the datagram; Retry has no length.
        let kind = (flags >> 4) & 0b11;
        if flags & 0x80 == 0 || kind == 0b11 {
            break;
        }
        let Some(rest) = (|| {
            let mut at = 5;
            at += 1 + usize::from(*datagram.get(at)?);
            at += 1 + usize::from(*datagram.get(at)?);
            if kind == 0b00 {
                let (token, len) = varint(datagram.get(at..)?)?;
                at += len + token;
            }
            let (length, len) = varint(datagram.get(at..)?)?;
            Some((at + len, length))
        })() else {
            break;
        };
        let (header, length) = rest;
        if kind == 0b01 {
            packets += 1;
            bytes += length;
        }
        datagram = datagram.get(header + length..).unwrap_or_default();
    }
    (packets, bytes)
}

/// A UDP relay in front of a server, for one client at a time, counting the 0-RTT packets
/// (and their bytes) the client sends through it.
struct Relay {
    addr: SocketAddr,
    zero_rtt_packets: Arc<AtomicUsize>,
    zero_rtt_bytes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn new(server: SocketAddr) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        back.connect(server).await.unwrap();
        let (packets, bytes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let addr = front.local_addr().unwrap();
        let (counted_packets, counted_bytes) = (packets.clone(), bytes.clone());
        let task = tokio::spawn(async move {
            let (mut up, mut down) = (vec![0; 65_536], vec![0; 65_536]);
            let mut client = None;
            loop {
                tokio::select! {
                    received = front.recv_from(&mut up) => {
                        let (len, from) = received.unwrap();
                        client = Some(from);
                        let (p, b) = zero_rtt_in(&up[..len]);
                        counted_packets.fetch_add(p, Ordering::SeqCst);
                        counted_bytes.fetch_add(b, Ordering::SeqCst);
                        let _ = back.send(&up[..len]).await;
                    }
                    received = back.recv(&mut down) => {
                        let Ok(len) = received else { continue };
                        if let Some(client) = client {
                            let _ = front.send_to(&down[..len], client).await;
                        }
                    }
                }
            }
        });
        Self { addr, zero_rtt_packets: packets, zero_rtt_bytes: bytes, task }
    }

    fn zero_rtt(&self) -> (usize, usize) {
        (self.zero_rtt_packets.load(Ordering::SeqCst), self.zero_rtt_bytes.load(Ordering::SeqCst))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server whose `echo` counts the requests its handler ran.
async fn server(config: RpcConfig) -> (SocketAddr, ServerHandle, Arc<AtomicUsize>) {
    subscribe();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut server = RpcServer::new(config);
    let counted = runs.clone();
    server
        .register("echo", move |request| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok(request) }
        })
        .await;
    let (addr, handle) = server.spawn().unwrap();
    (addr, handle, runs)
}

fn idempotent() -> CallOptions {
    CallOptions::new().with_idempotent(true)
}

/// Connects once directly, so that `config`'s session store holds a ticket for
/// `localhost`: the server sends its tickets right after the handshake, ahead of the answer
/// to the first call.
async fn get_a_ticket(addr: SocketAddr, config: &RpcConfig) {
    let first = RpcClient::connect(addr, config.clone()).await.unwrap();
    assert_eq!(&first.call_with("echo", &b"hello"[..], CallOptions::new()).await.unwrap()[..], b"hello");
}

#[tokio::test]
async fn an_idempotent_call_on_a_resumed_connection_goes_out_in_early_data() {
    let config = RpcConfig::dev("127.0.0.1:0").with_zero_rtt(true);
    let (addr, shutdown, _) = server(config.clone()).await;
    get_a_ticket(addr, &config).await;
    let relay = Relay::new(addr).await;
    let client = RpcClient::connect(relay.addr, config.clone()).await.unwrap();
    let reply = client.call_with("echo", &b"early"[..], idempotent()).await.unwrap();
    assert_eq!(&reply[..], b"early");
    let (packets, _) = relay.zero_rtt();
    assert!(packets >= 1, "the idempotent call went out in 0-RTT packets ({packets})");
    shutdown.shutdown().await;
}

#[tokio::test]
async fn a_call_not_marked_idempotent_waits_for_the_handshake() {
    let config = RpcConfig::dev("127.0.0.1:0").with_zero_rtt(true);
    let (addr, shutdown, _) = server(config.clone()).await;
    get_a_ticket(addr, &config).await;
    let relay = Relay::new(addr).await;
    let client = RpcClient::connect(relay.addr, config.clone()).await.unwrap();
    assert_eq!(client.call("echo", b"write".to_vec()).await.unwrap(), b"write");
    assert_eq!(relay.zero_rtt(), (0, 0), "a call that is not idempotent is never sent in early data");

    // Both kinds at once on one resumed connection: early data carries the small idempotent
    // request and none of the large other one (which, sent early, would fill the first
    // flight's congestion window with some 12 KB of 0-RTT packets).
    get_a_ticket(addr, &config).await;
    let relay = Relay::new(addr).await;
    let client = RpcClient::connect(relay.addr, config.clone()).await.unwrap();
    let large = vec![7u8; 64 * 1024];
    let write = client.call_with("echo", large.clone(), CallOptions::new());
    let read = client.call_with("echo", &b"read"[..], idempotent());
    let (write, read) = tokio::join!(write, read);
    assert_eq!(write.unwrap(), large);
    assert_eq!(&read.unwrap()[..], b"read");
    let (packets, bytes) = relay.zero_rtt();
    assert!(packets >= 1, "the idempotent call went out early ({packets} packets)");
    assert!(bytes < 2_000, "only the small idempotent request went out early: {bytes} bytes of 0-RTT");
    shutdown.shutdown().await;
}

#[tokio::test]
async fn without_zero_rtt_nothing_goes_out_in_early_data() {
    let config = RpcConfig::dev("127.0.0.1:0");
    assert!(!config.zero_rtt(), "0-RTT is off by default");
    let (addr, shutdown, _) = server(config.clone()).await;
    get_a_ticket(addr, &config).await;
    let relay = Relay::new(addr).await;
    let client = RpcClient::connect(relay.addr, config.clone()).await.unwrap();
    assert_eq!(&client.call_with("echo", &b"late"[..], idempotent()).await.unwrap()[..], b"late");
    assert_eq!(relay.zero_rtt(), (0, 0));
    shutdown.shutdown().await;
}

#[tokio::test]
async fn early_data_the_server_rejects_is_sent_again_after_the_handshake() {
    let config = RpcConfig::dev("127.0.0.1:0").with_zero_rtt(true);
    let (first, first_shutdown, _) = server(config.clone()).await;
    get_a_ticket(first, &config).await;
    // Another server under the same name knows nothing of that session: it rejects the
    // early data (as a restarted server would) and completes a full handshake.
    let (other, other_shutdown, runs) = server(config.clone()).await;
    let relay = Relay::new(other).await;
    let client = RpcClient::connect(relay.addr, config.clone()).await.unwrap();
    let reply = client.call_with("echo", &b"again"[..], idempotent()).await.unwrap();
    assert_eq!(&reply[..], b"again", "the caller does not see the rejection");
    assert!(relay.zero_rtt().0 >= 1, "the call was first sent in early data");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the rejected early data never ran; the call sent again ran once");
    other_shutdown.shutdown().await;
    first_shutdown.shutdown().await;
}

#[tokio::test]
async fn zero_rtt_and_mutual_tls_on_a_server_is_refused_at_bind() {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0").with_zero_rtt(true).with_dev_client_auth());
    let err = server.bind().unwrap_err();
    assert!(err.to_string().contains("mutual TLS"), "got {err}");
}

/// A typed service: which of its calls may go out in early data follows its marks.
#[rpc_service]
pub trait Store {
    /// Safe to repeat.
    #[rpc(idempotent)]
    async fn read(&self, key: u32) -> u32;
    /// Not safe to repeat.
    async fn write(&self, key: u32) -> u32;
}

struct Doubler;

impl Store for Doubler {
    async fn read(&self, key: u32) -> u32 {
        key * 2
    }

    async fn write(&self, key: u32) -> u32 {
        key * 2
    }
}

#[tokio::test]
async fn typed_clients_send_only_methods_marked_idempotent_in_early_data() {
    subscribe();
    let config = RpcConfig::dev("127.0.0.1:0").with_zero_rtt(true);
    let mut server = RpcServer::new(config.clone());
    server.add_service(StoreServer::new(Doubler));
    let (addr, shutdown) = server.spawn().unwrap();
    let first = StoreClient::connect(addr, config.clone()).await.unwrap();
    assert_eq!(first.read(1).await.unwrap(), 2, "a first connection saves a session");

    let relay = Relay::new(addr).await;
    let client = StoreClient::connect(relay.addr, config.clone()).await.unwrap();
    assert_eq!(client.write(2).await.unwrap(), 4);
    assert_eq!(relay.zero_rtt(), (0, 0), "a method not marked idempotent waits for the handshake");

    // Over a balanced channel (one endpoint here), the mark goes the same way.
    let relay = Relay::new(addr).await;
    let balanced = StoreClient::builder().endpoints([relay.addr]).config(config.clone()).connect().await.unwrap();
    assert_eq!(balanced.read(3).await.unwrap(), 6);
    assert!(relay.zero_rtt().0 >= 1, "#[rpc(idempotent)] goes out in early data");
    shutdown.shutdown().await;
}
