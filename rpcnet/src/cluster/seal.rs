//! Sealing gossip datagrams with the cluster key: XChaCha20-Poly1305 with a random 192-bit
//! nonce per datagram, a keyring so keys can be rotated without a flag day, and a replay
//! window. A node without a key of the ring can neither read nor forge membership traffic,
//! and a datagram it captured is accepted at most once, within `max_age` of being sealed.
//!
//! ```text
//! datagram = version:u8 key_hint:u8 nonce:[u8; 24] ciphertext-with-tag
//! plaintext = sent_at_ms:u64 message     (sent_at bounds how long a nonce is remembered)
//! ```

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Version of the sealed format (2: the message names its sender, see `wire.rs`).
const SEAL_VERSION: u8 = 2;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 2 + NONCE_LEN;
/// Bytes sealing adds to a message: header, timestamp and the 16-byte tag.
pub(crate) const SEAL_OVERHEAD: usize = HEADER_LEN + 8 + 16;

/// A 256-bit key shared by the members of a cluster.
#[derive(Clone)]
pub struct ClusterKey {
    key: [u8; 32],
    hint: u8,
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "ClusterKey(hint {:#04x})", self.hint)
    }
}

impl ClusterKey {
    /// A key from 32 random bytes.
    pub fn new(key: [u8; 32]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, &key);
        Self { key, hint: digest.as_ref()[0] }
    }

    /// A key derived from a passphrase (SHA-256 with a domain separator). Fine for tests and
    /// demos; for production prefer [`ClusterKey::new`] with 32 random bytes.
    pub fn from_secret(secret: &str) -> Self {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(b"rpcnet cluster key v1\0");
        context.update(secret.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(context.finish().as_ref());
        Self::new(key)
    }
}

/// Why a datagram was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Too short, or an unknown format version.
    #[error("not a sealed rpcnet gossip datagram")]
    Malformed,
    /// No key of the ring opens it: sent by a node without the cluster key, or tampered with.
    #[error("no cluster key opens this datagram (wrong key, or tampered)")]
    Unauthenticated,
    /// Sealed too long ago (or too far in the future): a replay, or clocks too far apart.
    #[error("datagram sealed {0:?} away from now: rejected as a possible replay")]
    Stale(Duration),
    /// Accepted once already: a copy, replayed by someone who captured it.
    #[error("datagram already received: rejected as a replay")]
    Replayed,
}

/// An authenticated datagram: its message, and what the replay window needs to know.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) message: Vec<u8>,
    sent_ms: u64,
    /// The first 128 bits of the nonce: random, so as unique as the whole.
    nonce: u128,
}

/// The keys a node accepts: it seals with the first and opens with any. To rotate, add the
/// new key to every node's ring (second position), then move it to the front, then drop
/// the old one.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<ClusterKey>,
    max_age: Duration,
}

impl Keyring {
    /// A ring holding one key; datagrams older than 60 s are refused.
    pub fn new(primary: ClusterKey) -> Self {
        Self { keys: vec![primary], max_age: Duration::from_secs(60) }
    }

    /// Also accept `key` (it is not used to seal).
    pub fn with_key(mut self, key: ClusterKey) -> Self {
        self.keys.push(key);
        self
    }

