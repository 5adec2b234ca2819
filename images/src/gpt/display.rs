//! The table as `rockusb gpt` prints it.

use super::{GptCopy, GptReport, MbrKind};
use crate::units::human_bytes;
use std::fmt;

fn copy_line(f: &mut fmt::Formatter<'_>, label: &str, copy: Option<&GptCopy>) -> fmt::Result {
    match copy {
        Some(c) => writeln!(
            f,
            "{label} header: LBA {}, entries at LBA {} ({} x {} B), CRCs 0x{:08x}/0x{:08x} ok",
            c.lba,
            c.header.entries_lba,
            c.header.entry_count,
            c.header.entry_size,
            c.header.header_crc32,
            c.header.entries_crc32
        ),
        None => writeln!(f, "{label} header: not valid (see problems below)"),
    }
}

impl fmt::Display for GptReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mbr = match &self.mbr {
            MbrKind::Missing => "none".to_string(),
            MbrKind::Protective { first_lba, sectors } => {
                format!("protective (0xEE from LBA {first_lba}, {sectors} sectors)")
            }
            MbrKind::Hybrid { types } => format!("hybrid, types {types:02x?}"),
            MbrKind::Legacy { types } => format!("legacy, types {types:02x?}"),
        };
        writeln!(f, "Sector size: {} bytes; MBR: {mbr}", self.sector_size)?;
        if let Some(len) = self.len {
            writeln!(
                f,
                "Length: {} ({len} bytes, {} sectors)",
                human_bytes(len),
                len / self.sector_size
            )?;
        }
        copy_line(f, "Primary", self.primary.as_ref())?;
        if self.backup_checked {
            copy_line(f, "Backup ", self.backup.as_ref())?;
        } else {
            writeln!(f, "Backup  header: not checked")?;
        }
        if let Some(t) = self.table() {
            let h = &t.header;
            writeln!(
                f,
                "Disk GUID: {}; usable LBAs {}..={}",
                h.disk_guid, h.first_usable_lba, h.last_usable_lba
            )?;
            writeln!(
                f,
                "{:>3}  {:<12} {:>10} {:>10} {:>10}  {:<36}  {:<20} {:>18}",
                "#", "Name", "Start", "End", "Size", "Unique GUID", "Type", "Attributes"
            )?;
            for p in &t.partitions {
                let kind = p
                    .type_guid
                    .type_name()
                    .map_or_else(|| p.type_guid.to_string(), str::to_string);
                writeln!(
                    f,
                    "{:>3}  {:<12} {:>10} {:>10} {:>10}  {:<36}  {:<20} {:#018x}",
                    p.number,
                    p.name,
                    p.first_lba,
                    p.last_lba,
                    human_bytes(p.sectors().saturating_mul(self.sector_size)),
                    p.unique_guid.to_string(),
                    kind,
                    p.attributes
                )?;
            }
        }
        if self.problems.is_empty() {
            writeln!(f, "No problems found.")?;
        } else {
            writeln!(f, "Problems:")?;
            for p in &self.problems {
                writeln!(f, "  - {p}")?;
            }
        }
        Ok(())
    }
}
