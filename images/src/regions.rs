//! Regions of an image that must be written in full, zeros included, and the range to
//! wipe at the end of the target storage (docs/disk-layout.md §2).
//!
//! Skipping a zero run leaves whatever the storage held there before. That is harmless
//! inside a file system's free space but not where old bytes mean something: the
//! bootloader and GPT area, and Talos's META partition, whose stale ADV would inject old
//! network, encryption or UUID settings. After the image, the device's old backup GPT
//! (in its last sectors) must go too, or tools could "repair" the new table from it.

use crate::gpt::GptReport;
use crate::layout::{BoardLayout, ByteRange, OLD_BACKUP_GPT_WIPE_LEN, SECTOR_SIZE};
use std::fmt;

/// Why a region must be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MustWriteReason {
    /// The layout's leading region: MBR, primary GPT, bootloader.
    Prefix,
    /// A partition the layout names (META).
    Partition(String),
    /// A fixed range the layout marks.
    Layout,
}

impl fmt::Display for MustWriteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MustWriteReason::Prefix => f.write_str("bootloader and primary GPT area"),
            MustWriteReason::Partition(name) => write!(f, "partition {name}"),
            MustWriteReason::Layout => f.write_str("region marked by the board layout"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MustWriteRegion {
    pub range: ByteRange,
    pub reason: MustWriteReason,
}

/// What the flasher must write regardless of content, and what it must wipe afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MustWrite {
    /// Inside the image, in the order found (may overlap; see [`Self::merged`]).
    pub regions: Vec<MustWriteRegion>,
    /// Layout partitions the image's GPT does not have (nothing to protect there, but
    /// the pre-flight check warns about it).
    pub missing_partitions: Vec<String>,
    /// Beyond the image, at the end of the storage: zero these bytes after writing.
    /// `None` when the storage length is unknown or the image reaches the end.
    pub wipe_after_image: Option<ByteRange>,
}

impl MustWrite {
    /// The regions sorted and merged, ready for the planner.
    pub fn merged(&self) -> Vec<ByteRange> {
        merge_ranges(self.regions.iter().map(|r| r.range))
    }

    /// Total bytes inside the image that must be written.
    pub fn total_len(&self) -> u64 {
        self.merged().iter().map(|r| r.len).sum()
    }
}

/// Sorts ranges and merges overlapping or touching ones; drops empty ones.
pub fn merge_ranges(ranges: impl IntoIterator<Item = ByteRange>) -> Vec<ByteRange> {
    let mut sorted: Vec<ByteRange> = ranges.into_iter().filter(|r| !r.is_empty()).collect();
    sorted.sort_by_key(|r| r.start);
    let mut out: Vec<ByteRange> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end() => {
                let end = last.end().max(r.end());
                last.len = end - last.start;
            }
            _ => out.push(r),
        }
    }
    out
}

/// `range` minus the sorted, disjoint `holes` (which may reach outside it).
pub fn subtract(range: ByteRange, holes: &[ByteRange]) -> Vec<ByteRange> {
    let mut out = Vec::new();
    let mut pos = range.start;
    for h in holes.iter().filter_map(|h| h.intersection(&range)) {
        if h.start > pos {
            out.push(ByteRange::new(pos, h.start - pos));
        }
        pos = pos.max(h.end());
    }
    if pos < range.end() {
        out.push(ByteRange::new(pos, range.end() - pos));
    }
    out
}

