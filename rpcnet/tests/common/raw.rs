//! A raw QUIC client that speaks the wire format by hand, to send what RpcClient never would.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::crypto::rustls::QuicClientConfig;
use rpcnet::transport::DevPki;
use rpcnet::wire::{CallKind, FrameHeader, FrameTag, Limits, RequestHead, decode_status};

pub struct RawConnection {
    pub endpoint: quinn::Endpoint,
    pub connection: quinn::Connection,
}

pub async fn connect(addr: SocketAddr) -> RawConnection {
    connect_from("127.0.0.1", addr).await.expect("the server accepts the connection")
}

/// A connection from another loopback address (all of 127/8 is loopback), as a different
/// peer would make it; the server's refusal is returned.
pub async fn connect_from(local: &str, addr: SocketAddr) -> Result<RawConnection, quinn::ConnectionError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(DevPki::get().ca_certificate().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"rpcnet/1".to_vec()];
    let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    let mut endpoint = quinn::Endpoint::client(format!("{local}:0").parse().unwrap()).unwrap();
    endpoint.set_default_client_config(config);
    let connection = endpoint.connect(addr, "localhost").unwrap().await?;
    Ok(RawConnection { endpoint, connection })
}

/// A request head for `method` as bytes.
pub fn head(kind: CallKind, method: &str, deadline_ms: Option<u64>) -> Vec<u8> {
    let mut head = RequestHead::new(kind, method);
    head.deadline = deadline_ms.map(std::time::Duration::from_millis);
    let mut out = Vec::new();
    head.encode(&Limits::default(), &mut out).unwrap();
    out
}

/// The header of a MESSAGE frame of `len` bytes.
pub fn frame_header(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader::new(FrameTag::Message, len, u32::MAX).unwrap().encode(&mut out);
    out
}

/// A MESSAGE frame as bytes.
pub fn message(payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(payload.len());
    out.extend_from_slice(payload);
    out
}

/// What the server answered on one stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Message(Vec<u8>),
    Status(u16, String),
    Service(Vec<u8>),
}

/// Reads a whole response and decodes its first frame.
pub async fn read_answer(recv: &mut quinn::RecvStream) -> Answer {
    let bytes = recv.read_to_end(1 << 20).await.expect("the server finishes its response");
    assert_eq!(bytes.first(), Some(&1), "a response starts with the version byte: {bytes:?}");
    let header = FrameHeader::decode(&bytes[1..], u32::MAX).unwrap().expect("a whole frame header");
    let payload = bytes[6..6 + header.len as usize].to_vec();
    match header.tag {
        FrameTag::Message => Answer::Message(payload),
        FrameTag::ServiceError => Answer::Service(payload),
        FrameTag::Status => {
            let (code, message) = decode_status(&payload).unwrap();
            Answer::Status(code, message.to_owned())
        }
        FrameTag::Metadata => panic!("the test methods send no response metadata"),
    }
}

/// Sends `bytes` on a new stream, finishes it, and reads the answer.
pub async fn exchange(conn: &quinn::Connection, bytes: &[u8]) -> Answer {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    send.finish().unwrap();
    read_answer(&mut recv).await
}

/// A well-formed unary echo call on the raw connection.
pub async fn echo(conn: &quinn::Connection, payload: &[u8]) -> Answer {
    let mut request = head(CallKind::Unary, "test.echo", None);
    request.extend(message(payload));
    exchange(conn, &request).await
}
