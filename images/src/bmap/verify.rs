//! Streaming check of a bmap's per-range checksums.
//!
//! The flasher feeds image data in increasing offsets (all of it, or only the extents
//! it writes, which include every mapped range). Each range is hashed as its bytes go
//! by; the moment its last byte arrives the result is known, so a wrong range is
//! reported at that range rather than after the whole image.

use super::checksum::{ChecksumType, Hasher};
use super::{Bmap, hex};
use crate::layout::ByteRange;

/// The state of one mapped range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeStatus {
    /// Not all of its bytes have been fed yet.
    Pending,
    Matched,
    /// The bmap gives no checksum for it (formats before 1.3).
    NoChecksum,
    Mismatch {
        expected: String,
        computed: String,
    },
    /// Some of its bytes were never fed, so it could not be checked.
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BmapVerifyError {
    #[error(
        "bmap range {index} (blocks {first_block}-{last_block}, {range}) does not match: the bmap says {kind} {expected}, the image gives {computed}; this image is not the one the bmap describes (or it is corrupt)"
    )]
    Mismatch {
        index: usize,
        first_block: u64,
        last_block: u64,
        range: ByteRange,
        kind: ChecksumType,
        expected: String,
        computed: String,
    },
    #[error(
        "bmap range {index} ({range}) was not fed completely: bytes {missing_from}..{missing_to} never arrived"
    )]
    Incomplete {
        index: usize,
        range: ByteRange,
        missing_from: u64,
        missing_to: u64,
    },
    #[error(
        "data at offset {offset} arrived after data up to offset {hashed_to}; feed the image in increasing order"
    )]
    OutOfOrder { offset: u64, hashed_to: u64 },
}

struct Tracked {
    range: ByteRange,
    first_block: u64,
    last_block: u64,
    expected: Option<Vec<u8>>,
}

/// Hashes mapped ranges as image data streams past.
pub struct RangeVerifier {
    kind: Option<ChecksumType>,
    ranges: Vec<Tracked>,
    status: Vec<RangeStatus>,
    /// The range being hashed.
    next: usize,
    hasher: Option<Hasher>,
    /// Absolute offset up to which range `next` has been hashed.
    hashed_to: u64,
    /// Highest offset fed so far, to detect data fed twice.
    fed_to: u64,
}

impl RangeVerifier {
    pub fn new(bmap: &Bmap) -> Self {
        let ranges: Vec<Tracked> = bmap
            .ranges
            .iter()
            .map(|r| Tracked {
                range: bmap.byte_range(r),
                first_block: r.first_block,
                last_block: r.last_block,
                expected: r.checksum.clone(),
            })
            .collect();
        let hashed_to = ranges.first().map_or(0, |r| r.range.start);
        RangeVerifier {
            kind: bmap.checksum_type,
            status: vec![RangeStatus::Pending; ranges.len()],
            ranges,
            next: 0,
            hasher: None,
            hashed_to,
            fed_to: 0,
        }
    }

    pub fn status(&self, index: usize) -> Option<&RangeStatus> {
        self.status.get(index)
    }

    /// Number of ranges whose checksum matched.
    pub fn matched(&self) -> usize {
        self.status
            .iter()
            .filter(|s| **s == RangeStatus::Matched)
            .count()
    }

    /// True once every range has been fed completely.
    pub fn is_done(&self) -> bool {
        self.next >= self.ranges.len()
    }

    /// Feeds the image bytes at `offset`. Returns an error as soon as a range is complete
    /// and wrong, or when bytes of a range were skipped.
    pub fn feed(&mut self, offset: u64, data: &[u8]) -> Result<(), BmapVerifyError> {
        if data.is_empty() {
            return Ok(());
        }
        if offset < self.fed_to {
            return Err(BmapVerifyError::OutOfOrder {
                offset,
                hashed_to: self.fed_to,
            });
        }
        let end = offset.saturating_add(data.len() as u64);
        self.fed_to = end;
        while let Some(t) = self.ranges.get(self.next) {
            let range = t.range;
            if range.start >= end {
                break;
            }
            let from = range.start.max(offset);
            if from > self.hashed_to {
                let index = self.next;
                let missing_from = self.hashed_to;
                self.skip_current();
                return Err(BmapVerifyError::Incomplete {
                    index,
                    range,
                    missing_from,
                    missing_to: from.min(range.end()),
                });
            }
            let to = range.end().min(end);
            if to > from {
                // Ranges without a checksum are only tracked for completeness, not hashed.
                if let (Some(kind), Some(_)) = (self.kind, &t.expected) {
                    let lo = usize::try_from(from - offset).unwrap_or(usize::MAX);
                    let hi = usize::try_from(to - offset).unwrap_or(usize::MAX);
                    let hasher = self.hasher.get_or_insert_with(|| kind.hasher());
                    hasher.update(data.get(lo..hi).unwrap_or_default());
                }
                self.hashed_to = to;
            }
            if self.hashed_to < range.end() {
                break;
            }
            self.finish_current()?;
        }
        Ok(())
    }

    /// Call after the last byte: fails if any range never got all of its bytes.
    pub fn finish(&mut self) -> Result<(), BmapVerifyError> {
        if let Some(t) = self.ranges.get(self.next) {
            let (index, range) = (self.next, t.range);
            let missing_from = self.hashed_to.max(range.start);
            self.skip_current();
            return Err(BmapVerifyError::Incomplete {
                index,
                range,
                missing_from,
                missing_to: range.end(),
            });
        }
        Ok(())
    }

    fn skip_current(&mut self) {
        if let Some(s) = self.status.get_mut(self.next) {
            *s = RangeStatus::Incomplete;
        }
        self.hasher = None;
        self.next += 1;
        self.hashed_to = self.ranges.get(self.next).map_or(0, |r| r.range.start);
    }

    fn finish_current(&mut self) -> Result<(), BmapVerifyError> {
        let index = self.next;
        let computed = self.hasher.take().map(Hasher::finish);
        let t = &self.ranges[index];
        let (range, first_block, last_block) = (t.range, t.first_block, t.last_block);
        let outcome = match (&t.expected, computed, self.kind) {
            (Some(expected), Some(computed), Some(kind)) if *expected != computed => {
                Err(BmapVerifyError::Mismatch {
                    index,
                    first_block,
                    last_block,
                    range,
                    kind,
                    expected: hex::encode(expected),
                    computed: hex::encode(&computed),
                })
            }
            (Some(_), _, Some(_)) => Ok(RangeStatus::Matched),
            _ => Ok(RangeStatus::NoChecksum),
        };
        self.status[index] = match &outcome {
            Ok(s) => s.clone(),
            Err(BmapVerifyError::Mismatch {
                expected, computed, ..
            }) => RangeStatus::Mismatch {
                expected: expected.clone(),
                computed: computed.clone(),
            },
            Err(_) => RangeStatus::Pending,
        };
        self.next += 1;
        self.hashed_to = self.ranges.get(self.next).map_or(0, |r| r.range.start);
        outcome.map(|_| ())
    }
}
