//! Recognising a Rockchip bootloader (an ID block) where the BootROM looks for it.
//!
//! Two header formats exist (u-boot `tools/rkcommon.c`):
//! - v2, RK35xx: a plain 2 KiB header starting with the magic `RKNS`;
//! - v1, RK33xx and older: the first 512 bytes are RC4-encrypted with Rockchip's fixed
//!   key and decrypt to the magic 0x0FF0AA55 (bytes `55 AA F0 0F`).

/// Rockchip's well-known RC4 key for ID blocks and loader payloads.
const RC4_KEY: [u8; 16] = [
    0x7C, 0x4E, 0x03, 0x04, 0x55, 0x05, 0x09, 0x07, 0x2D, 0x2C, 0x7B, 0x38, 0x17, 0x0D, 0x17, 0x11,
];

/// What sits at the bootloader offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootloaderKind {
    /// An `RKNS` (v2) ID block header.
    Rkns,
    /// An RC4-encrypted (v1) ID block header.
    Rc4IdBlock,
    /// The sector is all zeros.
    Empty,
    /// Something else.
    Unknown,
}

impl BootloaderKind {
    pub fn is_present(self) -> bool {
        matches!(self, Self::Rkns | Self::Rc4IdBlock)
    }
}

/// RC4 keystream applied to `data` in place (encrypting and decrypting are the same).
pub fn rc4_apply(key: &[u8], data: &mut [u8]) {
    if key.is_empty() {
        return;
    }
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j = 0u8;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, j as usize);
    }
    let (mut i, mut j) = (0u8, 0u8);
    for byte in data {
        i = i.wrapping_add(1);
        j = j.wrapping_add(s[i as usize]);
        s.swap(i as usize, j as usize);
        *byte ^= s[s[i as usize].wrapping_add(s[j as usize]) as usize];
    }
}

/// Classifies the first sector of the bootloader region.
pub fn detect(sector: &[u8; 512]) -> BootloaderKind {
    if &sector[..4] == b"RKNS" {
        return BootloaderKind::Rkns;
    }
    let mut plain = *sector;
    rc4_apply(&RC4_KEY, &mut plain);
    if plain[..4] == [0x55, 0xAA, 0xF0, 0x0F] {
        return BootloaderKind::Rc4IdBlock;
    }
    if sector.iter().all(|&b| b == 0) {
        BootloaderKind::Empty
    } else {
        BootloaderKind::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rc4_matches_the_classic_test_vector() {
        // RFC 6229-style check: key "Key", plaintext "Plaintext".
        let mut data = *b"Plaintext";
        rc4_apply(b"Key", &mut data);
        assert_eq!(data, [0xBB, 0xF3, 0x16, 0xE8, 0xD9, 0x40, 0xAF, 0x0A, 0xD3]);
    }

    #[test]
    fn recognises_both_header_generations() {
        let mut v2 = [0u8; 512];
        v2[..4].copy_from_slice(b"RKNS");
        assert_eq!(detect(&v2), BootloaderKind::Rkns);

        let mut v1 = [0u8; 512];
        v1[..4].copy_from_slice(&[0x55, 0xAA, 0xF0, 0x0F]);
        rc4_apply(&RC4_KEY, &mut v1);
        assert_eq!(detect(&v1), BootloaderKind::Rc4IdBlock);

        assert_eq!(detect(&[0u8; 512]), BootloaderKind::Empty);
        assert_eq!(detect(&[0xFFu8; 512]), BootloaderKind::Unknown);
    }
}
