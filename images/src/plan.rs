//! The write planner: which bytes of a streamed image to send to the storage.
//!
//! The image arrives as consecutive chunks (the decoder's MiB-sized buffers). For each
//! chunk the planner returns write extents in absolute image offsets; the writer sends
//! `chunk[extent.start - chunk_offset ..][..extent.len]` and never copies anything, and
//! the planner itself only reads the chunk.
//!
//! Modes:
//! - [`PlanMode::Sparse`] writes every block with a non-zero byte, plus all of the must-write
//!   regions (see [`crate::regions`]).
//! - [`PlanMode::Full`] writes everything.
//! - [`PlanMode::Mapped`] writes exactly the given ranges (a bmap's mapped blocks) plus the
//!   must-write regions, without looking at the data.
//!
//! The block size is 4 KiB by default: it is the allocation unit of the file systems in a
//! Talos image (vfat, XFS) and of bmaptool, so a zero run in free space lines up with
//! whole blocks; smaller blocks find almost no extra zeros but cost more bookkeeping and
//! more, smaller write commands, while larger ones write zeros around every small file.
//! It must be a multiple of the 512-byte sector so every extent is sector-aligned.

use crate::layout::{ByteRange, SECTOR_SIZE};
use crate::regions::merge_ranges;
use crate::zero::is_zero;

pub const DEFAULT_BLOCK_SIZE: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanMode {
    Sparse,
    Full,
    Mapped(Vec<ByteRange>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanConfig {
    pub mode: PlanMode,
    /// Ranges written in full whatever they hold (from [`crate::regions::must_write`]).
    pub must_write: Vec<ByteRange>,
    /// Zero-scan granularity; a multiple of 512.
    pub block_size: u64,
    /// Zero gaps shorter than this between two extents of the same chunk are written
    /// too, trading a few bytes for one write command fewer. 0 skips every zero block.
    pub min_gap: u64,
}

impl PlanConfig {
    pub fn sparse(must_write: Vec<ByteRange>) -> Self {
        Self {
            mode: PlanMode::Sparse,
            must_write,
            block_size: DEFAULT_BLOCK_SIZE,
            min_gap: 0,
        }
    }

    pub fn full() -> Self {
        Self {
            mode: PlanMode::Full,
            ..Self::sparse(Vec::new())
        }
    }

    pub fn mapped(ranges: Vec<ByteRange>, must_write: Vec<ByteRange>) -> Self {
        Self {
            mode: PlanMode::Mapped(ranges),
            ..Self::sparse(must_write)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("block size {0} is not a non-zero multiple of 512 bytes")]
    BadBlockSize(u64),
    #[error(
        "chunk at offset {got} does not follow the previous chunk, which ended at {expected}; feed the image in order without gaps"
    )]
    NotContiguous { expected: u64, got: u64 },
    #[error(
        "a chunk of {len} bytes at offset {offset} is not a whole number of {block_size}-byte blocks, but more data followed it; only the last chunk may be shorter"
    )]
    UnalignedChunk {
        offset: u64,
        len: u64,
        block_size: u64,
    },
    #[error("the image would extend beyond 2^64 bytes")]
    Overflow,
}

/// Totals so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanStats {
    /// Image bytes planned so far.
    pub bytes_seen: u64,
    /// Bytes the extents cover.
    pub bytes_to_write: u64,
    /// `bytes_seen - bytes_to_write`.
    pub bytes_skipped: u64,
    /// Extents returned (after coalescing inside each chunk).
    pub extents: u64,
}

/// What one call to [`Planner::plan_chunk`] produced besides the extents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkOutcome {
    /// The first extent starts at the chunk's start and the previous chunk's last extent
    /// ended at that chunk's end: a writer holding both buffers may send them as one.
    pub continues_previous: bool,
}

