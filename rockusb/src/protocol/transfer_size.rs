//! Transfer-size negotiation (docs/protocol.md §9.3): TEST_UNIT_READY with CDB[1] = 0xF7
//! asks a vendor U-Boot loader for its large transfer buffer, and the answer is in the
//! status block's residue.
//!
//! Vendor U-Boot sets the residue to `shift << 24` (little-endian, as all its residues) and
//! moves `(1 << shift) × 4 KiB` per USB request: 10 (4 MiB) after 0xF7 when its buffer is
//! that large, 6 (256 KiB) by default, 3 for SPI-NOR (f_rockusb.c:204-215). Other loaders
//! answer 0 or the host's length there, which reads as "no answer", and the host keeps its
//! own sizes. upgrade_tool sends 0xF7 to every loader on Linux.

/// CDB[1] of TEST_UNIT_READY asking for the large transfer buffer.
pub const TUR_SUBCODE_BIG_TRB: u8 = 0xF7;

/// The smallest and largest shifts read as an answer: 32 KiB (SPI-NOR) to 64 MiB. Anything
/// else in the residue is another loader's habit, not a size.
const SHIFTS: std::ops::RangeInclusive<u32> = 3..=14;

/// The transfer size a TEST_UNIT_READY residue announces, in bytes, if it announces one.
pub fn from_residue(residue_raw: [u8; 4]) -> Option<u32> {
    let value = u32::from_le_bytes(residue_raw);
    let shift = value >> 24;
    (value & 0x00FF_FFFF == 0 && SHIFTS.contains(&shift)).then(|| (1u32 << shift) * 4096)
}

/// The residue a vendor U-Boot loader answers for a transfer of `(1 << shift) × 4 KiB`.
pub fn residue_for_shift(shift: u8) -> [u8; 4] {
    (u32::from(shift) << 24).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residues_of_vendor_uboot_and_of_other_loaders() {
        assert_eq!(from_residue(residue_for_shift(10)), Some(4 << 20));
        assert_eq!(from_residue(residue_for_shift(6)), Some(256 << 10));
        assert_eq!(from_residue(residue_for_shift(3)), Some(32 << 10));
        // Zero (the rkbin usbplug as modelled), a host length (mainline U-Boot), a
        // big-endian reply length: no answer.
        assert_eq!(from_residue([0; 4]), None);
        assert_eq!(from_residue(0u32.to_be_bytes()), None);
        assert_eq!(from_residue(512u32.to_le_bytes()), None);
        assert_eq!(from_residue(16u32.to_be_bytes()), None);
        assert_eq!(from_residue((31u32 << 24).to_le_bytes()), None);
    }
}
