//! The documented size limits for keys and values, the same for every engine.
//!
//! Limits keep every length field in every format bounded, so a decoder can reject a
//! corrupt length before it allocates anything: a key length above [`MAX_KEY_LEN`] or a
//! value length above [`MAX_VALUE_LEN`] on disk is corruption, not a reason to allocate.

use crate::{Error, Result};

/// Longest key accepted, in bytes (64 KiB - 1, so it fits a `u16` length field).
pub const MAX_KEY_LEN: usize = u16::MAX as usize;

/// Longest value accepted, in bytes (16 MiB).
pub const MAX_VALUE_LEN: usize = 16 << 20;

/// Checks a key and value against the limits.
///
/// # Errors
/// [`Error::KeyTooLarge`] or [`Error::ValueTooLarge`]; the caller then writes nothing.
pub fn check_key_value(key: &[u8], value: &[u8]) -> Result<()> {
    check_key(key)?;
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

/// Checks a key against [`MAX_KEY_LEN`].
///
/// # Errors
/// [`Error::KeyTooLarge`].
pub fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}
