//! Which all-zero runs of an image a sparse flash may leave out, and which it must write.
//!
//! Skipping a zero run leaves whatever the board held there before. That is harmless only
//! where nothing will ever read those bytes as they are:
//! - **free space by the file system's own accounting** ([`crate::fs`]): XFS, FAT and
//!   ext2/3/4 never read a block they call free. Zeros anywhere else in a file system are
//!   meaningful (a fresh XFS log, an ext4 inode table, a FAT's free entries, a file's
//!   allocated zero blocks), and old bytes there corrupt it;
//! - **space between and after partitions**: no file system spans it, and Talos wipes the
//!   signatures of every partition it creates there later.
//!
//! Everything else is written in full, zeros included: the space before the first
//! partition (bootloaders live there), both GPT copies, a partition whose file system is
//! unknown or does not parse cleanly, an extended MBR partition, and every partition of
//! an image that can only be read in order (a pipe, gzip, zstd): the free-space records
//! of a file system may lie after the data they describe, so they cannot be known in
//! time. A partition table-less image is treated as one file system at byte 0.

use crate::fs::{self, FsKind};
use crate::gpt::GptReport;
use crate::gpt::mbr::mbr_partitions;
use crate::layout::ByteRange;
use crate::read_at::ReadAt;
use crate::regions::{merge_ranges, subtract};
use std::fmt;

/// How the image's partitions were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Gpt,
    Mbr,
    /// No partition table: the image is one file system (or unknown bytes).
    None,
}

/// What decides the writes inside one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accounting {
    /// The file system's free-space records: zero runs in its free space are skipped.
    FreeSpace { kind: FsKind, free_bytes: u64 },
    /// Every byte is written; why.
    Full {
        kind: Option<FsKind>,
        reason: String,
    },
}

impl Accounting {
    pub fn kind(&self) -> Option<FsKind> {
        match self {
            Accounting::FreeSpace { kind, .. } => Some(*kind),
            Accounting::Full { kind, .. } => *kind,
        }
    }
}

/// One partition's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPlan {
    /// 1-based table slot; 0 for a table-less image.
    pub number: u32,
    pub name: String,
    /// Inside the image (clipped to its end when known).
    pub range: ByteRange,
    pub accounting: Accounting,
}

impl fmt::Display for PartitionPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = if self.name.is_empty() {
            format!("partition {}", self.number)
        } else {
            format!("partition {} ({})", self.number, self.name)
        };
        match &self.accounting {
            Accounting::FreeSpace { kind, free_bytes } => write!(
                f,
                "{label}: {kind}, {} free by its own accounting may be skipped",
                crate::units::human_bytes(*free_bytes)
            ),
            Accounting::Full { kind, reason } => {
                let what = kind.map_or("written in full".to_string(), |k| {
                    format!("{k}, written in full")
                });
                write!(f, "{label}: {what}: {reason}")
            }
        }
    }
}

/// How the file systems' structures can be read before the data streams past.
pub enum Access<'a> {
    /// Any byte of the decoded image, at any time (a raw file, an indexed .xz).
    Random(&'a mut dyn ReadAt),
    /// Only in order; the reason, for the report (e.g. "the image comes from standard
    /// input").
    Sequential(String),
}

/// The result: per-partition decisions and the ranges written whatever they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipMap {
    pub table: TableKind,
    pub partitions: Vec<PartitionPlan>,
    /// Sorted, merged: written in full even where the image holds zeros. Zero runs
    /// outside these ranges may be skipped.
    pub forced: Vec<ByteRange>,
}

impl SkipMap {
    /// Bytes that may be skipped if zero: the complement of [`Self::forced`] within
    /// `[0, image_len)`.
    pub fn skippable_len(&self, image_len: u64) -> u64 {
        let forced: u64 = self
            .forced
            .iter()
            .filter_map(|r| r.clip_to(image_len))
            .map(|r| r.len)
            .sum();
        image_len.saturating_sub(forced)
    }
}