/// Plans one image, chunk by chunk.
#[derive(Debug, Clone)]
pub struct Planner {
    /// Merged, sorted ranges written regardless of content.
    forced: Vec<ByteRange>,
    /// Index of the first forced range that may still matter (chunks come in order).
    cursor: usize,
    scan: bool,
    write_all: bool,
    block_size: u64,
    min_gap: u64,
    next_offset: u64,
    /// A chunk that ended mid-block (offset, length): only the last one may.
    short_chunk: Option<(u64, u64)>,
    previous_ended_with_write: bool,
    stats: PlanStats,
}

impl Planner {
    pub fn new(config: PlanConfig) -> Result<Planner, PlanError> {
        let bs = config.block_size;
        if bs == 0 || bs % SECTOR_SIZE != 0 {
            return Err(PlanError::BadBlockSize(bs));
        }
        let (scan, write_all, mut ranges) = match config.mode {
            PlanMode::Sparse => (true, false, Vec::new()),
            PlanMode::Full => (false, true, Vec::new()),
            PlanMode::Mapped(r) => (false, false, r),
        };
        let must_write = config.must_write.iter().map(|r| {
            // Whole blocks, so the zero scan between forced ranges stays block-aligned.
            let start = r.start / bs * bs;
            let end = r.end().div_ceil(bs).saturating_mul(bs);
            ByteRange::new(start, end - start)
        });
        ranges.extend(must_write);
        Ok(Planner {
            forced: merge_ranges(ranges),
            cursor: 0,
            scan,
            write_all,
            block_size: bs,
            min_gap: config.min_gap,
            next_offset: 0,
            short_chunk: None,
            previous_ended_with_write: false,
            stats: PlanStats::default(),
        })
    }

    pub fn stats(&self) -> PlanStats {
        self.stats
    }

    /// Replaces `out` with the extents to write from `data`, the image bytes at `offset`.
    ///
    /// Chunks must come in order without gaps, starting at 0. In sparse mode every chunk
    /// but the last must be a whole number of blocks (MiB-sized buffers are).
    pub fn plan_chunk(
        &mut self,
        offset: u64,
        data: &[u8],
        out: &mut Vec<ByteRange>,
    ) -> Result<ChunkOutcome, PlanError> {
        out.clear();
        if offset != self.next_offset {
            return Err(PlanError::NotContiguous {
                expected: self.next_offset,
                got: offset,
            });
        }
        let len = data.len() as u64;
        if let Some((short_offset, short_len)) = self.short_chunk.filter(|_| self.scan && len > 0) {
            return Err(PlanError::UnalignedChunk {
                offset: short_offset,
                len: short_len,
                block_size: self.block_size,
            });
        }
        let end = offset.checked_add(len).ok_or(PlanError::Overflow)?;
        if len % self.block_size != 0 {
            self.short_chunk = Some((offset, len));
        }

        if self.write_all {
            self.push(out, ByteRange::new(offset, len));
        } else {
            self.plan_selected(offset, data, end, out);
        }

        let written: u64 = out.iter().map(|r| r.len).sum();
        self.stats.bytes_seen += len;
        self.stats.bytes_to_write += written;
        self.stats.bytes_skipped += len - written;
        self.stats.extents += out.len() as u64;
        self.next_offset = end;
        let outcome = ChunkOutcome {
            continues_previous: self.previous_ended_with_write
                && out.first().is_some_and(|r| r.start == offset),
        };
        if len > 0 {
            self.previous_ended_with_write = out.last().is_some_and(|r| r.end() == end);
        }
        Ok(outcome)
    }

    fn plan_selected(&mut self, offset: u64, data: &[u8], end: u64, out: &mut Vec<ByteRange>) {
        while self
            .forced
            .get(self.cursor)
            .is_some_and(|r| r.end() <= offset)
        {
            self.cursor += 1;
        }
        let mut pos = offset;
        let mut i = self.cursor;
        while pos < end {
            match self.forced.get(i) {
                Some(r) if r.end() <= pos => i += 1,
                Some(r) if r.start <= pos => {
                    let stop = r.end().min(end);
                    self.push(out, ByteRange::new(pos, stop - pos));
                    pos = stop;
                    i += 1;
                }
                next => {
                    let stop = next.map_or(end, |r| r.start.min(end));
                    if self.scan {
                        self.scan_zero_blocks(offset, data, pos, stop, out);
                    }
                    pos = stop;
                }
            }
        }
    }

