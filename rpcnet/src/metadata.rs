//! `Metadata`: the key/value pairs that travel beside a call's messages, a client's in the
//! request head and a handler's in the response (see [`crate::wire`] for the layout), with
//! the rules on keys and values that every sender checks before anything goes out.

use std::fmt;

use bytes::Bytes;

/// Keys starting with this are rpcnet's own; [`Metadata::insert`] refuses them.
pub const RESERVED_PREFIX: &str = "rpcnet-";

/// Keys ending with this carry binary values; every other key carries text.
pub const BINARY_SUFFIX: &str = "-bin";

/// The longest value the wire format carries (its length is a `u16`).
pub const MAX_VALUE_LEN: usize = u16::MAX as usize;

/// One metadata value: text, or bytes under a key ending in [`BINARY_SUFFIX`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum MetadataValue {
    /// A UTF-8 value, under a key that does not end in `-bin`.
    Text(String),
    /// Any bytes, under a key that ends in `-bin`.
    Binary(Bytes),
}

impl MetadataValue {
    /// The text, if this is a text value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Binary(_) => None,
        }
    }

    /// The value's bytes as they travel (UTF-8 for text).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }

    fn is_binary(&self) -> bool {
        matches!(self, Self::Binary(_))
    }
}

impl fmt::Debug for MetadataValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => fmt::Debug::fmt(text, f),
            Self::Binary(bytes) => write!(f, "<{} bytes>", bytes.len()),
        }
    }
}

impl From<&str> for MetadataValue {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for MetadataValue {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<Bytes> for MetadataValue {
    fn from(bytes: Bytes) -> Self {
        Self::Binary(bytes)
    }
}

impl From<Vec<u8>> for MetadataValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(Bytes::from(bytes))
    }
}

impl From<&[u8]> for MetadataValue {
    fn from(bytes: &[u8]) -> Self {
        Self::Binary(Bytes::copy_from_slice(bytes))
    }
}

/// Why a metadata entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The key is empty, longer than 255 bytes, or has a byte other than `a-z`, `0-9`,
    /// `-`, `_` and `.`.
    #[error("metadata key `{0}` is not 1 to 255 of the bytes a-z, 0-9, '-', '_', '.'")]
    InvalidKey(String),
    /// The key starts with [`RESERVED_PREFIX`].
    #[error("metadata key `{0}` starts with `rpcnet-`, which rpcnet reserves for its own use")]
    ReservedKey(String),
    /// Text under a `-bin` key, or bytes under any other.
    #[error("metadata key `{key}` takes {expected} values (keys ending in `-bin` take bytes, others text)")]
    WrongValueKind {
        /// The key.
        key: String,
        /// `"binary"` or `"text"`.
        expected: &'static str,
    },
    /// The value is longer than [`MAX_VALUE_LEN`].
    #[error("metadata value of `{key}` is {len} bytes, more than the {MAX_VALUE_LEN} the wire format carries")]
    ValueTooLong {
        /// The key.
        key: String,
        /// The value's length.
        len: usize,
    },
    /// A text value received from a peer is not UTF-8.
    #[error("metadata value of `{0}` is not UTF-8")]
    NotUtf8(String),
    /// More entries or bytes than the limits of the call allow
    /// ([`RpcConfig::with_max_metadata_entries`](crate::RpcConfig::with_max_metadata_entries),
    /// [`with_max_head_size`](crate::RpcConfig::with_max_head_size)).
    #[error("metadata over its limit: {0}")]
    OverLimit(String),
    /// Response metadata was set outside a call's task.
    #[error("response metadata can only be set by the task serving a call")]
    OutsideCall,
}

/// Key/value pairs sent with a call: by a client in its request (per call with
/// [`CallOptions::with_metadata`](crate::CallOptions::with_metadata), or for every call of
/// a client), by a handler in its response.
///
/// Keys are lowercase (`a-z`, `0-9`, `-`, `_`, `.`); a key holds one value, text unless the
/// key ends in `-bin`. How many entries and bytes a call may carry is bounded by the
/// receiver's [`Limits`](crate::wire::Limits) (32 entries and 8 KiB by default); a sender
/// checks the same bounds before it sends.
///
/// ```
/// use rpcnet::Metadata;
/// let mut metadata = Metadata::new();
/// metadata.insert("request-id", "7f3a")?;
/// metadata.insert("token-bin", vec![1, 2, 3])?;
/// assert_eq!(metadata.get_str("request-id"), Some("7f3a"));
/// assert_eq!(metadata.get_bin("token-bin"), Some(&[1, 2, 3][..]));
/// assert!(metadata.insert("Request-Id", "no capitals").is_err());
/// assert!(metadata.insert("token-bin", "text under a -bin key").is_err());
/// # Ok::<(), rpcnet::MetadataError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(Box<str>, MetadataValue)>,
}

impl Metadata {
    /// No entries. Allocates nothing until the first insert.
    pub const fn new() -> Self {
        Self { entries: Vec::new() }
    }

    /// Sets `key` to `value`, replacing what it held.
    pub fn insert(&mut self, key: &str, value: impl Into<MetadataValue>) -> Result<(), MetadataError> {
        if key.starts_with(RESERVED_PREFIX) {
            return Err(MetadataError::ReservedKey(key.to_owned()));
        }
        self.insert_any(key, value.into())
    }

