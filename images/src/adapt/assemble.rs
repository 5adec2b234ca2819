//! Lays the output out as segments: table, U-Boot, moved partitions, backup table.

use super::output::{OutputPlan, Patch, Segment, SegmentData};
use super::relocate::Relocation;
use super::table::TableBytes;
use crate::layout::{BoardLayout, ByteRange, SECTOR_SIZE};
use std::sync::Arc;

/// Appends segments in output order, filling any space before each with zeros.
struct SegmentsBuilder {
    segments: Vec<Segment>,
    end: u64,
}

impl SegmentsBuilder {
    /// Areas come in increasing order; planning has refused every input that would make
    /// two overlap, and this check keeps a mistake from producing a wrong image.
    fn push(
        &mut self,
        start: u64,
        len: u64,
        data: SegmentData,
        what: String,
    ) -> Result<(), String> {
        if start < self.end {
            return Err(format!(
                "{what} at byte {start} would overlap the area before it, which ends at byte {}",
                self.end
            ));
        }
        if start > self.end {
            self.segments.push(Segment {
                output: ByteRange::new(self.end, start - self.end),
                data: SegmentData::Zeros,
                what: "zeros".into(),
            });
        }
        if len > 0 {
            self.segments.push(Segment {
                output: ByteRange::new(start, len),
                data,
                what,
            });
        }
        self.end = start + len;
        Ok(())
    }

    fn bytes(&mut self, start: u64, bytes: &[u8], what: &str) -> Result<(), String> {
        let data = SegmentData::Bytes(Arc::from(bytes));
        self.push(start, bytes.len() as u64, data, what.to_string())
    }
}

pub(crate) fn assemble(
    layout: &BoardLayout,
    table: &TableBytes,
    moved: &Relocation,
    uboot: &[u8],
    patches: Vec<Patch>,
) -> Result<OutputPlan, String> {
    let sector = SECTOR_SIZE;
    let mut out = SegmentsBuilder {
        segments: Vec::new(),
        end: 0,
    };
    out.bytes(0, &table.mbr, "protective MBR")?;
    out.bytes(sector, &table.primary_header, "primary GPT header")?;
    out.bytes(layout.bootloader_offset(), uboot, "U-Boot")?;
    out.bytes(
        moved.primary_entries_lba * sector,
        &table.entries,
        "primary GPT entries",
    )?;

    let mut by_start: Vec<_> = moved.partitions.iter().collect();
    by_start.sort_by_key(|p| p.first_lba);
    for p in by_start {
        let Some(range) = p.byte_range(sector) else {
            continue;
        };
        // The source is where the partition was before the shift.
        let source_offset = range
            .start
            .checked_add_signed(-moved.delta_lbas * sector as i64)
            .unwrap_or(0);
        out.push(
            range.start,
            range.len,
            SegmentData::Copy { source_offset },
            format!("partition {} ({})", p.number, p.name),
        )?;
    }

    out.bytes(
        moved.backup_entries_lba * sector,
        &table.entries,
        "backup GPT entries",
    )?;
    out.bytes(
        moved.last_lba * sector,
        &table.backup_header,
        "backup GPT header",
    )?;
    if out.end != moved.len {
        return Err(format!(
            "the areas end at byte {} instead of {}",
            out.end, moved.len
        ));
    }
    Ok(OutputPlan {
        len: moved.len,
        segments: out.segments,
        patches,
    })
}
