//! `SplitSends`: quinn's UDP socket, except that a batch of packets longer than one UDP
//! send may carry goes out as several sends instead of being refused by the kernel and
//! silently lost.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

/// The largest payload one UDP send carries on IPv4: 65,535 less the IP and UDP headers.
const MAX_UDP_SEND: usize = 65_507;

/// quinn's socket with one change: a batch of packets (one GSO send) longer than one UDP
/// send may carry is sent in parts. quinn batches up to 10 packets of the path MTU, so past
/// 6.5 KB packets a batch can exceed 64 KB; the kernel refuses such a send with EMSGSIZE,
/// which quinn takes for a lost MTU probe and drops silently: every packet of the batch is
/// lost. That was why 64 calls in flight ran slower than 1 with 65,000-byte packets.
///
/// rpcnet's endpoints all use it; it is public for programs that drive quinn themselves
/// (the benchmark's raw quinn runs on it, so that it stays the limit of rpcnet's design).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use std::sync::Arc;
/// use quinn::Runtime;
/// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// let socket = quinn::TokioRuntime.wrap_udp_socket(socket)?;
/// let socket: Arc<dyn quinn::AsyncUdpSocket> = Arc::new(rpcnet::transport::SplitSends::new(socket));
/// # drop(socket);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SplitSends(Arc<dyn AsyncUdpSocket>);

impl SplitSends {
    /// `socket`, with batches longer than one UDP send sent in parts.
    pub fn new(socket: Arc<dyn AsyncUdpSocket>) -> Self {
        Self(socket)
    }
}

impl AsyncUdpSocket for SplitSends {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.0.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        let segment = match transmit.segment_size {
            Some(segment) if transmit.contents.len() > MAX_UDP_SEND => segment,
            _ => return self.0.try_send(transmit),
        };
        let per_send = (MAX_UDP_SEND / segment).max(1) * segment;
        for part in transmit.contents.chunks(per_send) {
            // A part that would block fails the whole transmit: quinn sends it again later,
            // and the receiver drops the packets it already has as duplicates.
            self.0.try_send(&Transmit {
                destination: transmit.destination,
                ecn: transmit.ecn,
                contents: part,
                segment_size: (part.len() > segment).then_some(segment),
                src_ip: transmit.src_ip,
            })?;
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.0.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.0.max_receive_segments()
    }

    // quinn runs MTU discovery only on sockets that set "don't fragment".
    fn may_fragment(&self) -> bool {
        self.0.may_fragment()
    }
}