    /// Emits the non-zero blocks of `[from, to)` (absolute offsets within this chunk).
    fn scan_zero_blocks(
        &self,
        chunk_offset: u64,
        data: &[u8],
        from: u64,
        to: u64,
        out: &mut Vec<ByteRange>,
    ) {
        let bs = self.block_size;
        let mut run_start: Option<u64> = None;
        let mut block = from;
        while block < to {
            let block_end = ((block / bs + 1) * bs).min(to);
            let lo = (block - chunk_offset) as usize;
            let hi = (block_end - chunk_offset) as usize;
            let zero = data.get(lo..hi).is_none_or(is_zero);
            match (zero, run_start) {
                (false, None) => run_start = Some(block),
                (true, Some(start)) => {
                    self.push(out, ByteRange::new(start, block - start));
                    run_start = None;
                }
                _ => {}
            }
            block = block_end;
        }
        if let Some(start) = run_start {
            self.push(out, ByteRange::new(start, to - start));
        }
    }

    /// Appends an extent, joining it to the previous one when they touch or the zero gap
    /// between them is shorter than `min_gap`.
    fn push(&self, out: &mut Vec<ByteRange>, r: ByteRange) {
        if r.is_empty() {
            return;
        }
        if let Some(last) = out.last_mut() {
            let gap = r.start.saturating_sub(last.end());
            if gap == 0 || gap < self.min_gap {
                last.len = r.end() - last.start;
                return;
            }
        }
        out.push(r);
    }
}

