//! QUIC endpoints and TLS: rustls configurations, identities, the development PKI, UDP
//! sockets with large buffers, and reading and writing wire frames on quinn streams.
//! Knows nothing of services or balancing.

mod block;
mod dev;
mod endpoint;
mod framed;
mod identity;
mod outgoing;
mod tls;

pub use dev::DevPki;
pub use identity::Identity;

pub(crate) use block::carve_growing;
pub(crate) use endpoint::{SHUTDOWN_CODE, client_endpoint, server_endpoint};
pub(crate) use framed::{FrameReader, HeadError, connection_error, write_error};
pub(crate) use outgoing::{Outgoing, WriteAll};
