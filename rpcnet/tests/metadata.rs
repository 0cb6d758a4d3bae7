//! Metadata and the call context end to end over loopback: what a client sends reaches the
//! handler's `Context`, what a handler sets comes back, and too much of either is a clear
//! error before anything is sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rpcnet::server::Context;
use rpcnet::{CallOptions, Metadata, MetadataError, ResponseMetadata, RpcClient, RpcConfig, RpcError, RpcServer};

fn metadata(entries: &[(&str, &str)]) -> Metadata {
    let mut metadata = Metadata::new();
    for (key, value) in entries {
        metadata.insert(key, *value).unwrap();
    }
    metadata
}

/// A server whose methods report what their context saw, and a client of it.
async fn start(handled: Arc<AtomicUsize>) -> (RpcClient, rpcnet::ServerHandle) {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    let count = handled.clone();
    server
        .register("Ctx.describe", move |_request| {
            count.fetch_add(1, Ordering::SeqCst);
            async move {
                let context = Context::current().expect("a handler runs inside its call's context");
                let metadata = context.metadata();
                let remaining = context.remaining().map_or("none".to_owned(), |left| left.as_millis().to_string());
                let token = metadata.get_bin("token-bin").map(<[u8]>::to_vec).unwrap_or_default();
                Context::insert_response_metadata("served-by", "node-1").unwrap();
                Context::insert_response_metadata("echo-bin", token).unwrap();
                let described = format!(
                    "{} {} tenant={} entries={} remaining={} loopback={}",
                    context.service(),
                    context.method(),
                    metadata.get_str("tenant").unwrap_or("-"),
                    metadata.len(),
                    remaining,
                    context.peer_address().ip().is_loopback(),
                );
                Ok(described.into_bytes())
            }
        })
        .await;
    server
        .register("Ctx.refuse", |_request| async {
            Context::insert_response_metadata("retry-after-ms", "250").unwrap();
            Err::<Vec<u8>, _>(RpcError::Unavailable("come back later".into()))
        })
        .await;
    server
        .register_server_streaming("Ctx.count", |_request| async {
            Context::insert_response_metadata("total", "3").unwrap();
            futures::stream::iter((0..3u8).map(|i| Ok(vec![i])))
        })
        .await;
    server
        .register("Ctx.too_much", |_request| async {
            let big = "x".repeat(5_000);
            Context::insert_response_metadata("first", big.as_str()).unwrap();
            let second = Context::insert_response_metadata("second", big.as_str());
            let reserved = Context::insert_response_metadata("rpcnet-own", "x");
            Ok(format!("{second:?} {reserved:?}").into_bytes())
        })
        .await;
    let (addr, handle) = server.spawn().unwrap();
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    (client, handle)
}

#[tokio::test]
async fn a_handler_sees_the_callers_metadata_method_deadline_and_address() {
    let handled = Arc::new(AtomicUsize::new(0));
    let (client, handle) = start(handled.clone()).await;
    let mut sent = metadata(&[("tenant", "acme"), ("request-id", "r-1")]);
    sent.insert("token-bin", vec![0, 159, 255]).unwrap();
    let reply = ResponseMetadata::new();
    let options =
        CallOptions::new().with_metadata(sent).with_timeout(Duration::from_secs(30)).with_response_metadata(&reply);
    let described = client.call_with("Ctx.describe", Vec::new(), options).await.unwrap();
    let described = String::from_utf8(described.to_vec()).unwrap();
    let (head, remaining) = described.split_once(" remaining=").unwrap();
    assert_eq!(head, "Ctx Ctx.describe tenant=acme entries=3");
    let (remaining, loopback) = remaining.split_once(' ').unwrap();
    let remaining: u64 = remaining.parse().unwrap();
    assert!(remaining > 0 && remaining <= 30_000, "the handler sees what is left of 30 s: {remaining} ms");
    assert_eq!(loopback, "loopback=true");

    let received = reply.get();
    assert_eq!(received.get_str("served-by"), Some("node-1"));
    assert_eq!(received.get_bin("echo-bin"), Some(&[0, 159, 255][..]), "binary values arrive unchanged");

    // Without metadata either way, nothing is sent and nothing is left behind.
    let plain = client.call_with("Ctx.describe", Vec::new(), CallOptions::new().without_timeout()).await.unwrap();
    assert!(String::from_utf8_lossy(&plain).contains("tenant=- entries=0 remaining=none"), "{plain:?}");
    assert!(Context::current().is_none(), "outside a call there is no context");
    assert_eq!(Context::insert_response_metadata("k", "v"), Err(MetadataError::OutsideCall));
    handle.shutdown().await;
}

#[tokio::test]
async fn response_metadata_comes_back_with_errors_and_before_streamed_messages() {
    let (client, handle) = start(Arc::default()).await;
    let reply = ResponseMetadata::new();
    let options = CallOptions::new().with_response_metadata(&reply);
    let err = client.call_with("Ctx.refuse", Vec::new(), options.clone()).await.unwrap_err();
    assert!(matches!(err, RpcError::Unavailable(_)), "{err:?}");
    assert_eq!(reply.take().get_str("retry-after-ms"), Some("250"), "metadata set before an error is sent");

    let stream = client.server_streaming_with("Ctx.count", Vec::new(), options).await.unwrap();
    let messages: Vec<_> = stream.map(|m| m.unwrap().to_vec()).collect().await;
    assert_eq!(messages, [vec![0], vec![1], vec![2]]);
    assert_eq!(reply.get().get_str("total"), Some("3"));
    handle.shutdown().await;
}

#[tokio::test]
async fn too_much_metadata_is_refused_before_it_is_sent_and_the_connection_lives_on() {
    let handled = Arc::new(AtomicUsize::new(0));
    let (client, handle) = start(handled.clone()).await;

    let mut many = Metadata::new();
    for i in 0..33 {
        many.insert(&format!("k{i}"), "v").unwrap();
    }
    let err = client.call_with("Ctx.describe", Vec::new(), CallOptions::new().with_metadata(many)).await.unwrap_err();
    assert!(matches!(&err, RpcError::FrameTooLarge(m) if m.contains("too many entries")), "{err:?}");

    let large = metadata(&[("blob", &"x".repeat(9_000))]);
    let err = client.call_with("Ctx.describe", Vec::new(), CallOptions::new().with_metadata(large)).await.unwrap_err();
    assert!(matches!(&err, RpcError::FrameTooLarge(m) if m.contains("metadata is too large")), "{err:?}");
    assert_eq!(handled.load(Ordering::SeqCst), 0, "neither call reached the server");

    // A handler over the server's limit learns it at once; what fit is still sent.
    let reply = ResponseMetadata::new();
    let options = CallOptions::new().with_response_metadata(&reply);
    let answer = client.call_with("Ctx.too_much", Vec::new(), options).await.unwrap();
    let answer = String::from_utf8(answer.to_vec()).unwrap();
    assert!(answer.starts_with("Err(OverLimit(") && answer.contains("at most 8192"), "{answer}");
    assert!(answer.ends_with("Err(ReservedKey(\"rpcnet-own\"))"), "{answer}");
    assert_eq!(reply.get().get_str("first").map(str::len), Some(5_000));

    client.call_with("Ctx.describe", Vec::new(), CallOptions::new()).await.unwrap();
    assert_eq!(handled.load(Ordering::SeqCst), 1, "the connection serves the next call");
    handle.shutdown().await;
}