/// Plans a whole in-memory image in `chunk_len`-byte chunks; returns every extent (not
/// joined across chunks) and the totals. Convenient for tests and small images.
pub fn plan_bytes(
    config: PlanConfig,
    image: &[u8],
    chunk_len: usize,
) -> Result<(Vec<ByteRange>, PlanStats), PlanError> {
    let mut planner = Planner::new(config)?;
    let mut all = Vec::new();
    let mut out = Vec::new();
    let mut offset = 0u64;
    for chunk in image.chunks(chunk_len.max(1)) {
        planner.plan_chunk(offset, chunk, &mut out)?;
        all.extend_from_slice(&out);
        offset += chunk.len() as u64;
    }
    Ok((all, planner.stats()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;

    fn image_with(len: usize, non_zero_at: &[usize]) -> Vec<u8> {
        let mut v = vec![0u8; len];
        for &i in non_zero_at {
            v[i] = 0xA5;
        }
        v
    }

    /// Byte ranges from (offset, length) pairs in KiB.
    fn kib_ranges(pairs: &[(u64, u64)]) -> Vec<ByteRange> {
        pairs
            .iter()
            .map(|&(offset, len)| ByteRange::new(offset * KIB, len * KIB))
            .collect()
    }

    #[test]
    fn sparse_writes_non_zero_blocks_and_coalesces_neighbours() {
        // Non-zero bytes in blocks 1, 2 (adjacent) and 7 of a 10-block image.
        let img = image_with(40 * 1024, &[4096 + 5, 2 * 4096 + 4095, 7 * 4096]);
        let (extents, stats) = plan_bytes(PlanConfig::sparse(vec![]), &img, 64 * 1024).unwrap();
        assert_eq!(extents, kib_ranges(&[(4, 8), (28, 4)]));
        assert_eq!(stats.bytes_to_write, 12 * KIB);
        assert_eq!(stats.bytes_skipped, 28 * KIB);
        assert_eq!(stats.extents, 2);
    }

    #[test]
    fn must_write_regions_are_written_even_when_zero_and_rounded_to_blocks() {
        let img = image_with(64 * 1024, &[40 * 1024]);
        // A forced range 1000..1100 becomes the whole first block.
        let forced = vec![ByteRange::new(1000, 100), ByteRange::new(16 * KIB, 8 * KIB)];
        let (extents, stats) = plan_bytes(PlanConfig::sparse(forced), &img, 16 * 1024).unwrap();
        assert_eq!(extents, kib_ranges(&[(0, 4), (16, 8), (40, 4)]));
        assert_eq!(stats.bytes_to_write, 16 * KIB);
    }

    #[test]
    fn extents_never_cross_chunks_and_continuation_is_flagged() {
        let img = vec![1u8; 32 * 1024];
        let mut planner = Planner::new(PlanConfig::sparse(vec![])).unwrap();
        let mut out = Vec::new();
        let first = planner.plan_chunk(0, &img[..16384], &mut out).unwrap();
        assert_eq!(out, vec![ByteRange::new(0, 16 * KIB)]);
        assert!(!first.continues_previous);
        let second = planner.plan_chunk(16384, &img[16384..], &mut out).unwrap();
        assert_eq!(out, vec![ByteRange::new(16 * KIB, 16 * KIB)]);
        assert!(second.continues_previous);
    }

    #[test]
    fn full_mode_writes_everything_and_mapped_mode_writes_only_the_ranges() {
        let img = image_with(20 * 1024, &[100]);
        let (full, stats) = plan_bytes(PlanConfig::full(), &img, 8192).unwrap();
        assert_eq!(full.iter().map(|r| r.len).sum::<u64>(), 20 * KIB);
        assert_eq!(stats.bytes_skipped, 0);

        // Block 0 holds data but is not mapped: a bmap plan does not look at data.
        let mapped = PlanConfig::mapped(vec![ByteRange::new(8 * KIB, 6 * KIB)], vec![]);
        let (extents, stats) = plan_bytes(mapped, &img, 4096).unwrap();
        assert_eq!(extents, kib_ranges(&[(8, 4), (12, 2)]));
        assert_eq!(stats.bytes_to_write, 6 * KIB);
    }

    #[test]
    fn small_gaps_are_filled_when_asked() {
        let img = image_with(32 * 1024, &[0, 3 * 4096, 7 * 4096]);
        let config = PlanConfig {
            min_gap: 12 * KIB,
            ..PlanConfig::sparse(vec![])
        };
        let (extents, _) = plan_bytes(config, &img, 32 * 1024).unwrap();
        // Gap of 8 KiB (blocks 1-2) filled; gap of 12 KiB (blocks 4-6) kept.
        assert_eq!(extents, kib_ranges(&[(0, 16), (28, 4)]));
    }

    #[test]
    fn the_last_chunk_may_end_mid_block_but_nothing_may_follow_it() {
        let img = image_with(10_000, &[9_999]);
        let (extents, stats) = plan_bytes(PlanConfig::sparse(vec![]), &img, 8192).unwrap();
        assert_eq!(extents, vec![ByteRange::new(8192, 10_000 - 8192)]);
        assert_eq!(stats.bytes_seen, 10_000);

        let mut planner = Planner::new(PlanConfig::sparse(vec![])).unwrap();
        let mut out = Vec::new();
        planner.plan_chunk(0, &img[..5000], &mut out).unwrap();
        assert!(matches!(
            planner.plan_chunk(5000, &img[5000..], &mut out),
            Err(PlanError::UnalignedChunk { .. })
        ));
    }

    #[test]
    fn rejects_gaps_between_chunks_and_odd_block_sizes() {
        let mut planner = Planner::new(PlanConfig::sparse(vec![])).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            planner.plan_chunk(4096, &[0; 4096], &mut out),
            Err(PlanError::NotContiguous {
                expected: 0,
                got: 4096
            })
        );
        let config = PlanConfig {
            block_size: 1000,
            ..PlanConfig::full()
        };
        assert_eq!(
            Planner::new(config).unwrap_err(),
            PlanError::BadBlockSize(1000)
        );
    }
}
