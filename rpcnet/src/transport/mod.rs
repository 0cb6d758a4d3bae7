//! QUIC endpoints and TLS: rustls configurations, identities, the development PKI, UDP
//! sockets with large buffers, and moving a call's bytes between quinn streams and the
//! wire decoders. Knows nothing of calls' meaning, services or balancing.

mod block;
mod congestion;
mod dev;
mod endpoint;
mod errors;
mod identity;
mod outgoing;
mod receive;
mod resumption;
mod server_cert;
mod settings;
mod split_sends;
mod tls;

pub use congestion::CongestionControl;
pub use dev::DevPki;
pub use identity::Identity;
pub use rustls::CipherSuite;
pub use split_sends::SplitSends;

pub(crate) use endpoint::{ClientEndpoint, SHUTDOWN_CODE, server_endpoint};
pub(crate) use errors::connection_error;
pub(crate) use outgoing::{Outgoing, OutgoingMessage, Prefix, WriteAll};
pub(crate) use receive::{FrameBudget, ReadBounds, ReceiveError, ReceiveHalf};
pub(crate) use server_cert::ServerCertificate;
pub(crate) use settings::{EndpointSettings, IdentitySource, TlsSettings, TrustSource};
pub(crate) use tls::check_cipher_suites;
