//! tarpc: `echo(ByteBuf) -> ByteBuf` over plain TCP (no TLS, as tarpc is usually run) with
//! its serde transport, length-delimited bincode frames; calls multiplex on one connection,
//! and the server spawns a task per request, as tarpc's own examples do.

use std::net::SocketAddr;

use futures::StreamExt;
use serde_bytes::ByteBuf;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::LengthDelimitedCodec;
use tokio::net::{TcpListener, TcpStream};

/// The largest frame, as the other implementations allow (tarpc's default is 8 MiB).
const MAX_MESSAGE: usize = 64 << 20;

/// The benchmark's service. The payload is a `serde_bytes::ByteBuf`, which bincode writes as
/// a length and the bytes in one go; a plain `Vec<u8>` would go through serde one `u8` at
/// a time.
#[tarpc::service]
pub(crate) trait Echo {
    /// Returns the payload.
    async fn echo(payload: ByteBuf) -> ByteBuf;
}

#[derive(Clone)]
struct Mirror;

impl Echo for Mirror {
    async fn echo(self, _: tarpc::context::Context, payload: ByteBuf) -> ByteBuf {
        payload
    }
}

/// tarpc's serde transport over `stream`: length-delimited frames holding bincode.
/// TCP_NODELAY is set, as tonic does by default and the TLS stream does: Nagle's algorithm
/// would otherwise hold back the tail of a large frame.
fn transport<Item, SinkItem>(
    stream: TcpStream,
) -> tarpc::serde_transport::Transport<TcpStream, Item, SinkItem, Bincode<Item, SinkItem>>
where
    Item: for<'de> serde::Deserialize<'de>,
    SinkItem: serde::Serialize,
{
    stream.set_nodelay(true).unwrap();
    let framed = LengthDelimitedCodec::builder().max_frame_length(MAX_MESSAGE).new_framed(stream);
    tarpc::serde_transport::new(framed, Bincode::default())
}

/// Binds to a free loopback port; the returned future serves until the process ends.
pub(crate) async fn server() -> (SocketAddr, impl Future<Output = ()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let channel = BaseChannel::with_defaults(transport(stream));
            tokio::spawn(channel.execute(Mirror.serve()).for_each(|response| async move {
                tokio::spawn(response);
            }));
        }
    };
    (addr, serve)
}

/// One connection; its dispatch runs as a task of the current runtime.
pub(crate) async fn connect(addr: SocketAddr) -> EchoClient {
    let stream = TcpStream::connect(addr).await.unwrap();
    EchoClient::new(tarpc::client::Config::default(), transport(stream)).spawn()
}

/// One call with tarpc's default context (a 10 s deadline); returns the length of the echo.
pub(crate) async fn echo(client: &EchoClient, payload: Vec<u8>) -> usize {
    client.echo(tarpc::context::current(), ByteBuf::from(payload)).await.unwrap().len()
}