    /// How old (or how far ahead of this clock) a datagram may be. Default 60 s.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    fn cipher(key: &ClusterKey) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&key.key.into())
    }

    /// Seals `message` with the primary key, stamped with `now`.
    pub fn seal(&self, message: &[u8], now: SystemTime) -> Vec<u8> {
        let key = &self.keys[0];
        let nonce: [u8; NONCE_LEN] = rand::random();
        let header = [SEAL_VERSION, key.hint];
        let mut plaintext = Vec::with_capacity(8 + message.len());
        plaintext.extend_from_slice(&millis(now).to_be_bytes());
        plaintext.extend_from_slice(message);
        let sealed = Self::cipher(key)
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &header })
            .expect("bug in rpcnet: XChaCha20-Poly1305 cannot fail to encrypt in memory");
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a datagram sealed by any key of the ring, returning the message. Does not
    /// remember it: every member also refuses a datagram it accepted before.
    pub fn open(&self, datagram: &[u8], now: SystemTime) -> Result<Vec<u8>, OpenError> {
        self.open_sealed(datagram, now).map(|opened| opened.message)
    }

    pub(crate) fn open_sealed(&self, datagram: &[u8], now: SystemTime) -> Result<Opened, OpenError> {
        if datagram.len() < SEAL_OVERHEAD || datagram[0] != SEAL_VERSION {
            return Err(OpenError::Malformed);
        }
        let (header, rest) = datagram.split_at(2);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        // Try the key the hint names first; a hint collision just costs one more attempt.
        let ordered =
            self.keys.iter().filter(|k| k.hint == header[1]).chain(self.keys.iter().filter(|k| k.hint != header[1]));
        for key in ordered {
            let Ok(mut plaintext) =
                Self::cipher(key).decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: header })
            else {
                continue;
            };
            let sent_ms = u64::from_be_bytes(plaintext[..8].try_into().expect("at least 8 bytes"));
            let skew = millis(now).abs_diff(sent_ms);
            if skew > self.max_age.as_millis() as u64 {
                return Err(OpenError::Stale(Duration::from_millis(skew)));
            }
            plaintext.drain(..8);
            let nonce = u128::from_be_bytes(nonce[..16].try_into().expect("24-byte nonce"));
            return Ok(Opened { message: plaintext, sent_ms, nonce });
        }
        Err(OpenError::Unauthenticated)
    }
}

/// Nonces of the datagrams accepted within the ring's `max_age`: a copy of one is refused,
/// and an older datagram is refused as stale by [`Keyring::open`] already, so a captured
/// datagram is accepted at most once. Bounded: when full, the oldest entry goes and the
/// window refuses anything sealed before it (which only a flood of genuine traffic, or
/// reordering by more than the window holds, could make a live datagram be).
#[derive(Debug)]
pub(crate) struct ReplayWindow {
    /// (sealed at, nonce), oldest first.
    seen: BTreeSet<(u64, u128)>,
    /// Datagrams sealed at or before this (ms) are refused: their entries were evicted.
    floor: u64,
    max_age_ms: u64,
    capacity: usize,
}

/// Datagrams remembered at most: about 550 a second for the default 60 s `max_age`, far
/// above what a member receives (tens a second), in about 2 MiB at worst.
const REPLAY_CAPACITY: usize = 32_768;

impl ReplayWindow {
    /// A window for datagrams of `ring`.
    pub(crate) fn new(ring: &Keyring) -> Self {
        Self::with_capacity(ring, REPLAY_CAPACITY)
    }

    fn with_capacity(ring: &Keyring, capacity: usize) -> Self {
        Self { seen: BTreeSet::new(), floor: 0, max_age_ms: ring.max_age.as_millis() as u64, capacity: capacity.max(1) }
    }

    /// Accepts `opened` unless it was accepted before; remembers it if so.
    pub(crate) fn admit(&mut self, opened: &Opened, now: SystemTime) -> Result<(), OpenError> {
        let now_ms = millis(now);
        // Entries the ring refuses as stale by now need not be kept.
        while self.seen.first().is_some_and(|&(sent, _)| sent.saturating_add(self.max_age_ms) < now_ms) {
            self.seen.pop_first();
        }
        let entry = (opened.sent_ms, opened.nonce);
        if opened.sent_ms <= self.floor || self.seen.contains(&entry) {
            return Err(OpenError::Replayed);
        }
        if self.seen.len() >= self.capacity
            && let Some((evicted, _)) = self.seen.pop_first()
        {
            self.floor = self.floor.max(evicted);
        }
        self.seen.insert(entry);
        Ok(())
    }