    /// [`insert`](Self::insert), also for rpcnet's reserved keys.
    pub(crate) fn insert_any(&mut self, key: &str, value: MetadataValue) -> Result<(), MetadataError> {
        check_entry(key, &value)?;
        match self.entries.iter_mut().find(|(k, _)| &**k == key) {
            Some((_, old)) => *old = value,
            None => self.entries.push((key.into(), value)),
        }
        Ok(())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.entries.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
    }

    /// The text value of `key`.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(MetadataValue::as_str)
    }

    /// The binary value of `key`.
    pub fn get_bin(&self, key: &str) -> Option<&[u8]> {
        self.get(key).filter(|value| value.is_binary()).map(MetadataValue::as_bytes)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<MetadataValue> {
        let at = self.entries.iter().position(|(k, _)| &**k == key)?;
        Some(self.entries.remove(at).1)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in the order they were first inserted.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &MetadataValue)> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }

    /// Adds every entry of `other` that `self` does not hold (per-call entries over a
    /// client's defaults).
    pub(crate) fn fill_from(&mut self, other: &Metadata) {
        for (key, value) in &other.entries {
            if self.get(key).is_none() {
                self.entries.push((key.clone(), value.clone()));
            }
        }
    }

    /// Bytes the entries take on the wire (with the count in front).
    pub(crate) fn wire_len(&self) -> usize {
        1 + self.entries.iter().map(|(k, v)| 1 + k.len() + 2 + v.as_bytes().len()).sum::<usize>()
    }

    /// The entries as the wire carries them.
    pub(crate) fn wire_entries(&self) -> Vec<crate::wire::MetadataEntry<'_>> {
        self.entries.iter().map(|(k, v)| (&**k, v.as_bytes())).collect()
    }

    /// Entries received from a peer, checked by the same rules as those sent (reserved keys
    /// included: they are how rpcnet speaks to itself).
    pub(crate) fn from_wire(entries: &[crate::wire::MetadataEntry<'_>]) -> Result<Self, MetadataError> {
        let mut metadata = Self { entries: Vec::with_capacity(entries.len()) };
        for &(key, value) in entries {
            let value = if key.ends_with(BINARY_SUFFIX) {
                MetadataValue::Binary(Bytes::copy_from_slice(value))
            } else {
                let text = std::str::from_utf8(value).map_err(|_| MetadataError::NotUtf8(key.to_owned()))?;
                MetadataValue::Text(text.to_owned())
            };
            metadata.insert_any(key, value)?;
        }
        Ok(metadata)
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

fn check_entry(key: &str, value: &MetadataValue) -> Result<(), MetadataError> {
    let key_ok = !key.is_empty()
        && key.len() <= usize::from(u8::MAX)
        && key.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'));
    if !key_ok {
        return Err(MetadataError::InvalidKey(key.to_owned()));
    }
    let binary_key = key.ends_with(BINARY_SUFFIX);
    if binary_key != value.is_binary() {
        let expected = if binary_key { "binary" } else { "text" };
        return Err(MetadataError::WrongValueKind { key: key.to_owned(), expected });
    }
    let len = value.as_bytes().len();
    if len > MAX_VALUE_LEN {
        return Err(MetadataError::ValueTooLong { key: key.to_owned(), len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_and_reserved_names_follow_the_rules() {
        let mut metadata = Metadata::new();
        assert_eq!(metadata.insert("", "x"), Err(MetadataError::InvalidKey(String::new())));
        assert!(matches!(metadata.insert("a b", "x"), Err(MetadataError::InvalidKey(_))));
        assert!(matches!(metadata.insert(&"k".repeat(256), "x"), Err(MetadataError::InvalidKey(_))));
        assert!(matches!(metadata.insert("rpcnet-x", "x"), Err(MetadataError::ReservedKey(_))));
        assert!(matches!(metadata.insert("blob", vec![0]), Err(MetadataError::WrongValueKind { .. })));
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        assert!(matches!(metadata.insert("long", long), Err(MetadataError::ValueTooLong { len: 65536, .. })));
        assert!(metadata.is_empty(), "nothing refused was kept");

        metadata.insert("tenant", "a").unwrap();
        metadata.insert("tenant", "b").unwrap();
        assert_eq!(metadata.len(), 1, "a key holds one value");
        assert_eq!(metadata.get_str("tenant"), Some("b"));
        assert_eq!(metadata.get_bin("tenant"), None);
        assert_eq!(metadata.remove("tenant"), Some(MetadataValue::from("b")));
    }

    #[test]
    fn received_entries_are_checked_and_defaults_do_not_override() {
        assert!(matches!(Metadata::from_wire(&[("text", &[0xff])]), Err(MetadataError::NotUtf8(_))));
        assert!(matches!(Metadata::from_wire(&[("Upper", b"x")]), Err(MetadataError::InvalidKey(_))));
        let received = Metadata::from_wire(&[("rpcnet-own", b"1"), ("raw-bin", &[0xff])]).unwrap();
        assert_eq!(received.get_str("rpcnet-own"), Some("1"), "reserved keys are read");
        assert_eq!(received.get_bin("raw-bin"), Some(&[0xff][..]));

        let mut call = Metadata::new();
        call.insert("request-id", "call").unwrap();
        let mut defaults = Metadata::new();
        defaults.insert("request-id", "default").unwrap();
        defaults.insert("tenant", "t1").unwrap();
        call.fill_from(&defaults);
        assert_eq!(call.get_str("request-id"), Some("call"));
        assert_eq!(call.get_str("tenant"), Some("t1"));
    }
}
