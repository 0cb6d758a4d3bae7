//! Generates the tonic stubs of the echo benchmark without protoc: the service is described
//! here in Rust and its message is a hand-written prost struct (`src/tonic_echo.rs`).

fn main() {
    let echo = tonic_build::manual::Method::builder()
        .name("echo")
        .route_name("Echo")
        .input_type("crate::tonic_echo::EchoMessage")
        .output_type("crate::tonic_echo::EchoMessage")
        .codec_path("tonic_prost::ProstCodec")
        .build();
    let service = tonic_build::manual::Service::builder().name("Echo").package("bench").method(echo).build();
    tonic_build::manual::Builder::new().compile(&[service]);
    println!("cargo::rerun-if-changed=build.rs");
}