    /// Entries held, for memory estimates.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn a_sealed_message_opens_with_the_key_and_only_with_it() {
        let ring = Keyring::new(ClusterKey::from_secret("s3cret"));
        let sealed = ring.seal(b"membership", now());
        assert_eq!(ring.open(&sealed, now()).unwrap(), b"membership");
        let stranger = Keyring::new(ClusterKey::from_secret("guess"));
        assert_eq!(stranger.open(&sealed, now()), Err(OpenError::Unauthenticated), "no key, no read");
        assert!(!sealed.windows(10).any(|w| w == b"membership"), "the message travels encrypted");
    }

    #[test]
    fn a_tampered_datagram_is_refused() {
        let ring = Keyring::new(ClusterKey::from_secret("k"));
        let mut sealed = ring.seal(b"alive", now());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(ring.open(&sealed, now()), Err(OpenError::Unauthenticated));
        assert_eq!(ring.open(&sealed[..10], now()), Err(OpenError::Malformed));
    }

    #[test]
    fn keys_rotate_through_the_ring() {
        let (old, new) = (ClusterKey::from_secret("old"), ClusterKey::from_secret("new"));
        let old_node = Keyring::new(old.clone());
        let rotating = Keyring::new(new.clone()).with_key(old);
        let new_node = Keyring::new(new);
        assert!(rotating.open(&old_node.seal(b"x", now()), now()).is_ok(), "the old key is still accepted");
        assert!(new_node.open(&rotating.seal(b"x", now()), now()).is_ok(), "sealed with the new primary");
        assert!(old_node.open(&new_node.seal(b"x", now()), now()).is_err(), "a node without the new key is out");
    }

    fn admit(ring: &Keyring, window: &mut ReplayWindow, datagram: &[u8], at: SystemTime) -> Result<(), OpenError> {
        window.admit(&ring.open_sealed(datagram, at)?, at)
    }

    #[test]
    fn a_datagram_is_accepted_once() {
        let ring = Keyring::new(ClusterKey::from_secret("k"));
        let mut window = ReplayWindow::new(&ring);
        let t0 = now();
        let (first, second) = (ring.seal(b"summary", t0), ring.seal(b"summary", t0));
        assert_eq!(admit(&ring, &mut window, &first, t0), Ok(()));
        assert_eq!(admit(&ring, &mut window, &second, t0), Ok(()), "the same message sealed again is a new datagram");
        let later = t0 + Duration::from_secs(30);
        assert_eq!(admit(&ring, &mut window, &first, later), Err(OpenError::Replayed), "a copy is a replay");
        let too_late = t0 + Duration::from_secs(61);
        assert!(matches!(admit(&ring, &mut window, &first, too_late), Err(OpenError::Stale(_))));
        assert_eq!(admit(&ring, &mut window, &ring.seal(b"fresh", too_late), too_late), Ok(()));
        assert_eq!(window.len(), 1, "entries older than max_age are dropped: the ring refuses those datagrams anyway");
    }

    #[test]
    fn a_full_window_refuses_what_it_can_no_longer_tell_apart() {
        let ring = Keyring::new(ClusterKey::from_secret("k"));
        let mut window = ReplayWindow::with_capacity(&ring, 3);
        let t0 = now();
        let sealed: Vec<Vec<u8>> = (0..5).map(|i| ring.seal(b"x", t0 + Duration::from_millis(i * 10))).collect();
        let at = t0 + Duration::from_secs(1);
        for datagram in &sealed[..4] {
            assert_eq!(admit(&ring, &mut window, datagram, at), Ok(()));
        }
        assert_eq!(window.len(), 3, "bounded");
        assert_eq!(
            admit(&ring, &mut window, &sealed[0], at),
            Err(OpenError::Replayed),
            "the evicted entry is still refused: it is at or below the floor"
        );
        assert_eq!(admit(&ring, &mut window, &sealed[4], at), Ok(()), "newer datagrams still get in");
        assert_eq!(admit(&ring, &mut window, &sealed[3], at), Err(OpenError::Replayed));
    }

    #[test]
    fn old_datagrams_are_refused_as_replays() {
        let ring = Keyring::new(ClusterKey::from_secret("k")).with_max_age(Duration::from_secs(5));
        let sealed = ring.seal(b"ping", now() - Duration::from_secs(30));
        assert!(matches!(ring.open(&sealed, now()), Err(OpenError::Stale(_))));
    }
}
