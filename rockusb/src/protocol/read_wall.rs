//! The vendor loaders' 32 MiB read wall (docs/protocol.md §6.1): rkbin usbplugs answer any
//! READ_LBA that ends past sector 65536 with 0xCC bytes and a success status, whatever the
//! storage holds. Every reader of a board (verify, backup, GPT inspection) and the virtual
//! board that reproduces it take the facts from here.

/// Reads ending past this sector hit the wall.
pub const READ_WALL_SECTORS: u64 = 65536;
/// The same limit in bytes (32 MiB).
pub const READ_WALL_BYTES: u64 = READ_WALL_SECTORS * 512;
/// The byte every sector of a walled read is filled with.
pub const READ_WALL_FILL: u8 = 0xCC;

/// Whether a read of sectors ending (exclusively) at `end_sector` reaches past the wall.
pub fn reaches_past(end_sector: u64) -> bool {
    end_sector > READ_WALL_SECTORS
}

/// Whether `data`, read from sectors ending at `end_sector`, is the wall's answer rather
/// than the storage's contents.
pub fn is_wall_answer(end_sector: u64, data: &[u8]) -> bool {
    reaches_past(end_sector) && !data.is_empty() && data.iter().all(|&b| b == READ_WALL_FILL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_read_past_sector_65536_filled_with_0xcc_is_the_wall() {
        assert!(is_wall_answer(65537, &[0xCC; 512]));
        assert!(!is_wall_answer(65536, &[0xCC; 512]));
        assert!(!is_wall_answer(70000, &[0xCC, 0]));
        assert!(!is_wall_answer(70000, &[]));
        assert_eq!(READ_WALL_BYTES, 32 << 20);
    }
}
