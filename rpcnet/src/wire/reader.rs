//! `Reader`: a cursor over bytes whose length was declared before them (a request head, a
//! metadata frame); running out means the sender lied about the length.

use super::WireError;

/// A cursor over the head's declared bytes; running out means the head lied about its length.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Malformed(what));
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    /// A field preceded by its length in one byte.
    pub(super) fn take_u8_prefixed(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = usize::from(self.u8(what)?);
        self.take(len, what)
    }

    /// A field preceded by its length in two bytes.
    pub(super) fn take_u16_prefixed(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = usize::from(self.u16(what)?);
        self.take(len, what)
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// `bytes` as UTF-8, or an error naming the field.
pub(super) fn utf8<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, WireError> {
    std::str::from_utf8(bytes).map_err(|_| WireError::InvalidUtf8(what))
}
