//! The rpcnet 0.1 book's streaming walkthrough ("Streaming Walkthrough"), as the book
//! writes it, in two binaries that run in two terminals:
//!
//! ```text
//! cargo run -p example-streaming --bin server      # terminal 1
//! cargo run -p example-streaming --bin client      # terminal 2
//! ```
//!
//! Both read `certs/server-cert.pem` (and the server `certs/server-key.pem`) from the
//! directory they run in. The book makes them with openssl, whose default certificate is a
//! CA (`basicConstraints CA:TRUE`) naming `localhost` only in its subject; rustls refuses a
//! CA certificate as a server's own (`CaUsedAsEndEntity`) and reads names only from the
//! subject alternative names, so mark it as a leaf with the name there:
//!
//! ```text
//! openssl req -x509 -newkey rsa:4096 -keyout certs/server-key.pem -out certs/server-cert.pem \
//!   -days 365 -nodes -subj "/CN=localhost" \
//!   -addext "subjectAltName=DNS:localhost" -addext "basicConstraints=critical,CA:FALSE"
//! ```
//!
//! Where this departs from the book, side by side (the rest is the book's code):
//!
//! | the book | here | why |
//! |---|---|---|
//! | `stream! { … decode(&frame)?; … yield encode(&reply); }` | `try_stream! { … decode(&frame)?; … yield encode(&reply)?; }` | `?` does not compile in `stream!`, whose body returns `()`; `try_stream!` turns `?` into an `Err` item that ends the stream |
//! | `RpcError::SerializationError(e.to_string())` | `RpcError::Codec(e.to_string())` | rpcnet's variant for a message that does not encode or decode |
//! | fixed `127.0.0.1:9000` | the same by default; the first argument replaces it | so a test can use port 0 |
//! | expected output `rolling avg: 21.00`, `21.50`, … | `21.50`, `22.00`, `22.50`, `23.00`, `23.50` | what the book's handler computes: its first update already averages two readings |
//!
//! The three handlers are `register_streaming` handlers, each called in its own way
//! (`call_streaming`, `call_server_streaming`, `call_client_streaming`); `tests/walkthrough.rs`
//! runs both binaries and checks the client's output.

pub mod telemetry;
