//! Record framing: checksums, a bounds-checked reader, varints.
//!
//! Every stage hand-encodes its formats (those bytes are what the course teaches), and all
//! of them are built from the same pieces:
//!
//! * integers are **little-endian** and fixed width unless a format says "varint";
//! * a **varint** is LEB128: 7 bits per byte, low bits first, high bit set on every byte but
//!   the last (at most 10 bytes for a `u64`);
//! * every record and block carries a **CRC32** (IEEE polynomial, the `crc32fast` crate) of the
//!   bytes it protects, computed with [`crc32`] or [`crc32_parts`].
//!
//! Decoding goes through [`ByteReader`], which checks every length against the bytes that
//! remain before it slices, so a corrupt length field can never cause a panic or an
//! allocation larger than the input.

use std::fmt;

/// CRC32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// CRC32 of the concatenation of `parts`, without concatenating them.
pub fn crc32_parts(parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}

/// Appends `v` as a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Number of bytes [`put_varint`] writes for `v`.
pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Why a decoder rejected its input: where (offset from the start of what it was given)
/// and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset, relative to the start of the decoded slice.
    pub offset: usize,
    /// What was wrong.
    pub detail: String,
}

impl DecodeError {
    /// A decode error at `offset`.
    pub fn new(offset: usize, detail: impl Into<String>) -> Self {
        DecodeError {
            offset,
            detail: detail.into(),
        }
    }

    /// Turns this into [`crate::Error::Corruption`] for `file`, where the decoded slice
    /// started at byte `base` of the file.
    pub fn into_corruption(self, file: &std::path::Path, base: u64) -> crate::Error {
        crate::Error::corruption(file, base + self.offset as u64, self.detail)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.detail)
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over a byte slice whose every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        ByteReader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes, or an error naming `what` when fewer remain.
    ///
    /// # Errors
    /// [`DecodeError`] when fewer than `n` bytes remain.
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::new(
                self.pos,
                format!("{what}: needs {n} bytes, {} remain", self.remaining()),
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let bytes = self.bytes(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// One byte.
    ///
    /// # Errors
    /// [`DecodeError`] at the end of the input.
    pub fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A little-endian `u16`.
    ///
    /// # Errors
    /// [`DecodeError`] when too few bytes remain.
    pub fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// A little-endian `u32`.
    ///
    /// # Errors
    /// [`DecodeError`] when too few bytes remain.
    pub fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A little-endian `u64`.
    ///
    /// # Errors
    /// [`DecodeError`] when too few bytes remain.
    pub fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A LEB128 varint.
    ///
    /// # Errors
    /// [`DecodeError`] when it runs off the end or is longer than 10 bytes.
    pub fn varint(&mut self, what: &str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::new(
            start,
            format!("{what}: varint longer than 10 bytes"),
        ))
    }

    /// A length field that must not exceed `max` nor the bytes remaining; returns it as `usize`.
    ///
    /// # Errors
    /// [`DecodeError`] when the length is over either bound.
    pub fn check_len(&self, len: u64, max: usize, what: &str) -> Result<usize, DecodeError> {
        if len > max as u64 || len > self.remaining() as u64 {
            return Err(DecodeError::new(
                self.pos,
                format!(
                    "{what} {len} is over its bound (limit {max}, {} bytes remain)",
                    self.remaining()
                ),
            ));
        }
        Ok(len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut r = ByteReader::new(&out);
            assert_eq!(r.varint("v").unwrap(), v);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn reads_are_bounds_checked() {
        let mut r = ByteReader::new(&[1, 0, 0]);
        assert!(r.u32("n").is_err());
        assert_eq!(r.u16("n").unwrap(), 1);
        assert!(r.bytes(2, "key").is_err());
        assert!(r.check_len(5, 100, "len").is_err());
        assert!(r.check_len(1, 0, "len").is_err());
        assert_eq!(r.check_len(1, 1, "len").unwrap(), 1);
        assert!(ByteReader::new(&[0xff; 11]).varint("v").is_err());
        assert!(ByteReader::new(&[0x80]).varint("v").is_err());
    }

    #[test]
    fn crc_parts_equal_whole() {
        assert_eq!(crc32_parts(&[b"ab", b"", b"cd"]), crc32(b"abcd"));
    }
}
