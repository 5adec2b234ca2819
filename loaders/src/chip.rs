//! The 4-byte chip code stored in a loader header.
//!
//! boot_merger takes the ini `NAME` ("RK3588"), drops the leading "RK" and stores the
//! next four characters as a big-endian u32, which a little-endian reader sees as the
//! reversed text "8853". Names that do not start with "RK" (PX30) keep all four
//! characters ("03XP").

use std::fmt;

use serde::{Serialize, Serializer};

/// Chip code as stored in the file (`bytes` is exactly the four header bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChipCode {
    bytes: [u8; 4],
}

impl ChipCode {
    /// Wraps the four header bytes as they appear in the file ("8853" for RK3588).
    pub const fn from_file_bytes(bytes: [u8; 4]) -> Self {
        ChipCode { bytes }
    }

    /// Builds the code boot_merger derives from an ini `NAME` such as "RK3588" or
    /// "RK330C". Returns `None` for names with fewer than four characters after "RK"
    /// or with non-ASCII characters.
    pub fn from_ini_name(name: &str) -> Option<Self> {
        let name = name.trim();
        if !name.is_ascii() {
            return None;
        }
        let upper = name.to_ascii_uppercase();
        let core = upper.strip_prefix("RK").unwrap_or(&upper);
        let chars = core.as_bytes().get(..4)?;
        let mut bytes = [0u8; 4];
        for (dst, src) in bytes.iter_mut().zip(chars.iter().rev()) {
            *dst = *src;
        }
        Some(ChipCode { bytes })
    }

    /// The four bytes exactly as stored in the header.
    pub const fn file_bytes(&self) -> [u8; 4] {
        self.bytes
    }

    /// The header field read as a little-endian u32 (0x33353838 for RK3588).
    pub fn as_u32(&self) -> u32 {
        u32::from_le_bytes(self.bytes)
    }

    /// True for the small integers rkdeveloptool uses for pre-RK30 parts
    /// (RK27, RK28, …), which are not text.
    pub fn is_legacy_enum(&self) -> bool {
        !self.bytes.iter().all(|b| b.is_ascii_alphanumeric())
    }
}

impl fmt::Display for ChipCode {
    /// "RK3588", "RK330C", "PX30"; legacy numeric codes print as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_legacy_enum() {
            return write!(f, "legacy chip type {:#x}", self.as_u32());
        }
        let text: String = self.bytes.iter().rev().map(|&b| b as char).collect();
        if text.as_bytes()[0].is_ascii_digit() {
            write!(f, "RK{text}")
        } else {
            f.write_str(&text)
        }
    }
}

impl fmt::Debug for ChipCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChipCode({self})")
    }
}

impl Serialize for ChipCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rk3588_is_stored_reversed() {
        let code = ChipCode::from_ini_name("RK3588").unwrap();
        assert_eq!(&code.file_bytes(), b"8853");
        assert_eq!(code.as_u32(), 0x3335_3838);
        assert_eq!(code.to_string(), "RK3588");
    }

    #[test]
    fn letter_suffixes_and_px30_display_like_the_ini_name() {
        assert_eq!(
            &ChipCode::from_ini_name("RK330C").unwrap().file_bytes(),
            b"C033"
        );
        assert_eq!(ChipCode::from_file_bytes(*b"C033").to_string(), "RK330C");
        assert_eq!(
            &ChipCode::from_ini_name("PX30").unwrap().file_bytes(),
            b"03XP"
        );
        assert_eq!(ChipCode::from_file_bytes(*b"03XP").to_string(), "PX30");
    }

    #[test]
    fn short_names_are_rejected() {
        assert!(ChipCode::from_ini_name("RK35").is_none());
    }
}
