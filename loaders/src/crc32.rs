//! Rockchip's CRC-32, the trailer of every loader container.
//!
//! It is not the common CRC-32: the polynomial is 0x04C10DB7 (one bit differs from
//! 0x04C11DB7), nothing is reflected, the register starts at 0 and there is no final
//! xor. rkdeveloptool, xrock and boot_merger all use this table-driven variant.

use crc::{Algorithm, Crc};

/// The Rockchip CRC-32 parameters in `crc` crate form.
pub const ROCKCHIP_CRC32: Algorithm<u32> = Algorithm {
    width: 32,
    poly: 0x04c1_0db7,
    init: 0,
    refin: false,
    refout: false,
    xorout: 0,
    check: 0x889a_9615,
    residue: 0,
};

const CRC: Crc<u32> = Crc::<u32>::new(&ROCKCHIP_CRC32);

/// Rockchip CRC-32 of `data`.
pub fn rockchip_crc32(data: &[u8]) -> u32 {
    CRC.checksum(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_of_123456789() {
        assert_eq!(rockchip_crc32(b"123456789"), 0x889A_9615);
    }

    #[test]
    fn table_starts_like_the_vendor_table() {
        // With init 0, the CRC of one byte n is entry n of the vendor lookup table.
        assert_eq!(rockchip_crc32(&[0x01]), 0x04c1_0db7);
        assert_eq!(rockchip_crc32(&[0x02]), 0x0982_1b6e);
        assert_eq!(rockchip_crc32(&[0xff]), 0xb1f8_80b4);
    }
}
