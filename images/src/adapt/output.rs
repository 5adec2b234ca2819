//! The adapted image as a description: what goes at every output byte.
//!
//! The output is never built in memory: it is an ordered list of [`Segment`]s covering
//! `0..len` without gaps (literal bytes, zeros, or a range copied from the source) and a
//! few [`Patch`]es that override copied bytes (the FAT sectors the DTB changed). A file
//! writer streams it with [`OutputPlan::write_to`]; a flasher asks for any output range
//! with [`OutputPlan::read_output`] or reads it through [`AdaptedImage`] like an image.

use crate::layout::ByteRange;
use crate::read_at::ReadAt;
use std::io::{self, Write};
use std::sync::Arc;

/// What fills one run of output bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentData {
    /// Bytes held by the plan (MBR, GPT headers and entry arrays, U-Boot).
    Bytes(Arc<[u8]>),
    /// All zeros: space between the bootloader, the table and the partitions.
    Zeros,
    /// The source's bytes starting at this source offset (a partition, verbatim).
    Copy { source_offset: u64 },
}

/// One run of output bytes; segments are in output order, back to back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Where the run lies in the output.
    pub output: ByteRange,
    pub data: SegmentData,
    /// What it is, for reports ("U-Boot", "primary GPT entries", "partition 1 (EFI)").
    pub what: String,
}

impl Segment {
    /// The source bytes a copy segment reads.
    pub fn source_range(&self) -> Option<ByteRange> {
        match self.data {
            SegmentData::Copy { source_offset } => {
                Some(ByteRange::new(source_offset, self.output.len))
            }
            _ => None,
        }
    }
}

/// Bytes that replace copied bytes at an output offset (whole 512-byte sectors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    pub output_offset: u64,
    pub bytes: Vec<u8>,
}

impl Patch {
    pub fn range(&self) -> ByteRange {
        ByteRange::new(self.output_offset, self.bytes.len() as u64)
    }
}

/// The whole output: length, segments, patches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPlan {
    pub len: u64,
    /// In output order, covering `0..len` exactly. Copy segments also come in increasing
    /// source order, so a source that can only be read forward is read in one pass.
    pub segments: Vec<Segment>,
    /// Sorted, disjoint, each inside one copy segment.
    pub patches: Vec<Patch>,
}

/// Chunk size of [`OutputPlan::write_to`].
const WRITE_CHUNK: usize = 1 << 20;

impl OutputPlan {
    /// Fills `buf` with output bytes from `offset`, reading copied ranges from `source`.
    ///
    /// Fails with [`io::ErrorKind::UnexpectedEof`] past the output's end.
    pub fn read_output(
        &self,
        source: &mut (impl ReadAt + ?Sized),
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<()> {
        let wanted = offset
            .checked_add(buf.len() as u64)
            .filter(|&end| end <= self.len)
            .map(|end| ByteRange::new(offset, end - offset))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} bytes at output offset {offset} lie beyond the adapted image's {} bytes",
                        buf.len(),
                        self.len
                    ),
                )
            })?;
        let first = self.segments.partition_point(|s| s.output.end() <= offset);
        for segment in &self.segments[first..] {
            let Some(part) = segment.output.intersection(&wanted) else {
                break;
            };
            let out = &mut buf[slice_of(part, offset)];
            let within = part.start - segment.output.start;
            match &segment.data {
                SegmentData::Zeros => out.fill(0),
                SegmentData::Bytes(bytes) => {
                    out.copy_from_slice(&bytes[slice_of(part, segment.output.start)])
                }
                SegmentData::Copy { source_offset } => {
                    source.read_exact_at(source_offset + within, out)?
                }
            }
        }
        let first = self.patches.partition_point(|p| p.range().end() <= offset);
        for patch in &self.patches[first..] {
            let Some(part) = patch.range().intersection(&wanted) else {
                break;
            };
            buf[slice_of(part, offset)]
                .copy_from_slice(&patch.bytes[slice_of(part, patch.output_offset)]);
        }
        Ok(())
    }

    /// Writes the whole output to `out` in order, reading the source as it goes.
    /// Returns the bytes written (`self.len`).
    pub fn write_to(&self, mut source: impl ReadAt, mut out: impl Write) -> io::Result<u64> {
        let mut buf = vec![0u8; WRITE_CHUNK];
        let mut offset = 0u64;
        while offset < self.len {
            let n = (self.len - offset).min(WRITE_CHUNK as u64) as usize;
            self.read_output(&mut source, offset, &mut buf[..n])?;
            out.write_all(&buf[..n])?;
            offset += n as u64;
        }
        out.flush()?;
        Ok(offset)
    }

    /// The output's bytes as a [`ReadAt`], so the flasher's planner, preflight check and
    /// GPT reader can work on the adapted image as on any other.
    pub fn image<S: ReadAt>(&self, source: S) -> AdaptedImage<'_, S> {
        AdaptedImage { plan: self, source }
    }
}

/// `part` as indices into a buffer that starts at output offset `base`.
fn slice_of(part: ByteRange, base: u64) -> std::ops::Range<usize> {
    let start = (part.start - base) as usize;
    start..start + part.len as usize
}

/// The adapted image read through its plan and source.
pub struct AdaptedImage<'p, S> {
    plan: &'p OutputPlan,
    source: S,
}

impl<S: ReadAt> ReadAt for AdaptedImage<'_, S> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.plan.read_output(&mut self.source, offset, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> OutputPlan {
        OutputPlan {
            len: 40,
            segments: vec![
                Segment {
                    output: ByteRange::new(0, 4),
                    data: SegmentData::Bytes(Arc::from(&b"HEAD"[..])),
                    what: "head".into(),
                },
                Segment {
                    output: ByteRange::new(4, 6),
                    data: SegmentData::Zeros,
                    what: "gap".into(),
                },
                Segment {
                    output: ByteRange::new(10, 30),
                    data: SegmentData::Copy { source_offset: 100 },
                    what: "data".into(),
                },
            ],
            patches: vec![Patch {
                output_offset: 20,
                bytes: vec![0xEE; 5],
            }],
        }
    }

    #[test]
    fn any_output_range_reads_the_same_as_the_whole() {
        let source: Vec<u8> = (0..=255).collect();
        let p = plan();
        let mut whole = Vec::new();
        p.write_to(source.as_slice(), &mut whole).unwrap();
        assert_eq!(&whole[..4], b"HEAD");
        assert_eq!(&whole[4..10], &[0; 6]);
        assert_eq!(&whole[10..20], &source[100..110]);
        assert_eq!(&whole[20..25], &[0xEE; 5]);
        assert_eq!(&whole[25..40], &source[115..130]);
        for start in 0..40 {
            for end in start..=40 {
                let mut buf = vec![0xAA; end - start];
                p.read_output(&mut source.as_slice(), start as u64, &mut buf)
                    .unwrap();
                assert_eq!(buf, whole[start..end], "{start}..{end}");
            }
        }
        let mut buf = [0u8; 2];
        let err = p
            .read_output(&mut source.as_slice(), 39, &mut buf)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            p.read_output(&mut source.as_slice(), u64::MAX, &mut buf)
                .is_err()
        );
    }
}
