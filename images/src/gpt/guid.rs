//! GPT GUIDs: 16 bytes stored mixed-endian (the first three fields little-endian).

use std::fmt;
use std::str::FromStr;

/// A GUID as stored on disk.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub const ZERO: Guid = Guid([0; 16]);

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }

    /// A well-known name for partition type GUIDs Talos and common tools use.
    pub fn type_name(&self) -> Option<&'static str> {
        KNOWN_TYPES
            .iter()
            .find(|(text, _)| text.parse::<Guid>().is_ok_and(|g| g == *self))
            .map(|(_, name)| *name)
    }
}

const KNOWN_TYPES: &[(&str, &str)] = &[
    ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI system"),
    ("21686148-6449-6E6F-744E-656564454649", "BIOS boot"),
    ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem"),
    ("B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "Linux root (arm64)"),
    (
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
        "Linux root (x86-64)",
    ),
    ("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap"),
    ("E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM"),
    (
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
        "Microsoft basic data",
    ),
];

/// Displayed the usual way: `C12A7328-F81F-11D2-BA4B-00A0C93EC93B`.
impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02X}"))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a GUID (expected the form C12A7328-F81F-11D2-BA4B-00A0C93EC93B)")]
pub struct GuidParseError(String);

impl FromStr for Guid {
    type Err = GuidParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || GuidParseError(s.to_string());
        let groups: Vec<&str> = s.split('-').collect();
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lens != [8, 4, 4, 4, 12] {
            return Err(err());
        }
        let hex: String = groups.concat();
        let mut text = [0u8; 16];
        for (i, byte) in text.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or_else(err)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| err())?;
        }
        // The first three groups are stored little-endian.
        let mut b = text;
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        Ok(Guid(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_mixed_endian_and_round_trips() {
        // The disk GUID bytes of the gpt-crate fixture header (offset 0x38).
        let bytes = [
            0xfa, 0x2b, 0x6a, 0x1b, 0x2b, 0xe9, 0x4c, 0x18, 0xa8, 0xa7, 0xed, 0x06, 0x10, 0xd5,
            0x48, 0x21,
        ];
        let g = Guid(bytes);
        assert_eq!(g.to_string(), "1B6A2BFA-E92B-184C-A8A7-ED0610D54821");
        assert_eq!(
            "1B6A2BFA-E92B-184C-A8A7-ED0610D54821".parse::<Guid>(),
            Ok(g)
        );
    }

    #[test]
    fn rejects_malformed_text_and_names_known_types() {
        assert!("1B6A2BFA-E92B-184C-A8A7".parse::<Guid>().is_err());
        assert!(
            "ZZ6A2BFA-E92B-184C-A8A7-ED0610D54821"
                .parse::<Guid>()
                .is_err()
        );
        let efi: Guid = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b".parse().unwrap();
        assert_eq!(efi.type_name(), Some("EFI system"));
        assert_eq!(Guid::ZERO.type_name(), None);
    }
}
