//! The partition tables before and after, for the CLI to print or serialize.

use crate::diskmap::{AreaKind, DiskMap};
use crate::gpt::{Guid, Partition};
use crate::layout::{ByteRange, SECTOR_SIZE};
use crate::units::human_bytes;
use std::fmt;

/// One partition as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRow {
    /// 1-based slot in the entry array.
    pub number: u32,
    pub name: String,
    pub type_guid: Guid,
    /// "EFI system", "Linux filesystem", … when the type is a well-known one.
    pub type_name: Option<&'static str>,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub len: u64,
}

impl PartitionRow {
    /// A row for a partition of a disk with 512-byte sectors.
    pub fn new(p: &Partition) -> Self {
        Self::with_sector_size(p, SECTOR_SIZE)
    }

    pub fn with_sector_size(p: &Partition, sector_size: u64) -> Self {
        Self {
            number: p.number,
            name: p.name.clone(),
            type_guid: p.type_guid,
            type_name: p.type_guid.type_name(),
            first_lba: p.first_lba,
            last_lba: p.last_lba,
            len: p.sectors().saturating_mul(sector_size),
        }
    }

    pub fn byte_range(&self) -> ByteRange {
        ByteRange::new(self.first_lba.saturating_mul(SECTOR_SIZE), self.len)
    }
}

/// An image's layout: its table's placement, the bootloader and the partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// Image length in bytes.
    pub len: u64,
    /// LBA of the primary entry array, and its length in sectors.
    pub entries_lba: u64,
    pub entries_lbas: u64,
    /// Where the bootloader is written, if the image has one.
    pub bootloader: Option<ByteRange>,
    /// In slot order.
    pub partitions: Vec<PartitionRow>,
}

impl TableReport {
    /// The layout drawn to scale by [`crate::diskmap`].
    pub fn disk_map(&self) -> DiskMap {
        let sector = SECTOR_SIZE;
        let mut areas = vec![(
            AreaKind::Table,
            "GPT".to_string(),
            ByteRange::new(0, 2 * sector),
        )];
        let entries = ByteRange::new(self.entries_lba * sector, self.entries_lbas * sector);
        if entries.start == 2 * sector {
            // Entries right after the header, as in a generic image: one table area.
            areas[0].2 = ByteRange::new(0, entries.end());
        } else {
            areas.push((AreaKind::Table, "GPT entries".into(), entries));
        }
        if let Some(bootloader) = self.bootloader {
            areas.push((AreaKind::Bootloader, "U-Boot".into(), bootloader));
        }
        for p in &self.partitions {
            let label = if p.name.is_empty() {
                format!("#{}", p.number)
            } else {
                p.name.clone()
            };
            areas.push((AreaKind::Partition, label, p.byte_range()));
        }
        let backup_len = (self.entries_lbas + 1) * sector;
        areas.push((
            AreaKind::Table,
            "backup GPT".into(),
            ByteRange::new(self.len.saturating_sub(backup_len), backup_len),
        ));
        DiskMap::new(self.len, areas)
    }
}

impl fmt::Display for TableReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>3}  {:<12} {:<18} {:>10} {:>10} {:>10}",
            "#", "Name", "Type", "Start LBA", "End LBA", "Size"
        )?;
        for p in &self.partitions {
            let kind = p
                .type_name
                .map_or_else(|| p.type_guid.to_string(), str::to_string);
            writeln!(
                f,
                "{:>3}  {:<12} {:<18} {:>10} {:>10} {:>10}",
                p.number,
                p.name,
                kind,
                p.first_lba,
                p.last_lba,
                human_bytes(p.len)
            )?;
        }
        Ok(())
    }
}
