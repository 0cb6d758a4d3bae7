//! The span of each call as a plain `tracing` subscriber sees it (no OpenTelemetry): the
//! server's `rpc.server` and the client's `rpc.client`, their OpenTelemetry RPC fields, the
//! outcome recorded at the end, and the handler's own logs inside the server's span.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use rpcnet::{RpcClient, RpcConfig, RpcError, RpcServer};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the recorder saw it: its name, the fields it was given or recorded later, and
/// the messages of the events logged inside it.
#[derive(Debug, Clone, Default)]
struct SeenSpan {
    name: &'static str,
    fields: HashMap<String, String>,
    events: Vec<String>,
}

impl SeenSpan {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Writes every field as text (strings without quotes).
struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// A layer that keeps every span it sees, moved to `closed` when it closes (the registry
/// reuses the ids of closed spans).
#[derive(Clone, Default)]
struct Recorder {
    open: Arc<Mutex<HashMap<Id, SeenSpan>>>,
    closed: Arc<Mutex<Vec<SeenSpan>>>,
}

impl Recorder {
    /// The closed spans called `name` whose `rpc.method` is `method`.
    fn closed(&self, name: &str, method: &str) -> Vec<SeenSpan> {
        let closed = self.closed.lock().unwrap();
        closed.iter().filter(|span| span.name == name && span.field("rpc.method") == Some(method)).cloned().collect()
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut span = SeenSpan { name: attrs.metadata().name(), ..SeenSpan::default() };
        attrs.record(&mut Fields(&mut span.fields));
        self.open.lock().unwrap().insert(id.clone(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().get_mut(id) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, cx: Context<'_, S>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let Some(message) = fields.remove("message") else { return };
        let Some(scope) = cx.event_scope(event) else { return };
        let mut open = self.open.lock().unwrap();
        for span in scope {
            if let Some(seen) = open.get_mut(&span.id()) {
                seen.events.push(message.clone());
            }
        }
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().remove(&id) {
            self.closed.lock().unwrap().push(span);
        }
    }
}

/// The only span called `name` for `method`.
fn one(recorder: &Recorder, name: &str, method: &str) -> SeenSpan {
    let spans = recorder.closed(name, method);
    assert_eq!(spans.len(), 1, "one closed `{name}` span for `{method}`, got {spans:?}");
    spans.into_iter().next().unwrap()
}

// Current-thread runtime (tokio::test's default): the server's tasks run on this thread,
// under this thread's subscriber.
#[tokio::test]
async fn each_call_has_a_span_on_both_sides_with_the_rpc_fields_and_its_outcome() {
    let recorder = Recorder::default();
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));

    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server
        .register("Calculator.add", |request| async move {
            tracing::info!("adding in the handler");
            Ok(request)
        })
        .await;
    server.register("Calculator.refuse", |_| async move { Err(RpcError::service(b"no".to_vec())) }).await;
    server
        .register_server_streaming(
            "Calculator.count",
            |_| async move { futures::stream::iter([Ok(vec![1]), Ok(vec![2])]) },
        )
        .await;
    let (addr, handle) = server.spawn().unwrap();
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();

    assert_eq!(client.call("Calculator.add", b"1+1".to_vec()).await.unwrap(), b"1+1");
    assert!(client.call("Calculator.refuse", Vec::new()).await.is_err());
    let counted: Vec<_> = client.call_server_streaming("Calculator.count", Vec::new()).await.unwrap().collect().await;
    assert_eq!(counted.len(), 2);
    // Shutdown waits for every call's task: every server span is closed after it.
    handle.shutdown().await;

    let served = one(&recorder, "rpc.server", "add");
    let expected = [
        ("otel.name", "Calculator/add"),
        ("otel.kind", "server"),
        ("rpc.system", "rpcnet"),
        ("rpc.service", "Calculator"),
        ("rpc.method", "add"),
        ("server.address", "127.0.0.1"),
        ("client.address", "127.0.0.1"),
        ("otel.status_code", "OK"),
    ];
    for (field, value) in expected {
        assert_eq!(served.field(field), Some(value), "server span's `{field}`: {served:?}");
    }
    assert_eq!(served.field("server.port"), Some(addr.port().to_string().as_str()));
    assert!(served.field("client.port").is_some_and(|port| port != "0"), "{served:?}");
    assert_eq!(served.field("error.type"), None);
    assert!(
        served.events.iter().any(|event| event == "adding in the handler"),
        "the handler's log is inside its call's span: {served:?}"
    );

    let called = one(&recorder, "rpc.client", "add");
    let expected = [
        ("otel.name", "Calculator/add"),
        ("otel.kind", "client"),
        ("rpc.system", "rpcnet"),
        ("rpc.service", "Calculator"),
        ("rpc.method", "add"),
        ("server.address", "127.0.0.1"),
        ("otel.status_code", "OK"),
    ];
    for (field, value) in expected {
        assert_eq!(called.field(field), Some(value), "client span's `{field}`: {called:?}");
    }
    assert_eq!(called.field("server.port"), Some(addr.port().to_string().as_str()));

    for side in ["rpc.server", "rpc.client"] {
        let refused = one(&recorder, side, "refuse");
        assert_eq!(refused.field("otel.status_code"), Some("ERROR"), "{refused:?}");
        assert_eq!(refused.field("error.type"), Some("application_error"), "{refused:?}");
        assert!(refused.field("otel.status_description").is_some(), "{refused:?}");

        let streamed = one(&recorder, side, "count");
        assert_eq!(streamed.field("otel.status_code"), Some("OK"), "{streamed:?}");
    }
}

/// A call the caller gives up on (a dropped response stream) ends its client span as
/// cancelled, not as a success.
#[tokio::test]
async fn a_dropped_response_stream_ends_its_span_as_cancelled() {
    let recorder = Recorder::default();
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));

    let mut server = RpcServer::new(RpcConfig::dev("127.0.0.1:0"));
    server
        .register_server_streaming("Feed.follow", |_| async move {
            futures::stream::iter([Ok(vec![1])]).chain(futures::stream::pending())
        })
        .await;
    let (addr, handle) = server.spawn().unwrap();
    let client = RpcClient::connect(addr, RpcConfig::dev("127.0.0.1:0")).await.unwrap();

    let mut feed = client.call_server_streaming("Feed.follow", Vec::new()).await.unwrap();
    assert_eq!(feed.next().await.unwrap().unwrap(), [1]);
    drop(feed);
    handle.shutdown().await;

    let followed = one(&recorder, "rpc.client", "follow");
    assert_eq!(followed.field("otel.status_code"), Some("ERROR"), "{followed:?}");
    assert_eq!(followed.field("error.type"), Some("cancelled"), "{followed:?}");
    let served = one(&recorder, "rpc.server", "follow");
    assert_eq!(served.field("otel.status_code"), Some("ERROR"), "{served:?}");
    assert_eq!(served.field("error.type"), Some("cancelled"), "{served:?}");
}
