//! The book's telemetry client (step 6): one call of each streaming kind.
//!
//! ```text
//! cargo run -p example-streaming --bin client [ADDR]    # ADDR defaults to 127.0.0.1:9000
//! ```
// The demos print what they receive, as in the book.
#![allow(clippy::print_stdout)]

use futures::{StreamExt, stream};
use rpcnet::{RpcClient, RpcConfig, RpcError};
use telemetry_streams::telemetry::{self, Ack, ChatMessage, LiveUpdate, MetricReading};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let config = RpcConfig::new("certs/server-cert.pem", "127.0.0.1:0").with_server_name("localhost");

    let client = RpcClient::connect(addr.parse()?, config).await?;

    chat_demo(&client).await?;
    server_stream_demo(&client).await?;
    client_stream_demo(&client).await?;

    Ok(())
}

async fn chat_demo(client: &RpcClient) -> Result<(), RpcError> {
    println!("\n--- Bidirectional chat ---");
    let messages = vec![
        ChatMessage { from: "operator".into(), body: "ping".into() },
        ChatMessage { from: "operator".into(), body: "status?".into() },
    ];
    let outbound_frames: Vec<Vec<u8>> =
        messages.into_iter().map(|msg| telemetry::encode(&msg).expect("serialize chat message")).collect();
    let outbound = stream::iter(outbound_frames);
    let mut inbound = client.call_streaming("chat", outbound).await?;
    while let Some(frame) = inbound.next().await {
        let bytes = frame?;
        let reply: ChatMessage = telemetry::decode(&bytes)?;
        println!("reply: {}", reply.body);
    }
    Ok(())
}

async fn server_stream_demo(client: &RpcClient) -> Result<(), RpcError> {
    println!("\n--- Server streaming ---");
    let request = telemetry::encode(&MetricReading { sensor: "temp".into(), value: 21.0 })?;
    let mut updates = client.call_server_streaming("subscribe_metrics", request).await?;
    while let Some(frame) = updates.next().await {
        let bytes = frame?;
        let update: LiveUpdate = telemetry::decode(&bytes)?;
        println!("rolling avg: {:.2}", update.rolling_avg);
    }
    Ok(())
}

async fn client_stream_demo(client: &RpcClient) -> Result<(), RpcError> {
    println!("\n--- Client streaming ---");
    let readings: Vec<Vec<u8>> = vec![
        MetricReading { sensor: "temp".into(), value: 21.0 },
        MetricReading { sensor: "temp".into(), value: 21.5 },
        MetricReading { sensor: "temp".into(), value: 22.0 },
    ]
    .into_iter()
    .map(|reading| telemetry::encode(&reading).expect("serialize reading"))
    .collect();
    let outbound = stream::iter(readings);
    let ack_frame = client.call_client_streaming("upload_batch", outbound).await?;
    let ack: Ack = telemetry::decode(&ack_frame)?;
    println!("server accepted {} readings", ack.accepted);
    Ok(())
}
