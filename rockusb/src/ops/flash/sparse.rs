//! The sparse flash's decision per partition: which zero runs may be skipped.
//!
//! The rules live in [`rockusb_images::sparse`]; this module gives them random access to
//! the decoded image where the source allows it (a raw file, an indexed .xz, or an image
//! short enough to be held whole) and turns the result into the report's figures.

use super::Prefix;
use super::pipeline::Chunk;
use super::verify::Written;
use crate::source::xz_blocks::{BlockReader, XzBlocks};
use crate::source::{Format, ImageAt};
use rockusb_images::ByteRange;
use rockusb_images::gpt::GptReport;
use rockusb_images::read_at::Windows;
use rockusb_images::sparse::{Access, Accounting, PartitionPlan, SkipMap, skip_map};
use serde::Serialize;

/// Where the decoded image can be read out of order, if anywhere.
pub enum RandomSource<'a> {
    /// The whole image has already been decoded into these chunks.
    Held(&'a [Chunk]),
    /// Random access the source offers (a raw file, an adapted image).
    Random(&'a ImageAt),
    Xz(XzBlocks),
    /// Only in order: why, in the words of the report.
    Sequential(String),
}

impl<'a> RandomSource<'a> {
    /// The best way to read the image ahead: the chunks already held when the stream
    /// ended inside them, the source's own random access, the .xz index, or none.
    pub(super) fn choose(
        prefix: &'a Prefix,
        random_access: Option<&'a ImageAt>,
        xz: Option<XzBlocks>,
        name: &str,
        format: Format,
    ) -> Self {
        match (prefix.ended, random_access, xz) {
            (Some(_), _, _) => RandomSource::Held(&prefix.chunks),
            (None, Some(image), _) => RandomSource::Random(image),
            (None, None, Some(blocks)) => RandomSource::Xz(blocks),
            (None, None, None) => RandomSource::Sequential(Self::sequential_reason(name, format)),
        }
    }

    /// Why an in-order source cannot be read ahead, by where it comes from.
    pub fn sequential_reason(name: &str, format: Format) -> String {
        match format {
            _ if name == "stdin" => "the image comes from standard input".into(),
            Format::Gzip | Format::Zstd => format!(
                "{format} data can only be decoded from its start (compress with `xz -T0`, as Talos does, to skip free space)"
            ),
            Format::Xz => "this .xz file's blocks cannot be decoded one by one (a single block, or blocks over 8 MiB; `xz -T0` makes blocks that can)".into(),
            Format::Raw => "the image can only be read in order".into(),
        }
    }
}

/// Reads the file systems' free-space records and decides every partition's writes.
pub fn plan(
    gpt: &GptReport,
    first: &[Chunk],
    image_len: Option<u64>,
    source: RandomSource<'_>,
) -> SkipMap {
    let sector0: Option<[u8; 512]> = first
        .first()
        .and_then(|c| c.data().get(..512))
        .and_then(|s| s.try_into().ok());
    let sector0 = sector0.as_ref();
    match source {
        RandomSource::Held(chunks) => {
            let mut pieces: Windows = chunks.iter().map(|c| (c.offset, c.data())).collect();
            skip_map(gpt, sector0, image_len, Access::Random(&mut pieces))
        }
        RandomSource::Random(image) => {
            let mut image = image;
            skip_map(gpt, sector0, image_len, Access::Random(&mut image))
        }
        RandomSource::Xz(blocks) => {
            let mut reader = BlockReader::new(blocks);
            skip_map(gpt, sector0, image_len, Access::Random(&mut reader))
        }
        RandomSource::Sequential(why) => skip_map(gpt, sector0, image_len, Access::Sequential(why)),
    }
}

/// One partition in the flash report and the `partition-plan` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionReport {
    pub number: u32,
    pub name: String,
    pub start: u64,
    pub len: u64,
    /// "XFS", "FAT32", "ext4", … or `None` when not recognised.
    pub file_system: Option<String>,
    /// `free-space`: zero runs in the file system's free space were skipped;
    /// `full`: every byte was written (see `reason`).
    pub writes: &'static str,
    pub reason: Option<String>,
    /// Bytes the file system calls free.
    pub free_bytes: u64,
    /// Filled in after the flash: bytes of the partition written, and skipped.
    pub bytes_written: u64,
    pub bytes_skipped: u64,
}

impl PartitionReport {
    pub fn planned(p: &PartitionPlan) -> Self {
        let (writes, reason, free_bytes) = match &p.accounting {
            Accounting::FreeSpace { free_bytes, .. } => ("free-space", None, *free_bytes),
            Accounting::Full { reason, .. } => ("full", Some(reason.clone()), 0),
        };
        PartitionReport {
            number: p.number,
            name: p.name.clone(),
            start: p.range.start,
            len: p.range.len,
            file_system: p.accounting.kind().map(|k| k.to_string()),
            writes,
            reason,
            free_bytes,
            bytes_written: 0,
            bytes_skipped: 0,
        }
    }

    /// Counts what `records` wrote inside this partition.
    pub fn count(&mut self, records: &[Written]) {
        let range = ByteRange::new(self.start, self.len);
        self.bytes_written = records
            .iter()
            .filter_map(|w| w.range.intersection(&range))
            .map(|r| r.len)
            .sum::<u64>()
            .min(self.len);
        self.bytes_skipped = self.len - self.bytes_written;
    }
}
