//! Board layouts: the fixed byte positions of the bootloader and the GPT on a board's boot storage.

/// Bytes per logical sector on eMMC and SD.
pub const SECTOR_SIZE: u64 = 512;

/// A half-open byte range `[start, start + len)` on a storage device or in an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    pub start: u64,
    pub len: u64,
}

impl ByteRange {
    pub const fn new(start: u64, len: u64) -> Self {
        Self { start, len }
    }

    /// One past the last byte of the range.
    pub const fn end(&self) -> u64 {
        self.start + self.len
    }

    pub const fn contains(&self, offset: u64) -> bool {
        offset >= self.start && offset < self.end()
    }

    pub const fn overlaps(&self, other: &ByteRange) -> bool {
        self.start < other.end() && other.start < self.end()
    }

    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Builds `[start, end)`; `None` when `end < start`.
    pub const fn from_bounds(start: u64, end: u64) -> Option<Self> {
        if end < start {
            None
        } else {
            Some(Self::new(start, end - start))
        }
    }

    /// The bytes both ranges cover, if any.
    pub fn intersection(&self, other: &ByteRange) -> Option<ByteRange> {
        let start = self.start.max(other.start);
        let end = self.end().min(other.end());
        (start < end).then(|| ByteRange::new(start, end - start))
    }

    /// This range cut off at `limit` (e.g. the end of an image); `None` if nothing is left.
    pub fn clip_to(&self, limit: u64) -> Option<ByteRange> {
        self.intersection(&ByteRange::new(0, limit))
    }
}

impl std::fmt::Display for ByteRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bytes {}..{}", self.start, self.end())
    }
}

/// Partitions start on 1 MiB boundaries (2048 sectors), as sgdisk and Talos's imager place
/// them.
pub const PARTITION_ALIGNMENT_LBAS: u64 = 2048;

/// How much of the end of the target storage is wiped after flashing: the device's old
/// backup GPT (header and entries, 33 sectors) lives in its last sectors, and 1 MiB covers
/// it with room for tools that align it (docs/disk-layout.md §2).
pub const OLD_BACKUP_GPT_WIPE_LEN: u64 = 1024 * 1024;

/// Where a board's boot chain and partition table live on its boot storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardLayout {
    /// Short board name, as used in file names and on the command line.
    pub name: &'static str,
    /// Human-readable board name.
    pub display_name: &'static str,
    /// The SoC family, as the loader container names it (e.g. "RK3588").
    pub soc: &'static str,
    /// Sector where the combined `u-boot-rockchip.bin` (idbloader first) is written.
    /// The RK3588 BootROM looks for the ID block at sector 64 of eMMC and SD.
    pub bootloader_lba: u64,
    /// Offset of `u-boot.itb` inside `u-boot-rockchip.bin` (`CONFIG_SPL_PAD_TO`).
    /// SPL loads it from raw sector `bootloader_lba + itb_offset / 512` (sector 16384).
    pub itb_offset_in_bootloader: u64,
    /// Sectors skipped between the primary GPT header (LBA 1) and the primary entry
    /// array: Talos's `partitionOptions.offset`, so the entry array starts at LBA 2 + this.
    pub gpt_skip_lbas: u64,
    /// Number of GPT partition entries and the size of each (Talos: 128 × 128 bytes).
    pub gpt_entry_count: u64,
    pub gpt_entry_size: u64,
    /// The leading region that must always be written in full: the protective MBR,
    /// the primary GPT and the bootloader, rounded up to the first partition's 1 MiB
    /// alignment (11 MiB on the Talos layout: EFI starts at LBA 22528).
    pub must_write_prefix: u64,
    /// GPT partition names whose whole extent must be written, zeros included.
    /// Talos's META holds the ADV; a stale one left on the eMMC would inject old settings.
    pub must_write_partitions: &'static [&'static str],
    /// Further fixed byte ranges that must be written in full (none on the M6: its
    /// bootloader and GPT lie inside `must_write_prefix`).
    pub must_write_ranges: &'static [ByteRange],
    /// The GPT partition names a Talos image built with this board's overlay carries, in order.
    pub talos_partitions: &'static [&'static str],
}

/// The FriendlyElec NanoPi M6 (RK3588S) with a Talos image (overlay offset 20480).
pub const NANOPI_M6: BoardLayout = BoardLayout {
    name: "nanopi-m6",
    display_name: "FriendlyElec NanoPi M6",
    soc: "RK3588",
    bootloader_lba: 64,
    itb_offset_in_bootloader: 0x7F_8000,
    gpt_skip_lbas: 20480,
    gpt_entry_count: 128,
    gpt_entry_size: 128,
    must_write_prefix: 11 * 1024 * 1024,
    must_write_partitions: &["META"],
    must_write_ranges: &[],
    talos_partitions: &["EFI", "BIOS", "BOOT", "META"],
};

impl BoardLayout {
    /// Byte offset of the bootloader on the storage (32768 for sector 64).
    pub const fn bootloader_offset(&self) -> u64 {
        self.bootloader_lba * SECTOR_SIZE
    }

    /// First LBA of the primary GPT partition-entry array.
    pub const fn gpt_entries_lba(&self) -> u64 {
        2 + self.gpt_skip_lbas
    }

    /// Byte offset of the primary GPT partition-entry array.
    pub const fn gpt_entries_offset(&self) -> u64 {
        self.gpt_entries_lba() * SECTOR_SIZE
    }

