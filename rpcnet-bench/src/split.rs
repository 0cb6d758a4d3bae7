//! A UDP socket that splits a send larger than one UDP datagram may be into several sends.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

/// The largest payload one `sendmsg` of UDP carries on IPv4: 65,535 less the IP and UDP
/// headers. A GSO batch is one such send.
const MAX_SEND: usize = 65_507;

#[derive(Debug)]
pub(crate) struct SplitSends(pub(crate) Arc<dyn AsyncUdpSocket>);

impl AsyncUdpSocket for SplitSends {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.0.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        let segment = match transmit.segment_size {
            Some(segment) if transmit.contents.len() > MAX_SEND => segment,
            _ => return self.0.try_send(transmit),
        };
        let per_send = (MAX_SEND / segment).max(1) * segment;
        for chunk in transmit.contents.chunks(per_send) {
            let part = Transmit {
                destination: transmit.destination,
                ecn: transmit.ecn,
                contents: chunk,
                segment_size: (chunk.len() > segment).then_some(segment),
                src_ip: transmit.src_ip,
            };
            self.0.try_send(&part)?;
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.0.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.0.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.0.may_fragment()
    }
}
