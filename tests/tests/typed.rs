//! A typed service end to end over QUIC: the Calculator of DESIGN.md with unary methods, a
//! typed service error, and all three streaming kinds.
#![allow(missing_docs)] // test-only types

use std::time::Duration;

use futures::StreamExt;
use rpcnet::{RpcConfig, RpcError, RpcServer, RpcStream, rpc_service};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CalcError {
    DivisionByZero,
    Overflow { a: i64, b: i64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub sum: i64,
}

#[rpc_service]
pub trait Calculator {
    /// Adds two numbers.
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError>;
    async fn pi(&self) -> f64;
    async fn reset(&self);
    async fn describe(&self, name: String, tags: Vec<String>, scale: Option<u8>) -> String;
    async fn slow(&self, millis: u64) -> u64;
    /// Server streaming: the numbers from 1 to `n`.
    async fn count(&self, n: u32) -> RpcStream<u32>;
    /// Client streaming: statistics of the numbers sent.
    async fn stats(&self, numbers: RpcStream<i64>) -> Stats;
    /// Client streaming with a typed error: fails on a negative number.
    async fn checked_sum(&self, numbers: RpcStream<i64>) -> Result<i64, CalcError>;
    /// Bidirectional: running totals.
    async fn running(&self, numbers: RpcStream<i64>) -> RpcStream<i64>;
}

struct Calc;

impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError> {
        if b == 0 {
            return Err(CalcError::DivisionByZero);
        }
        a.checked_div(b).ok_or(CalcError::Overflow { a, b })
    }

    async fn pi(&self) -> f64 {
        std::f64::consts::PI
    }

    async fn reset(&self) {}

    async fn describe(&self, name: String, tags: Vec<String>, scale: Option<u8>) -> String {
        format!("{name} [{}] x{}", tags.join(","), scale.unwrap_or(1))
    }

    async fn slow(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }

    async fn count(&self, n: u32) -> RpcStream<u32> {
        RpcStream::from_iter(1..=n)
    }

    async fn stats(&self, mut numbers: RpcStream<i64>) -> Stats {
        let mut stats = Stats { count: 0, sum: 0 };
        while let Some(Ok(n)) = numbers.next().await {
            stats.count += 1;
            stats.sum += n;
        }
        stats
    }

    async fn checked_sum(&self, mut numbers: RpcStream<i64>) -> Result<i64, CalcError> {
        let mut sum = 0i64;
        while let Some(Ok(n)) = numbers.next().await {
            if n < 0 {
                return Err(CalcError::Overflow { a: sum, b: n });
            }
            sum += n;
        }
        Ok(sum)
    }

    async fn running(&self, numbers: RpcStream<i64>) -> RpcStream<i64> {
        let mut total = 0;
        RpcStream::new(numbers.map(move |n| {
            total += n?;
            Ok(total)
        }))
    }
}

async fn serve() -> (CalculatorClient, rpcnet::ServerHandle) {
    rpcnet_tests::subscribe();
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(CalculatorServer::new(Calc));
    let (addr, shutdown) = server.spawn().unwrap();
    let config = RpcConfig::dev("127.0.0.1:0").with_connect_timeout(Duration::from_millis(300));
    let client = CalculatorClient::connect(addr, config).await.unwrap();
    (client, shutdown)
}

#[tokio::test]
async fn unary_methods_of_every_shape_round_trip() {
    let (client, _shutdown) = serve().await;
    assert_eq!(client.add(2, 3).await.unwrap(), 5);
    assert_eq!(client.pi().await.unwrap(), std::f64::consts::PI, "no arguments");
    client.reset().await.unwrap();
    let text = client.describe("calc".into(), vec!["a".into(), "b".into()], Some(3)).await.unwrap();
    assert_eq!(text, "calc [a,b] x3", "several arguments of several types");
}

#[tokio::test]
async fn the_service_error_arrives_typed_and_transport_errors_stay_apart() {
    let (client, shutdown) = serve().await;
    assert_eq!(client.div(7, 2).await.unwrap(), Ok(3));
    assert_eq!(client.div(1, 0).await.unwrap(), Err(CalcError::DivisionByZero));
    assert_eq!(client.div(i64::MIN, -1).await.unwrap(), Err(CalcError::Overflow { a: i64::MIN, b: -1 }));
    shutdown.shutdown().await;
    let err = client.div(1, 1).await.unwrap_err();
    assert!(!matches!(err, RpcError::Service(_)), "a dead server is not a service error: {err:?}");
}