    /// Bytes the primary GPT entry array occupies.
    pub const fn gpt_entries_len(&self) -> u64 {
        self.gpt_entry_count * self.gpt_entry_size
    }

    /// Sectors the primary GPT entry array occupies (32 for 128 entries of 128 bytes).
    pub const fn gpt_entries_lbas(&self) -> u64 {
        self.gpt_entries_len().div_ceil(SECTOR_SIZE)
    }

    /// Where the first partition starts: the first 1 MiB boundary after the primary entry
    /// array, where Talos's imager puts EFI in this board's images (LBA 22528 on the M6);
    /// on a layout whose entry array precedes the bootloader, the end of the must-write
    /// prefix (sector 32768 on the generic Rockchip layout).
    pub const fn first_partition_lba(&self) -> u64 {
        if self.gpt_entries_offset() < self.bootloader_offset() {
            return self.must_write_prefix / SECTOR_SIZE;
        }
        let after_entries = self.gpt_entries_lba() + self.gpt_entries_lbas();
        after_entries.div_ceil(PARTITION_ALIGNMENT_LBAS) * PARTITION_ALIGNMENT_LBAS
    }

    /// The largest bootloader that fits between its offset and whatever follows it: the
    /// GPT entry array when the layout moves it past the bootloader (the NanoPi M6:
    /// 10,486,784 − 32,768 = 10,454,016 bytes), else the end of the must-write prefix,
    /// where the first partition may begin.
    pub const fn bootloader_max_len(&self) -> u64 {
        let end = if self.gpt_entries_offset() > self.bootloader_offset() {
            self.gpt_entries_offset()
        } else {
            self.must_write_prefix
        };
        end.saturating_sub(self.bootloader_offset())
    }

    /// The layout of any Rockchip board without one of its own, for a SoC whose BootROM
    /// looks for the ID block at sector `idb_lba`: Rockchip's partition notes put the
    /// idbloader there, `u-boot.itb` at sector 16384 and the first partition at sector
    /// 32768 (16 MiB), with a standard GPT (entries at LBA 2) — the layout of U-Boot's
    /// `u-boot-rockchip.bin` images and of most distributions' Rockchip images
    /// (opensource.rock-chips.com/wiki_Partitions). Everything before 16 MiB is written in
    /// full; no partition is singled out by name.
    pub const fn rockchip_generic(soc: &'static str, idb_lba: u64) -> BoardLayout {
        BoardLayout {
            name: "rockchip",
            display_name: "Rockchip board (generic layout)",
            soc,
            bootloader_lba: idb_lba,
            itb_offset_in_bootloader: (16_384u64.saturating_sub(idb_lba)) * SECTOR_SIZE,
            gpt_skip_lbas: 0,
            gpt_entry_count: 128,
            gpt_entry_size: 128,
            must_write_prefix: 32_768 * SECTOR_SIZE,
            must_write_partitions: &[],
            must_write_ranges: &[],
            talos_partitions: &[],
        }
    }

    /// The byte range the bootloader may occupy.
    pub const fn bootloader_region(&self) -> ByteRange {
        ByteRange::new(self.bootloader_offset(), self.bootloader_max_len())
    }

    /// Byte offset of `u-boot.itb` on the storage (8 MiB, sector 16384, for the M6).
    pub const fn itb_offset(&self) -> u64 {
        self.bootloader_offset() + self.itb_offset_in_bootloader
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanopi_m6_bootloader_region_matches_talos_facts() {
        assert_eq!(NANOPI_M6.bootloader_offset(), 32_768);
        assert_eq!(NANOPI_M6.gpt_entries_lba(), 20_482);
        assert_eq!(NANOPI_M6.gpt_entries_offset(), 10_486_784);
        assert_eq!(NANOPI_M6.bootloader_max_len(), 10_454_016);
        assert_eq!(NANOPI_M6.itb_offset(), 16_384 * 512);
    }

    #[test]
    fn must_write_prefix_covers_bootloader_and_primary_gpt() {
        let gpt_end = NANOPI_M6.gpt_entries_offset() + NANOPI_M6.gpt_entries_len();
        assert!(NANOPI_M6.must_write_prefix >= gpt_end);
        assert!(NANOPI_M6.must_write_prefix >= NANOPI_M6.bootloader_region().end());
        // EFI, the first Talos partition, starts at LBA 22528 = 11 MiB.
        assert_eq!(NANOPI_M6.must_write_prefix, 22_528 * SECTOR_SIZE);
        assert_eq!(NANOPI_M6.first_partition_lba(), 22_528);
    }

    #[test]
    fn the_generic_layout_keeps_a_standard_gpt_before_the_bootloader() {
        let generic = BoardLayout::rockchip_generic("RK3568", 64);
        assert_eq!(generic.gpt_entries_lba(), 2);
        assert_eq!(generic.bootloader_offset(), 32_768);
        assert_eq!(generic.itb_offset(), 16_384 * 512);
        // The boot chain may fill everything up to the first partition at 16 MiB.
        assert_eq!(generic.bootloader_max_len(), 16 * 1024 * 1024 - 32_768);
        assert_eq!(generic.bootloader_region().end(), generic.must_write_prefix);
    }

    #[test]
    fn byte_range_overlap_is_half_open() {
        let a = ByteRange::new(0, 10);
        assert!(a.overlaps(&ByteRange::new(9, 1)));
        assert!(!a.overlaps(&ByteRange::new(10, 5)));
        assert!(a.contains(9) && !a.contains(10));
    }
}
