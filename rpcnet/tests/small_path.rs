//! Packet sizes on the path: calls work where only 1,200-byte datagrams get through and
//! where a path shrinks under a live connection; on loopback packets grow past Ethernet's
//! size and stay large under many calls at once.
//! A UDP relay on 127.0.0.1 between client and server forwards datagrams up to a cap
//! (changeable at run time) and drops larger ones, recording the sizes it saw.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::TestServer;
use rpcnet::{RpcClient, RpcConfig};
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// QUIC's minimum datagram size, which every path must carry.
const MIN_PATH: usize = 1200;
/// Ethernet's UDP payload over IPv6, quinn's own discovery bound.
const ETHERNET: usize = 1452;

/// What the relay saw, per direction (0: client to server, 1: server to client).
#[derive(Default)]
struct Seen {
    largest_forwarded: [AtomicUsize; 2],
    dropped: [AtomicUsize; 2],
}

/// A relay on 127.0.0.1: the client talks to `addr`, the relay to the server. Datagrams with
/// more than `cap` bytes of UDP payload are dropped; the task ends with the relay.
struct Relay {
    addr: SocketAddr,
    cap: Arc<AtomicUsize>,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback UDP socket with buffers large enough for 1 MiB bursts: a drop here would be
/// the relay's, not the path's.
fn socket() -> UdpSocket {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    UdpSocket::from_std(socket.into()).unwrap()
}

impl Relay {
    fn start(server: SocketAddr, cap: usize) -> Self {
        let (front, back) = (socket(), socket());
        let addr = front.local_addr().unwrap();
        let cap = Arc::new(AtomicUsize::new(cap));
        let seen = Arc::new(Seen::default());
        let (task_cap, task_seen) = (cap.clone(), seen.clone());
        let task = tokio::spawn(async move {
            // `back` talks to the server only: connected, it hears nothing else.
            back.connect(server).await.unwrap();
            let forward = |direction: usize, len: usize| {
                if len > task_cap.load(Ordering::SeqCst) {
                    task_seen.dropped[direction].fetch_add(1, Ordering::SeqCst);
                    false
                } else {
                    task_seen.largest_forwarded[direction].fetch_max(len, Ordering::SeqCst);
                    true
                }
            };
            let (mut up, mut down) = (vec![0u8; 65_536], vec![0u8; 65_536]);
            let mut client = None;
            loop {
                tokio::select! {
                    Ok((len, from)) = front.recv_from(&mut up) => {
                        client = Some(from);
                        if forward(0, len) {
                            let _ = back.send(&up[..len]).await;
                        }
                    }
                    Ok(len) = back.recv(&mut down) => {
                        if let Some(client) = client && forward(1, len) {
                            let _ = front.send_to(&down[..len], client).await;
                        }
                    }
                }
            }
        });
        Self { addr, cap, seen, task }
    }

    fn largest(&self, direction: usize) -> usize {
        self.seen.largest_forwarded[direction].load(Ordering::SeqCst)
    }
}

async fn client_through(relay: &Relay) -> RpcClient {
    timeout(Duration::from_secs(10), RpcClient::connect(relay.addr, RpcConfig::dev("127.0.0.1:0")))
        .await
        .expect("connect in time")
        .expect("client connects through the relay")
}

/// An echo of `len` bytes that must come back whole within 30 s.
async fn echo(client: &RpcClient, len: usize) {
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let reply = timeout(Duration::from_secs(30), client.call("test.echo", payload.clone()))
        .await
        .unwrap_or_else(|_| panic!("a {len}-byte echo timed out"))
        .unwrap_or_else(|e| panic!("a {len}-byte echo failed: {e}"));
    assert!(reply == payload, "a {len}-byte echo came back changed");
}

/// Calls until packets larger than `size` have gone both ways, at most `calls` of them;
/// true if they did.
async fn grow_past(client: &RpcClient, relay: &Relay, size: usize, calls: usize) -> bool {
    for _ in 0..calls {
        if relay.largest(0) > size && relay.largest(1) > size {
            return true;
        }
        echo(client, 64 * 1024).await;
    }
    relay.largest(0) > size && relay.largest(1) > size
}

#[tokio::test]
async fn calls_work_on_a_path_that_carries_only_1200_byte_datagrams() {
    let server = TestServer::start().await;
    let relay = Relay::start(server.addr, MIN_PATH);
    let client = client_through(&relay).await;
    for len in [64, 16 * 1024, 1024 * 1024] {
        echo(&client, len).await;
    }
    assert!(relay.largest(0) <= MIN_PATH && relay.largest(1) <= MIN_PATH);
}

#[tokio::test]
async fn a_path_that_shrinks_under_a_connection_falls_back_to_1200_bytes() {
    let server = TestServer::start().await;
    let relay = Relay::start(server.addr, usize::MAX);
    let client = client_through(&relay).await;
    assert!(grow_past(&client, &relay, ETHERNET, 200).await, "packets must first grow past {ETHERNET} bytes");
    // Now the path carries only the minimum: the larger packets in flight are lost, black-hole
    // detection must bring both ends back to 1,200 bytes, and calls go on.
    relay.cap.store(MIN_PATH, Ordering::SeqCst);
    for len in [64, 16 * 1024, 1024 * 1024] {
        echo(&client, len).await;
    }
    let dropped = |d: usize| relay.seen.dropped[d].load(Ordering::SeqCst);
    assert!(dropped(0) + dropped(1) > 0, "the relay must have dropped the larger packets");
}

#[tokio::test]
async fn packets_grow_past_ethernet_size_on_loopback() {
    let server = TestServer::start().await;
    let relay = Relay::start(server.addr, usize::MAX);
    let client = client_through(&relay).await;
    // quinn's own discovery stops at 1,452 bytes; the default bound must take loopback far
    // past that, both ways (each end discovers its own direction).
    assert!(
        grow_past(&client, &relay, 8 * 1024, 200).await,
        "largest datagrams seen: {} client to server, {} server to client",
        relay.largest(0),
        relay.largest(1)
    );
}

#[tokio::test]
async fn many_calls_at_once_keep_large_packets() {
    let server = TestServer::start().await;
    let relay = Relay::start(server.addr, usize::MAX);
    let client = client_through(&relay).await;
    assert!(grow_past(&client, &relay, 8 * 1024, 200).await, "packets must first grow past 8 KiB");
    // 64 calls of 16 KiB at once make quinn batch up to 10 large packets in one send, past
    // the 64 KB one UDP send may carry: unsplit, the kernel refuses the send, every packet of
    // it is lost, and black-hole detection takes the connection down to 1,200 bytes.
    for _ in 0..5 {
        futures::future::join_all((0..64).map(|_| echo(&client, 16 * 1024))).await;
    }
    for direction in &relay.seen.largest_forwarded {
        direction.store(0, Ordering::SeqCst);
    }
    echo(&client, 64 * 1024).await;
    assert!(
        relay.largest(0) > 8 * 1024 && relay.largest(1) > 8 * 1024,
        "after the burst, largest datagrams: {} client to server, {} server to client",
        relay.largest(0),
        relay.largest(1)
    );
}
