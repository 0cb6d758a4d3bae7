//! `SharedClientTls`: one client TLS configuration that the endpoints made from clones of
//! one `RpcConfig` share, so that a session saved by one client is resumed (with 0-RTT)
//! by the next. rustls resumes a session only under the very verifier and client identity
//! that made it, so they are shared as long as what they were built from is the same.

use std::fmt;
use std::sync::{Arc, Mutex};

use quinn::crypto::rustls::QuicClientConfig;
use rustls::CipherSuite;
use rustls::pki_types::CertificateDer;

use super::Identity;

/// What a client TLS configuration is built from. Two equal inputs verify the same servers
/// and present the same identity, so sessions may pass between their connections.
#[derive(PartialEq, Eq)]
pub(crate) struct ClientTlsInputs {
    pub(crate) trusted: Vec<CertificateDer<'static>>,
    /// The client identity's chain and key (DER), under mutual TLS.
    pub(crate) identity: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
    pub(crate) cipher_suites: Option<Vec<CipherSuite>>,
}

impl ClientTlsInputs {
    pub(crate) fn new(
        trusted: &[CertificateDer<'static>],
        identity: Option<&Identity>,
        cipher_suites: Option<&[CipherSuite]>,
    ) -> Self {
        Self {
            trusted: trusted.to_vec(),
            identity: identity.map(|i| (i.chain.clone(), i.key.secret_der().to_vec())),
            cipher_suites: cipher_suites.map(<[_]>::to_vec),
        }
    }
}

/// The client TLS configuration (with its store of saved sessions) last built for these
/// settings, reused while its inputs stay the same.
#[derive(Default)]
pub(crate) struct SharedClientTls {
    built: Mutex<Option<(ClientTlsInputs, Arc<QuicClientConfig>)>>,
}

impl SharedClientTls {
    /// The configuration built for `inputs`, built now by `build` if there is none yet or
    /// it was built from other inputs.
    pub(crate) fn get_or_build<E>(
        &self,
        inputs: ClientTlsInputs,
        build: impl FnOnce() -> Result<Arc<QuicClientConfig>, E>,
    ) -> Result<Arc<QuicClientConfig>, E> {
        let mut built = self.built.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((made_from, config)) = built.as_ref()
            && *made_from == inputs
        {
            return Ok(config.clone());
        }
        let config = build()?;
        *built = Some((inputs, config.clone()));
        Ok(config)
    }
}

impl fmt::Debug for SharedClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("SharedClientTls").finish_non_exhaustive()
    }
}
