//! Metadata lists as the wire carries them, in a request head and in a response's METADATA
//! frame: a count, then each key and value with its length. Bounded by the receiver's
//! `Limits` in entries and (with the rest of the head, or as the frame) in bytes.

use bytes::BufMut;

use super::reader::{Reader, utf8};
use super::{Limits, WireError};

/// One metadata entry: a UTF-8 key and a binary value.
pub type MetadataEntry<'a> = (&'a str, &'a [u8]);

/// Bytes [`encode_entries`] writes: the count and every entry.
pub(super) fn entries_len(entries: &[MetadataEntry<'_>]) -> usize {
    1 + entries.iter().map(|(k, v)| 1 + k.len() + 2 + v.len()).sum::<usize>()
}

/// Checks that `entries` fit the layout and the count of `limits`.
pub(super) fn check_entries(entries: &[MetadataEntry<'_>], limits: &Limits) -> Result<(), WireError> {
    if entries.len() > usize::from(limits.max_metadata_entries) {
        return Err(WireError::TooManyMetadataEntries {
            count: entries.len(),
            max: usize::from(limits.max_metadata_entries),
        });
    }
    for (key, value) in entries {
        if key.is_empty() || key.len() > usize::from(u8::MAX) {
            return Err(WireError::Malformed("metadata key (must be 1 to 255 bytes)"));
        }
        if value.len() > usize::from(u16::MAX) {
            return Err(WireError::Malformed("metadata value (must be at most 65535 bytes)"));
        }
    }
    Ok(())
}

/// Writes entries that [`check_entries`] accepted.
pub(super) fn encode_entries(entries: &[MetadataEntry<'_>], out: &mut impl BufMut) {
    out.put_u8(entries.len() as u8);
    for (key, value) in entries {
        out.put_u8(key.len() as u8);
        out.put_slice(key.as_bytes());
        out.put_u16(value.len() as u16);
        out.put_slice(value);
    }
}

/// Reads a list; its count is checked against `limits` before anything is allocated.
pub(super) fn decode_entries<'a>(r: &mut Reader<'a>, limits: &Limits) -> Result<Vec<MetadataEntry<'a>>, WireError> {
    let count = usize::from(r.u8("metadata count")?);
    if count > usize::from(limits.max_metadata_entries) {
        return Err(WireError::TooManyMetadataEntries { count, max: usize::from(limits.max_metadata_entries) });
    }
    // `Vec::new` costs nothing when, as on most calls, there is no metadata.
    let mut entries = if count == 0 { Vec::new() } else { Vec::with_capacity(count) };
    for _ in 0..count {
        let key = r.take_u8_prefixed("metadata key")?;
        if key.is_empty() {
            return Err(WireError::Malformed("metadata key (empty)"));
        }
        let key = utf8(key, "metadata key")?;
        let value = r.take_u16_prefixed("metadata value")?;
        entries.push((key, value));
    }
    Ok(entries)
}

/// The payload of a response's METADATA frame: the list, checked against `limits` (its
/// length, at most `Limits::max_head_len`, was checked from the frame header).
pub fn encode_metadata_frame(
    entries: &[MetadataEntry<'_>],
    limits: &Limits,
    out: &mut impl BufMut,
) -> Result<(), WireError> {
    check_entries(entries, limits)?;
    let len = entries_len(entries);
    if len > usize::from(limits.max_head_len) {
        return Err(WireError::HeadTooLarge { len, max: usize::from(limits.max_head_len) });
    }
    encode_entries(entries, out);
    Ok(())
}

/// The entries of a METADATA frame's payload, which they must fill exactly.
pub fn decode_metadata_frame<'a>(payload: &'a [u8], limits: &Limits) -> Result<Vec<MetadataEntry<'a>>, WireError> {
    let mut r = Reader(payload);
    let entries = decode_entries(&mut r, limits)?;
    if !r.0.is_empty() {
        return Err(WireError::Malformed("metadata frame (bytes left over after the last entry)"));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metadata_frame_round_trips_and_is_bounded() {
        let limits = Limits::default();
        let entries: Vec<MetadataEntry<'_>> = vec![("served-by", b"node-1"), ("raw-bin", &[0, 255])];
        let mut out = Vec::new();
        encode_metadata_frame(&entries, &limits, &mut out).unwrap();
        assert_eq!(out.len(), entries_len(&entries));
        assert_eq!(decode_metadata_frame(&out, &limits).unwrap(), entries);

        let few = Limits { max_metadata_entries: 1, ..limits };
        assert_eq!(
            decode_metadata_frame(&out, &few),
            Err(WireError::TooManyMetadataEntries { count: 2, max: 1 }),
            "the count is refused before any entry is read"
        );
        assert!(matches!(
            encode_metadata_frame(&entries, &few, &mut Vec::new()),
            Err(WireError::TooManyMetadataEntries { .. })
        ));
        let small = Limits { max_head_len: 8, ..limits };
        assert!(matches!(
            encode_metadata_frame(&entries, &small, &mut Vec::new()),
            Err(WireError::HeadTooLarge { .. })
        ));
        out.push(0);
        assert!(matches!(decode_metadata_frame(&out, &limits), Err(WireError::Malformed(_))));
        assert!(decode_metadata_frame(&out[..out.len() - 3], &limits).is_err(), "a cut entry is refused");
    }
}