#[tokio::test]
async fn wire_names_are_constants() {
    assert_eq!(CalculatorClient::SERVICE_NAME, "Calculator");
    assert_eq!(CalculatorClient::METHOD_ADD, "Calculator.add");
    assert_eq!(CalculatorClient::METHOD_CHECKED_SUM, "Calculator.checked_sum");
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(CalculatorServer::new(Calc));
    assert!(server.methods().contains(&"Calculator.running".to_string()));
}

#[tokio::test]
async fn a_per_call_deadline_applies_to_typed_calls() {
    let (client, _shutdown) = serve().await;
    let err = client.with_timeout(Duration::from_millis(50)).slow(5_000).await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout), "got {err:?}");
    assert_eq!(client.slow(1).await.unwrap(), 1, "the original client keeps the default deadline");
}

#[tokio::test]
async fn all_three_streaming_kinds_work_typed() {
    let (client, _shutdown) = serve().await;

    let counted = client.count(5).await.unwrap().collect_messages().await.unwrap();
    assert_eq!(counted, vec![1, 2, 3, 4, 5], "server streaming");

    let stats = client.stats(RpcStream::from_iter(vec![4, 5, 6])).await.unwrap();
    assert_eq!(stats, Stats { count: 3, sum: 15 }, "client streaming");

    assert_eq!(client.checked_sum(RpcStream::from_iter(vec![1, 2])).await.unwrap(), Ok(3));
    assert_eq!(
        client.checked_sum(RpcStream::from_iter(vec![1, -2])).await.unwrap(),
        Err(CalcError::Overflow { a: 1, b: -2 }),
        "client streaming with a typed error"
    );

    let totals = client.running(RpcStream::from_iter(vec![1, 2, 3])).await.unwrap();
    assert_eq!(totals.collect_messages().await.unwrap(), vec![1, 3, 6], "bidirectional");
}

#[tokio::test]
async fn several_services_share_one_server_and_one_connection() {
    #[rpc_service]
    pub trait Greeter {
        async fn greet(&self, name: String) -> String;
    }
    struct Hello;
    impl Greeter for Hello {
        async fn greet(&self, name: String) -> String {
            format!("Hello, {name}")
        }
    }

    rpcnet_tests::subscribe();
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(CalculatorServer::new(Calc)).add_service(GreeterServer::new(Hello));
    let (addr, _shutdown) = server.spawn().unwrap();
    let raw = rpcnet::RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let calculator = CalculatorClient::from(raw.clone());
    let greeter = GreeterClient::from(raw);
    assert_eq!(calculator.add(1, 1).await.unwrap(), 2);
    assert_eq!(greeter.greet("QUIC".into()).await.unwrap(), "Hello, QUIC");
}

/// `Vec<u8>` travels as bytes in every position; the peers still agree on the wire.
#[rpc_service]
pub trait Blobs {
    async fn reverse(&self, data: Vec<u8>, tag: u8) -> Vec<u8>;
    async fn checked(&self, data: Vec<u8>) -> Result<Vec<u8>, Vec<u8>>;
    async fn chunks(&self, data: Vec<u8>) -> RpcStream<Vec<u8>>;
    async fn join(&self, parts: RpcStream<Vec<u8>>) -> Vec<u8>;
    async fn mirror(&self, parts: RpcStream<Vec<u8>>) -> RpcStream<Vec<u8>>;
}

struct BlobStore;

impl Blobs for BlobStore {
    async fn reverse(&self, mut data: Vec<u8>, tag: u8) -> Vec<u8> {
        data.reverse();
        data.push(tag);
        data
    }

    async fn checked(&self, data: Vec<u8>) -> Result<Vec<u8>, Vec<u8>> {
        if data.is_empty() { Err(b"empty".to_vec()) } else { Ok(data) }
    }

    async fn chunks(&self, data: Vec<u8>) -> RpcStream<Vec<u8>> {
        RpcStream::from_iter(data.chunks(2).map(<[u8]>::to_vec).collect::<Vec<_>>())
    }

    async fn join(&self, parts: RpcStream<Vec<u8>>) -> Vec<u8> {
        parts.collect_messages().await.unwrap_or_default().concat()
    }

    async fn mirror(&self, parts: RpcStream<Vec<u8>>) -> RpcStream<Vec<u8>> {
        parts
    }
}