/// Decides, for an image whose table is `gpt` (and whose LBA 0 is `sector0`, for a
/// classic MBR), which ranges must be written whatever they hold.
pub fn skip_map(
    gpt: &GptReport,
    sector0: Option<&[u8; 512]>,
    image_len: Option<u64>,
    mut access: Access<'_>,
) -> SkipMap {
    let limit = image_len.unwrap_or(u64::MAX);
    let (table, found) = find_partitions(gpt, sector0, limit);
    let mut forced = gpt_areas(gpt);
    // A table-less image is probed as one file system; its length must be known.
    let candidates = match (table, image_len) {
        (TableKind::None, Some(len)) if len > 0 => vec![Found {
            number: 0,
            name: "whole image".into(),
            range: ByteRange::new(0, len),
            extended: false,
        }],
        (TableKind::None, _) => Vec::new(),
        _ => found,
    };
    // Before the first partition (MBR, GPT, bootloaders), or everything when nothing
    // was found to account for.
    let first = candidates.iter().map(|p| p.range.start).min();
    forced.push(ByteRange::new(0, first.unwrap_or(limit)));
    let mut partitions = Vec::with_capacity(candidates.len());
    for p in candidates {
        let (accounting, free) = account(&p, &mut access);
        forced.extend(subtract(p.range, &free));
        partitions.push(PartitionPlan {
            number: p.number,
            name: p.name,
            range: p.range,
            accounting,
        });
    }
    SkipMap {
        table,
        partitions,
        forced: merge_ranges(forced),
    }
}

struct Found {
    number: u32,
    name: String,
    range: ByteRange,
    extended: bool,
}

fn find_partitions(
    gpt: &GptReport,
    sector0: Option<&[u8; 512]>,
    limit: u64,
) -> (TableKind, Vec<Found>) {
    if gpt.table().is_some() {
        let parts = gpt
            .partitions()
            .iter()
            .filter_map(|p| {
                let range = p.byte_range(gpt.sector_size)?.clip_to(limit)?;
                Some(Found {
                    number: p.number,
                    name: p.name.clone(),
                    range,
                    extended: false,
                })
            })
            .collect();
        return (TableKind::Gpt, parts);
    }
    let mbr: Vec<_> = sector0
        .map(mbr_partitions)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.type_byte != 0xEE)
        .collect();
    if mbr.is_empty() {
        return (TableKind::None, Vec::new());
    }
    let parts = mbr
        .iter()
        .filter_map(|p| {
            let range =
                ByteRange::new(p.first_lba as u64 * 512, p.sectors as u64 * 512).clip_to(limit)?;
            Some(Found {
                number: p.number,
                name: String::new(),
                range,
                extended: p.is_extended(),
            })
        })
        .collect();
    (TableKind::Mbr, parts)
}

/// Both GPT copies (headers and entry arrays): the image's own backup table sits after
/// the last partition, and its zero entries must replace whatever table was there.
fn gpt_areas(gpt: &GptReport) -> Vec<ByteRange> {
    let ss = gpt.sector_size;
    let mut out = Vec::new();
    for copy in [&gpt.primary, &gpt.backup].into_iter().flatten() {
        let h = &copy.header;
        out.push(ByteRange::new(h.my_lba.saturating_mul(ss), ss));
        let entries_len = (h.entry_count as u64).saturating_mul(h.entry_size as u64);
        out.push(ByteRange::new(
            h.entries_lba.saturating_mul(ss),
            entries_len,
        ));
    }
    if let (Some(p), None) = (&gpt.primary, &gpt.backup) {
        // The backup has not been read (a streamed image): it sits at the alternate LBA
        // with its entries just before it, as every tool writes it.
        let h = &p.header;
        let entries_len = (h.entry_count as u64).saturating_mul(h.entry_size as u64);
        let entry_sectors = entries_len.div_ceil(ss);
        let start = h
            .alternate_lba
            .saturating_sub(entry_sectors)
            .saturating_mul(ss);
        let end = h.alternate_lba.saturating_add(1).saturating_mul(ss);
        out.extend(ByteRange::from_bounds(start, end));
    }
    out
}

