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
//!
//! Many files start the same way, and the small ones that are read whole end the same way:
//!
//! * a **magic and version** header: 8 bytes that name the kind of file, then its format
//!   version as a `u32` ([`put_magic_version`], checked by [`ByteReader::magic_version`] or
//!   read past by [`ByteReader::past_magic_version`]);
//! * a **whole-file checksum**: the CRC32 of every byte before it, and nothing after it
//!   ([`put_crc`], checked by [`ByteReader::crc_at_end`]): the store marker, a merge's
//!   commit record, stage 4's `CURRENT`.

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

/// Appends the header many files start with: the 8-byte `magic`, then `version` as a
/// `u32` LE.
pub fn put_magic_version(out: &mut Vec<u8>, magic: &[u8; 8], version: u32) {
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
}

/// Appends the CRC32 of every byte of `out` so far, as a `u32` LE: the end of a small file
/// that is checked whole.
pub fn put_crc(out: &mut Vec<u8>) {
    let crc = crc32(out);
    out.extend_from_slice(&crc.to_le_bytes());
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

    /// A reader over `bytes` past the header [`put_magic_version`] writes at their start,
    /// checked as [`ByteReader::magic_version`] checks it: how a file with that header is
    /// read.
    ///
    /// # Errors
    /// As [`ByteReader::magic_version`].
    pub fn past_magic_version(
        bytes: &'a [u8],
        magic: &[u8; 8],
        version: u32,
        what: &str,
    ) -> Result<Self, DecodeError> {
        let mut r = ByteReader::new(bytes);
        r.magic_version(magic, version, what)?;
        Ok(r)
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

    /// A LEB128 varint, in its one canonical form: the shortest encoding of its value, as
    /// [`put_varint`] writes it. A longer one (`0x85 0x00` for 5: a last byte of zero after
    /// others) or one whose bits overflow 64 is refused, so that a value has one byte
    /// string, and the length of a field can be computed from its value (dumps rely on
    /// it).
    ///
    /// # Errors
    /// [`DecodeError`] when it runs off the end, is longer than 10 bytes, is not the
    /// shortest encoding of its value, or overflows 64 bits.
    pub fn varint(&mut self, what: &str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            if shift == 63 && byte > 1 {
                return Err(DecodeError::new(
                    start,
                    format!("{what}: varint over 64 bits"),
                ));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    let detail = format!("{what}: varint not in its shortest form");
                    return Err(DecodeError::new(start, detail));
                }
                return Ok(value);
            }
        }
        Err(DecodeError::new(
            start,
            format!("{what}: varint longer than 10 bytes"),
        ))
    }

    /// Reads the header [`put_magic_version`] writes and checks it against `magic` and
    /// `version`, the ones this build writes. `what` names the kind of file in the errors.
    ///
    /// # Errors
    /// [`DecodeError`] at the magic, "not a `what` (bad magic)", or at the version, "`what`
    /// version N, this build reads `version`"; or when too few bytes remain.
    pub fn magic_version(
        &mut self,
        magic: &[u8; 8],
        version: u32,
        what: &str,
    ) -> Result<(), DecodeError> {
        let at = self.pos;
        if self.bytes(8, "magic")? != magic {
            return Err(DecodeError::new(at, format!("not a {what} (bad magic)")));
        }
        let found = self.u32("format version")?;
        if found != version {
            return Err(DecodeError::new(
                at + 8,
                format!("{what} version {found}, this build reads {version}"),
            ));
        }
        Ok(())
    }

    /// Reads the checksum [`put_crc`] writes and checks it against every byte before it
    /// (from the start of the bytes this reader was made over), then that nothing follows.
    /// `what` names the kind of file in the errors.
    ///
    /// # Errors
    /// [`DecodeError`] for a short or mismatched checksum, or bytes after it.
    pub fn crc_at_end(&mut self, what: &str) -> Result<(), DecodeError> {
        let body = self.pos;
        if self.u32("checksum")? != crc32(&self.buf[..body]) {
            return Err(DecodeError::new(body, format!("{what} checksum mismatch")));
        }
        if !self.is_empty() {
            return Err(DecodeError::new(
                self.pos,
                format!("trailing bytes after {what}"),
            ));
        }
        Ok(())
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
    fn only_the_shortest_varint_of_a_value_decodes() {
        for (bytes, ok) in [
            (&[0x05][..], Some(5)),
            (&[0x85, 0x00][..], None),
            (&[0x80, 0x80, 0x00][..], None),
            (&[0x80, 0x01][..], Some(128)),
            (
                &[0xff; 9].iter().copied().chain([0x01]).collect::<Vec<u8>>()[..],
                Some(u64::MAX),
            ),
            (
                &[0xff; 9].iter().copied().chain([0x02]).collect::<Vec<u8>>()[..],
                None,
            ),
        ] {
            let got = ByteReader::new(bytes).varint("v");
            assert_eq!(got.as_ref().ok().copied(), ok, "{bytes:02x?}: {got:?}");
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
    fn headers_and_checksums_round_trip_and_catch_damage() {
        let mut out = Vec::new();
        put_magic_version(&mut out, b"TESTFILE", 3);
        out.push(7);
        put_crc(&mut out);
        let read = |bytes: &[u8]| -> Result<u8, DecodeError> {
            let mut r = ByteReader::past_magic_version(bytes, b"TESTFILE", 3, "test file")?;
            let body = r.u8("body")?;
            r.crc_at_end("test file")?;
            Ok(body)
        };
        assert_eq!(read(&out), Ok(7));
        let error = |bytes: &[u8]| read(bytes).unwrap_err().detail;
        let mut bad = out.clone();
        bad[0] ^= 1;
        assert_eq!(error(&bad), "not a test file (bad magic)");
        bad = out.clone();
        bad[8] = 4;
        assert_eq!(error(&bad), "test file version 4, this build reads 3");
        bad = out.clone();
        bad[12] ^= 1;
        assert_eq!(error(&bad), "test file checksum mismatch");
        bad = [out.as_slice(), &[0]].concat();
        assert_eq!(error(&bad), "trailing bytes after test file");
        for cut in 0..out.len() {
            assert!(read(&out[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn crc_parts_equal_whole() {
        assert_eq!(crc32_parts(&[b"ab", b"", b"cd"]), crc32(b"abcd"));
    }
}