#[tokio::test]
async fn byte_vectors_travel_in_every_position() {
    rpcnet_tests::subscribe();
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(BlobsServer::new(BlobStore));
    let (addr, _shutdown) = server.spawn().unwrap();
    let client = BlobsClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    assert_eq!(client.reverse(vec![1, 2, 3], 9).await.unwrap(), vec![3, 2, 1, 9]);
    assert_eq!(client.checked(vec![5]).await.unwrap(), Ok(vec![5]));
    assert_eq!(client.checked(Vec::new()).await.unwrap(), Err(b"empty".to_vec()));
    let chunks = client.chunks(vec![1, 2, 3, 4, 5]).await.unwrap().collect_messages().await.unwrap();
    assert_eq!(chunks, vec![vec![1, 2], vec![3, 4], vec![5]]);
    assert_eq!(client.join(RpcStream::from_iter(vec![vec![1], vec![2, 3]])).await.unwrap(), vec![1, 2, 3]);
    let mirrored = client.mirror(RpcStream::from_iter(vec![vec![7; 100_000]])).await.unwrap();
    assert_eq!(mirrored.collect_messages().await.unwrap(), vec![vec![7; 100_000]]);

    // A raw client that sends a `Vec<u8>` encoded the plain serde way reads the same reply.
    let raw = rpcnet::RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let request =
        rpcnet::codec::Codec::encode_to_vec(&rpcnet::codec::BincodeCodec::new(), &(vec![1u8, 2], 0u8)).unwrap();
    let reply = raw.call(BlobsClient::METHOD_REVERSE, request).await.unwrap();
    let reply: Vec<u8> = rpcnet::codec::Codec::decode(&rpcnet::codec::BincodeCodec::new(), &reply[..]).unwrap();
    assert_eq!(reply, vec![2, 1, 0]);
}

/// bincode behind a marker byte: a format of its own, so that a test can tell which codec
/// encoded a message.
#[derive(Debug, Default)]
pub struct Marked;

const MARK: u8 = 0xC0;

impl rpcnet::codec::Codec for Marked {
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut rpcnet::codec::BytesMut,
    ) -> Result<(), rpcnet::codec::CodecError> {
        out.extend_from_slice(&[MARK]);
        rpcnet::codec::BincodeCodec::new().encode(value, out)
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        mut payload: impl rpcnet::codec::Buf,
    ) -> Result<T, rpcnet::codec::CodecError> {
        if !payload.has_remaining() || payload.get_u8() != MARK {
            return Err(rpcnet::codec::CodecError::Decode("no mark: not encoded by Marked".into()));
        }
        rpcnet::codec::BincodeCodec::new().decode(payload)
    }
}

#[rpc_service(codec = "Marked")]
pub trait Greeter {
    async fn greet(&self, name: String) -> Result<String, String>;
    async fn names(&self, names: RpcStream<String>) -> RpcStream<String>;
}

struct Greeting;

impl Greeter for Greeting {
    async fn greet(&self, name: String) -> Result<String, String> {
        if name.is_empty() { Err("no name".into()) } else { Ok(format!("hello {name}")) }
    }

    async fn names(&self, names: RpcStream<String>) -> RpcStream<String> {
        names.map_messages(|name| Ok(name.to_uppercase()))
    }
}

#[tokio::test]
async fn a_service_speaks_the_codec_it_names() {
    use rpcnet::codec::Codec;
    rpcnet_tests::subscribe();
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.add_service(GreeterServer::new(Greeting));
    let (addr, shutdown) = server.spawn().unwrap();
    let client = GreeterClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    assert_eq!(client.greet("ada".into()).await.unwrap(), Ok("hello ada".to_owned()));
    assert_eq!(client.greet(String::new()).await.unwrap(), Err("no name".to_owned()), "errors use it too");
    let upper = client.names(RpcStream::from_iter(["a".to_owned(), "b".to_owned()])).await.unwrap();
    assert_eq!(upper.collect_messages().await.unwrap(), ["A", "B"], "and streams");

    // What travels is the codec's format: a raw client must speak it to be understood.
    let raw = rpcnet::RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let plain = rpcnet::codec::BincodeCodec::new().encode_to_vec(&("ada",)).unwrap();
    let refused = raw.call(GreeterClient::METHOD_GREET, plain).await.unwrap_err();
    assert!(matches!(&refused, RpcError::Codec(m) if m.contains("no mark")), "{refused:?}");
    let marked = Marked.encode_to_vec(&("ada",)).unwrap();
    let reply = raw.call(GreeterClient::METHOD_GREET, marked).await.unwrap();
    assert_eq!(reply[0], MARK, "the reply is in the service's format");
    let reply: String = Marked.decode(&reply[..]).unwrap();
    assert_eq!(reply, "hello ada");
    shutdown.shutdown().await;
}
