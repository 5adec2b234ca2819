//! Write parity (docs/protocol.md §9.1): a checksum of a WRITE_LBA command's data, carried
//! in its CDB, that vendor loaders check against what they re-read from the medium.
//!
//! As upgrade_tool computes it and vendor U-Boot checks it (`rkusb_do_check_parity`):
//! 0x55AA plus the data read as little-endian u32 words, summed with wrap-around, stored
//! little-endian at CDB[9..13] with the CDB length raised to 13 (vendor U-Boot copies only
//! `bCBWCBLength` CDB bytes, so a 10-byte CDB would drop it). Zero means "no parity".

/// What the sum starts from.
pub const PARITY_SEED: u32 = 0x0000_55AA;
/// Where the parity word sits in the CDB.
pub const PARITY_CDB_RANGE: std::ops::Range<usize> = 9..13;
/// The CDB length a parity write must declare.
pub const PARITY_CDB_LEN: u8 = 13;
/// The largest write the device can check: vendor U-Boot re-reads into a static 1 MiB
/// buffer without checking the length (f_rockusb.c:1098), so a longer parity write
/// overruns it. Inferred from the source, not tested on hardware.
pub const MAX_PARITY_SECTORS: u32 = 2048;

/// The parity word of `data`: 0x55AA plus its little-endian u32 words, wrapping. A
/// trailing partial word (never the case for whole sectors) counts zero-padded.
pub fn write_parity(data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(4);
    let mut sum = words.by_ref().fold(PARITY_SEED, |sum, w| {
        sum.wrapping_add(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
    });
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 4];
        last[..rest.len()].copy_from_slice(rest);
        sum = sum.wrapping_add(u32::from_le_bytes(last));
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_is_seed_plus_le_words_wrapping() {
        assert_eq!(write_parity(&[]), 0x55AA);
        assert_eq!(write_parity(&[0u8; 512]), 0x55AA);
        assert_eq!(write_parity(&[1, 0, 0, 0, 0, 1, 0, 0]), 0x55AA + 1 + 0x100);
        // 0xFFFFFFFF + 0x55AA wraps to 0x55A9.
        assert_eq!(write_parity(&[0xFF; 4]), 0x55A9);
        // Two words of 0x80000000 wrap to zero.
        assert_eq!(write_parity(&[0, 0, 0, 0x80, 0, 0, 0, 0x80]), 0x55AA);
        // One byte changed anywhere changes the sum.
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        let mut damaged = data.clone();
        damaged[2049] ^= 0x01;
        assert_ne!(write_parity(&data), write_parity(&damaged));
    }
}
