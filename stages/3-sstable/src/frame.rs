//! The frame around every WAL record and every table block: a CRC32 and a length.
//!
//! One framing for both keeps the lesson small: whatever the bytes inside mean, a reader
//! first checks that they are the bytes that were written.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC32 of bytes `4 .. 8 + n` (the length field and the body), `u32` LE |
//! | 4 | 4 | `n`, the body length, `u32` LE |
//! | 8 | n | the body |
//!
//! The checksum covers the length too, so a flipped length bit is caught even when the
//! flipped length still fits in the file.

use kv_shared::framing::{ByteReader, DecodeError, crc32};

/// Bytes before the body: checksum and length.
pub const FRAME_HEADER_LEN: usize = 8;

/// Starts a frame at the end of `out`: reserves its header. Append the body to `out`, then
/// call [`seal`] with the returned start offset.
pub fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    start
}

/// Fills in the header of the frame begun at `start`: everything after the header, up to
/// the end of `out`, is its body.
///
/// # Panics
/// When the body is 4 GiB or longer; callers bound bodies far below that.
pub fn seal(out: &mut [u8], start: usize) {
    let body_len = out.len() - start - FRAME_HEADER_LEN;
    let len = u32::try_from(body_len).expect("frame bodies are bounded far below 4 GiB");
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    let crc = crc32(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The whole frame's length (header included) from its first [`FRAME_HEADER_LEN`] bytes,
/// refusing a body longer than `max_body`.
///
/// # Errors
/// [`DecodeError`] when the header is short or the length is over `max_body`.
pub fn frame_len(header: &[u8], max_body: usize) -> Result<usize, DecodeError> {
    let mut r = ByteReader::new(header);
    r.u32("frame checksum")?;
    let len = r.u32("frame length")?;
    if len as usize > max_body {
        return Err(DecodeError::new(
            4,
            format!("frame length {len} is over the limit of {max_body}"),
        ));
    }
    Ok(FRAME_HEADER_LEN + len as usize)
}

/// The body of the frame that is exactly `frame`, after checking its length and checksum.
///
/// # Errors
/// [`DecodeError`] when the length does not match or the checksum fails.
pub fn open(frame: &[u8]) -> Result<&[u8], DecodeError> {
    let mut r = ByteReader::new(frame);
    let crc = r.u32("frame checksum")?;
    let len = r.u32("frame length")? as usize;
    if len != r.remaining() {
        return Err(DecodeError::new(
            4,
            format!("frame length {len} but {} body bytes", r.remaining()),
        ));
    }
    let actual = crc32(&frame[4..]);
    if actual != crc {
        return Err(DecodeError::new(
            0,
            format!("checksum mismatch: stored {crc:#010x}, computed {actual:#010x}"),
        ));
    }
    r.bytes(len, "frame body")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flip_is_caught() {
        let mut out = b"prefix".to_vec();
        let start = begin(&mut out);
        out.extend_from_slice(b"hello frame");
        seal(&mut out, start);
        let frame = &out[start..];
        assert_eq!(frame_len(frame, 100).unwrap(), frame.len());
        assert_eq!(open(frame).unwrap(), b"hello frame");
        assert!(frame_len(frame, 5).is_err());
        for i in 0..frame.len() {
            for bit in 0..8 {
                let mut bad = frame.to_vec();
                bad[i] ^= 1 << bit;
                assert!(open(&bad).is_err(), "flip of bit {bit} at byte {i} missed");
            }
        }
    }
}
