//! The guide's setup of OpenTelemetry for a program that uses rpcnet, compiled and run as
//! written: a global subscriber, so this file is a test binary of its own with one test.
#![allow(missing_docs)]

use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::InMemorySpanExporter;
use rpcnet::{RpcClient, RpcConfig, RpcServer};

// ===== the guide's example, from here =====
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Logs to stderr and sends every span at INFO or above, rpcnet's included, to `exporter`
/// (an OTLP exporter, say). Keep the provider: `shutdown()` before exiting sends the last spans.
fn init_tracing(service: &'static str, exporter: impl SpanExporter + 'static) -> SdkTracerProvider {
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_batch_exporter(exporter)
        .build();
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(tracing_subscriber::fmt::layer())
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer(service)))
        .init();
    provider
}
// ===== to here =====

#[tokio::test]
async fn the_guide_setup_exports_rpcnet_spans() {
    let exporter = InMemorySpanExporter::default();
    let provider = init_tracing("orders", exporter.clone());

    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server.register("Orders.place", |request| async move { Ok(request) }).await;
    let (addr, handle) = server.spawn().unwrap();
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    client.call("Orders.place", b"one".to_vec()).await.unwrap();
    handle.shutdown().await;
    // What `shutdown` does first; the in-memory exporter forgets its spans when shut down.
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    for kind in [SpanKind::Client, SpanKind::Server] {
        let span = spans.iter().find(|span| span.name == "Orders/place" && span.span_kind == kind);
        assert!(
            span.is_some(),
            "a {kind:?} span `Orders/place` among {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
    }
}