/// Computes the must-write regions of an image of `image_len` bytes for `layout`.
///
/// `gpt` is the image's table (`None` or a table without the layout's partitions still
/// yields the prefix and layout ranges). `storage_len` is the target's size, used for the
/// trailing wipe: its last [`OLD_BACKUP_GPT_WIPE_LEN`] bytes, clipped to the storage and
/// starting no earlier than the image's end (rounded up to a sector) so the wipe never
/// touches the image's own data or its backup GPT.
pub fn must_write(
    layout: &BoardLayout,
    gpt: Option<&GptReport>,
    image_len: u64,
    storage_len: Option<u64>,
) -> MustWrite {
    let mut out = MustWrite::default();
    let mut add = |range: ByteRange, reason: MustWriteReason| {
        if let Some(range) = range.clip_to(image_len) {
            out.regions.push(MustWriteRegion { range, reason });
        }
    };
    add(
        ByteRange::new(0, layout.must_write_prefix),
        MustWriteReason::Prefix,
    );
    for &range in layout.must_write_ranges {
        add(range, MustWriteReason::Layout);
    }
    let sector_size = gpt.map_or(SECTOR_SIZE, |g| g.sector_size);
    for &name in layout.must_write_partitions {
        let found = gpt
            .map(|g| g.partitions())
            .unwrap_or_default()
            .iter()
            .filter(|p| p.name == name)
            .filter_map(|p| p.byte_range(sector_size))
            .collect::<Vec<_>>();
        if found.is_empty() {
            out.missing_partitions.push(name.to_string());
        }
        for range in found {
            add(range, MustWriteReason::Partition(name.to_string()));
        }
    }
    out.wipe_after_image = storage_len.and_then(|storage| {
        let image_end = image_len.div_ceil(SECTOR_SIZE).saturating_mul(SECTOR_SIZE);
        let start = storage
            .saturating_sub(OLD_BACKUP_GPT_WIPE_LEN)
            .max(image_end);
        ByteRange::from_bounds(start, storage).filter(|r| !r.is_empty())
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NANOPI_M6;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn without_a_gpt_only_the_prefix_is_forced_and_meta_is_reported_missing() {
        let mw = must_write(&NANOPI_M6, None, 64 * MIB, Some(1024 * MIB));
        assert_eq!(mw.merged(), vec![ByteRange::new(0, 11 * MIB)]);
        assert_eq!(mw.missing_partitions, vec!["META".to_string()]);
        assert_eq!(mw.wipe_after_image, Some(ByteRange::new(1023 * MIB, MIB)));
    }

    #[test]
    fn prefix_is_clipped_to_a_small_image_and_the_wipe_never_overlaps_it() {
        // A 821,752-byte image on a 1.5 MiB storage: the wipe starts after the image's
        // last (partial) sector, not 1 MiB before the end.
        let mw = must_write(&NANOPI_M6, None, 821_752, Some(3 * 512 * 1024));
        assert_eq!(mw.merged(), vec![ByteRange::new(0, 821_752)]);
        assert_eq!(
            mw.wipe_after_image,
            ByteRange::from_bounds(821_760, 3 * 512 * 1024)
        );
        // An image filling the storage leaves nothing to wipe.
        let full = must_write(&NANOPI_M6, None, 8 * MIB, Some(8 * MIB));
        assert_eq!(full.wipe_after_image, None);
        assert_eq!(
            must_write(&NANOPI_M6, None, 8 * MIB, None).wipe_after_image,
            None
        );
    }

    #[test]
    fn subtracting_holes_leaves_the_used_parts() {
        let r = ByteRange::new(100, 100);
        let holes = [
            ByteRange::new(50, 60),
            ByteRange::new(120, 10),
            ByteRange::new(190, 50),
        ];
        assert_eq!(
            subtract(r, &holes),
            vec![ByteRange::new(110, 10), ByteRange::new(130, 60)]
        );
        assert_eq!(subtract(r, &[]), vec![r]);
    }

    #[test]
    fn merging_joins_touching_and_overlapping_ranges() {
        let merged = merge_ranges([
            ByteRange::new(100, 10),
            ByteRange::new(0, 50),
            ByteRange::new(50, 10),
            ByteRange::new(105, 20),
            ByteRange::new(500, 0),
        ]);
        assert_eq!(merged, vec![ByteRange::new(0, 60), ByteRange::new(100, 25)]);
    }
}