/// The partition's accounting, and its free extents in absolute image offsets.
fn account(p: &Found, access: &mut Access<'_>) -> (Accounting, Vec<ByteRange>) {
    let full = |kind, reason: String| (Accounting::Full { kind, reason }, Vec::new());
    if p.extended {
        return full(
            None,
            "an extended partition: the logical partitions inside it are not read".into(),
        );
    }
    let reader = match access {
        Access::Random(reader) => &mut **reader,
        Access::Sequential(why) => {
            return full(
                None,
                format!(
                    "{why}, so the file system's free-space records, which may lie after the data they describe, cannot be read ahead"
                ),
            );
        }
    };
    match fs::free_space(reader, p.range) {
        Ok(Some(space)) => {
            let free = space
                .free
                .iter()
                .map(|r| ByteRange::new(p.range.start + r.start, r.len))
                .collect();
            (
                Accounting::FreeSpace {
                    kind: space.kind,
                    free_bytes: space.free_bytes(),
                },
                free,
            )
        }
        Ok(None) => full(
            None,
            "no file system this tool reads (XFS, FAT, ext2/3/4)".into(),
        ),
        Err(e) => {
            let kind = match &e {
                fs::FsError::Damaged { kind, .. }
                | fs::FsError::Truncated { kind, .. }
                | fs::FsError::Io { kind, .. } => Some(*kind),
                fs::FsError::Head(_) => None,
            };
            full(kind, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpt::GptReadOptions;

    /// A signed MBR with one partition of `type_byte` at LBA 2048, 4096 sectors.
    fn mbr_image(type_byte: u8, fill: u8) -> Vec<u8> {
        let mut img = vec![0u8; 8 << 20];
        img[510] = 0x55;
        img[511] = 0xAA;
        let e = &mut img[446..462];
        e[4] = type_byte;
        e[8..12].copy_from_slice(&2048u32.to_le_bytes());
        e[12..16].copy_from_slice(&4096u32.to_le_bytes());
        img[2048 * 512..6144 * 512].fill(fill);
        img
    }

    fn map_of(img: &[u8], access_random: bool) -> SkipMap {
        let gpt = GptReport::read(img, GptReadOptions::default()).unwrap();
        let sector0: &[u8; 512] = img[..512].try_into().unwrap();
        let mut src: &[u8] = img;
        let access = if access_random {
            Access::Random(&mut src)
        } else {
            Access::Sequential("the image comes from standard input".into())
        };
        skip_map(&gpt, Some(sector0), Some(img.len() as u64), access)
    }

    #[test]
    fn an_unknown_mbr_partition_is_forced_whole_and_only_space_after_it_may_be_skipped() {
        let img = mbr_image(0x83, 0);
        let map = map_of(&img, true);
        assert_eq!(map.table, TableKind::Mbr);
        assert_eq!(map.partitions.len(), 1);
        assert!(matches!(
            map.partitions[0].accounting,
            Accounting::Full { kind: None, .. }
        ));
        assert_eq!(map.forced, vec![ByteRange::new(0, 6144 * 512)]);
        assert_eq!(map.skippable_len(img.len() as u64), (8 << 20) - 6144 * 512);
    }

    #[test]
    fn an_extended_partition_is_written_in_full_with_its_reason() {
        let map = map_of(&mbr_image(0x0F, 0), true);
        let Accounting::Full { reason, .. } = &map.partitions[0].accounting else {
            panic!("not full: {:?}", map.partitions[0]);
        };
        assert!(reason.contains("extended"), "{reason}");
    }

    #[test]
    fn a_sequential_image_writes_every_partition_in_full_and_says_why() {
        let map = map_of(&mbr_image(0x0C, 0), false);
        let text = map.partitions[0].to_string();
        assert!(text.contains("standard input"), "{text}");
        assert!(text.contains("cannot be read ahead"), "{text}");
        assert_eq!(map.forced, vec![ByteRange::new(0, 6144 * 512)]);
    }

    #[test]
    fn a_table_less_image_of_unknown_bytes_is_forced_entirely() {
        let img = vec![7u8; 1 << 20];
        let map = map_of(&img, true);
        assert_eq!(map.table, TableKind::None);
        assert_eq!(map.partitions[0].name, "whole image");
        assert_eq!(map.forced, vec![ByteRange::new(0, 1 << 20)]);
    }
}
