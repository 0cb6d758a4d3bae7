//! One trace across three services (rpcnet's `opentelemetry` feature): service A's handler
//! calls B, B's calls C, and an in-memory OpenTelemetry exporter sees every client and server
//! span in the trace of the caller's root span, each server span the child of the client
//! span that called it, carried over the wire as W3C `traceparent` metadata.
#![allow(missing_docs)]

use std::collections::HashMap;

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rpcnet::server::Context;
use rpcnet::{RpcClient, RpcConfig, RpcError, RpcServer, ServerHandle};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Starts a server whose `{service}.get` answers with its own name after what the next
/// service answered (if there is a next), and whose `{service}.fail` fails (after the next
/// service's `fail`, if there is one).
async fn start(service: &'static str, next: Option<(&'static str, RpcClient)>) -> (RpcClient, ServerHandle) {
    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    let forward = next.clone();
    server
        .register(&format!("{service}.get"), move |_| {
            let forward = forward.clone();
            async move {
                let mut answer = match forward {
                    Some((next, client)) => client.call(&format!("{next}.get"), Vec::new()).await?,
                    None => Vec::new(),
                };
                answer.extend_from_slice(service.as_bytes());
                Ok(answer)
            }
        })
        .await;
    server
        .register(&format!("{service}.fail"), move |_| {
            let forward = next.clone();
            async move {
                if let Some((next, client)) = forward {
                    client.call(&format!("{next}.fail"), Vec::new()).await?;
                }
                Err(RpcError::service(format!("{service} refused").into_bytes()))
            }
        })
        .await;
    let (addr, handle) = server.spawn().unwrap();
    (RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap(), handle)
}

/// The test's root spans and rpcnet's call spans (not quinn's, say) by name and kind: one
/// each in this test.
fn by_name_and_kind(spans: &[SpanData]) -> HashMap<(String, String), &SpanData> {
    let mut found = HashMap::new();
    let ours = |span: &&SpanData| ["root", "refused"].contains(&&*span.name) || attribute(span, "rpc.system").is_some();
    for span in spans.iter().filter(ours) {
        let key = (span.name.to_string(), format!("{:?}", span.span_kind));
        assert!(found.insert(key.clone(), span).is_none(), "two spans {key:?}");
    }
    found
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.as_str().into_owned())
}

// Current-thread runtime (tokio::test's default): the servers' tasks run on this thread,
// under the subscriber this test sets for it.
#[tokio::test]
async fn a_trace_runs_from_the_caller_through_three_services() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("rpcnet-tests"));
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

    let (to_c, c) = start("C", None).await;
    let (to_b, b) = start("B", Some(("C", to_c.clone()))).await;
    let (to_a, a) = start("A", Some(("B", to_b))).await;

    let answer = to_a.call("A.get", Vec::new()).instrument(tracing::info_span!("root")).await.unwrap();
    assert_eq!(answer, b"CBA");
    let refused = to_c.call("C.fail", Vec::new()).instrument(tracing::info_span!("refused")).await;
    assert!(matches!(refused, Err(RpcError::Service(_))), "{refused:?}");
    // Shutdown waits for every call's task, so every server span has ended after it.
    for server in [a, b, c] {
        server.shutdown().await;
    }
    provider.force_flush().unwrap();

    let finished = exporter.get_finished_spans().unwrap();
    let spans = by_name_and_kind(&finished);
    let span = |name: &str, kind: SpanKind| {
        *spans.get(&(name.to_owned(), format!("{kind:?}"))).unwrap_or_else(|| {
            let names: Vec<_> = spans.keys().collect();
            panic!("no {kind:?} span `{name}` among {names:?}")
        })
    };
    let root = span("root", SpanKind::Internal);
    let trace: TraceId = root.span_context.trace_id();

    // Who called whom: each span's parent, from the root down.
    let chain = [
        (span("A/get", SpanKind::Client), root),
        (span("A/get", SpanKind::Server), span("A/get", SpanKind::Client)),
        (span("B/get", SpanKind::Client), span("A/get", SpanKind::Server)),
        (span("B/get", SpanKind::Server), span("B/get", SpanKind::Client)),
        (span("C/get", SpanKind::Client), span("B/get", SpanKind::Server)),
        (span("C/get", SpanKind::Server), span("C/get", SpanKind::Client)),
    ];
    for (child, parent) in chain {
        assert_eq!(
            child.span_context.trace_id(),
            trace,
            "{} ({:?}) is in the root's trace",
            child.name,
            child.span_kind
        );
        let parent_id: SpanId = parent.span_context.span_id();
        assert_eq!(child.parent_span_id, parent_id, "parent of {} ({:?})", child.name, child.span_kind);
        assert_eq!(child.status, Status::Ok, "{} ({:?})", child.name, child.span_kind);
    }
    for service in ["A", "B", "C"] {
        let server = span(&format!("{service}/get"), SpanKind::Server);
        assert!(server.parent_span_is_remote, "{service}'s server span continues a trace from the wire");
        assert_eq!(attribute(server, "rpc.system").as_deref(), Some("rpcnet"));
        assert_eq!(attribute(server, "rpc.service").as_deref(), Some(service));
        assert_eq!(attribute(server, "rpc.method").as_deref(), Some("get"));
        let client = span(&format!("{service}/get"), SpanKind::Client);
        assert_eq!(attribute(client, "rpc.system").as_deref(), Some("rpcnet"));
        assert_eq!(attribute(client, "rpc.service").as_deref(), Some(service));
        assert_eq!(attribute(client, "server.address").as_deref(), Some("127.0.0.1"));
    }

    // The failed call: its own trace, an error on both sides.
    let refused_root = span("refused", SpanKind::Internal);
    assert_ne!(refused_root.span_context.trace_id(), trace);
    for kind in [SpanKind::Client, SpanKind::Server] {
        let failed = span("C/fail", kind.clone());
        assert_eq!(failed.span_context.trace_id(), refused_root.span_context.trace_id());
        assert!(matches!(failed.status, Status::Error { .. }), "{kind:?}: {:?}", failed.status);
        assert_eq!(attribute(failed, "error.type").as_deref(), Some("application_error"), "{kind:?}");
    }
}

/// A handler sees the trace context it continues as ordinary metadata, under the W3C name.
#[tokio::test]
async fn the_trace_context_travels_as_traceparent_metadata() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("rpcnet-tests"));
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server
        .register("Peek.traceparent", |_| async move {
            let context = Context::current().expect("inside a call");
            Ok(context.metadata().get_str("traceparent").unwrap_or_default().as_bytes().to_vec())
        })
        .await;
    let (addr, handle) = server.spawn().unwrap();
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();
    let seen = client.call("Peek.traceparent", Vec::new()).instrument(tracing::info_span!("root")).await.unwrap();
    handle.shutdown().await;
    provider.force_flush().unwrap();

    let finished = exporter.get_finished_spans().unwrap();
    let client_span = finished.iter().find(|span| span.span_kind == SpanKind::Client).expect("a client span");
    let expected = format!("00-{}-{}-01", client_span.span_context.trace_id(), client_span.span_context.span_id());
    assert_eq!(String::from_utf8(seen).unwrap(), expected);
}
