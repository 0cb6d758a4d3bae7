//! The limit of a TLS byte stream on this machine: length-prefixed frames over TCP and TLS 1.3
//! (tokio-rustls, ring), no framework. Pipelined: a writer and a reader task per connection
//! on each side; answers come back in order, so a FIFO of waiting callers pairs them.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The largest frame, as the other implementations allow.
const MAX_MESSAGE: usize = 64 << 20;
/// Buffer of each reader and writer: small frames are read and written many per syscall and
/// TLS record; a frame larger than this goes past the buffer.
const BUFFER: usize = 64 << 10;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads one frame: a big-endian `u32` length, then that many bytes (into a buffer that is
/// not zeroed first). `None` at a clean end of the stream.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<Bytes>> {
    let len = match reader.read_u32().await {
        Ok(len) => len as usize,
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    };
    if len > MAX_MESSAGE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame of {len} bytes")));
    }
    let mut frame = BytesMut::with_capacity(len);
    while frame.len() < len {
        let want = len - frame.len();
        if reader.read_buf(&mut (&mut frame).limit(want)).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(Some(frame.freeze()))
}

/// Writes the frames of `queue` in order; `frame` turns an item into its payload. It flushes
/// when the queue is empty, so that frames queued together leave together.
async fn write_frames<W: AsyncWrite + Unpin, T>(
    writer: W,
    mut queue: mpsc::UnboundedReceiver<T>,
    mut frame: impl FnMut(T) -> Bytes,
) -> io::Result<()> {
    let mut writer = BufWriter::with_capacity(BUFFER, writer);
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(item) = next {
            let payload = frame(item);
            writer.write_u32(u32::try_from(payload.len()).expect("frame under 4 GiB")).await?;
            writer.write_all(&payload).await?;
            next = queue.try_recv().ok();
        }
        writer.flush().await?;
    }
    writer.shutdown().await
}

/// Binds to a free loopback port; the returned future serves until the process ends.
pub(crate) async fn server(cert_dir: &Path) -> (SocketAddr, impl Future<Output = ()>) {
    let chain =
        CertificateDer::pem_file_iter(cert_dir.join("server.pem")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(cert_dir.join("server-key.pem")).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                stream.set_nodelay(true).unwrap();
                let Ok(stream) = acceptor.accept(stream).await else { return };
                let (reader, writer) = tokio::io::split(stream);
                let (echoes, queue) = mpsc::unbounded_channel();
                tokio::spawn(write_frames(writer, queue, |frame| frame));
                let mut reader = BufReader::with_capacity(BUFFER, reader);
                while let Ok(Some(frame)) = read_frame(&mut reader).await {
                    if echoes.send(frame).is_err() {
                        break;
                    }
                }
            });
        }
    };
    (addr, serve)
}

/// A request on its way to the writer: the payload and where its answer goes.
type Request = (Bytes, oneshot::Sender<Bytes>);

/// One TLS connection shared by every caller.
pub(crate) struct Client {
    requests: mpsc::UnboundedSender<Request>,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr, cert_dir: &Path) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cert_dir.join("ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let stream = TlsConnector::from(Arc::new(tls)).connect(name, stream).await.unwrap();
        let (reader, writer) = tokio::io::split(stream);
        let (requests, queue) = mpsc::unbounded_channel::<Request>();
        // The FIFO of callers waiting for an answer, in the order their requests were written.
        let (waiting, mut waiters) = mpsc::unbounded_channel::<oneshot::Sender<Bytes>>();
        tokio::spawn(write_frames(writer, queue, move |(payload, reply)| {
            // Queued before the frame is written, so it is there when the answer is read.
            let _ = waiting.send(reply);
            payload
        }));
        tokio::spawn(async move {
            let mut reader = BufReader::with_capacity(BUFFER, reader);
            while let Ok(Some(frame)) = read_frame(&mut reader).await {
                let Some(reply) = waiters.recv().await else { break };
                let _ = reply.send(frame);
            }
        });
        Self { requests }
    }

    /// One call; returns the length of the echo.
    pub(crate) async fn echo(&self, payload: Bytes) -> usize {
        let (reply, answer) = oneshot::channel();
        self.requests.send((payload, reply)).expect("connection open");
        answer.await.expect("an answer").len()
    }
}
