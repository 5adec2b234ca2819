//! A last check before the bootloader is written: no existing partition may lie under it.
//!
//! What the overlay finds on the disk depends on the Talos version and mode:
//!
//! - image mode, Talos ≥ 1.13: an all-zero raw file; the GPT is written after the overlay
//!   ran (`siderolabs/talos:internal/app/machined/pkg/runtime/v1alpha1/bootloader/grub/
//!   grub.go`, `GenerateAssets`/`PrepareBootPartitions`);
//! - image mode ≤ 1.12, upgrades, installs on 1.14: Talos's own GPT with the overlay's offset
//!   (entry array at LBA 20482, first partition at LBA 22528);
//! - install mode on Talos 1.13.x: the overlay runs from `GenerateAssets`, **before**
//!   `diskOperations` checks or wipes the disk and before `createPartitions`
//!   (`siderolabs/talos:cmd/installer/pkg/install/install.go`, v1.13.0, `Install`), so the
//!   disk may be empty, carry a GPT without partitions (`sgdisk -o`: entries at LBA 2,
//!   first usable LBA 34), or still hold an old system.
//!
//! So a disk without a GPT, an all-zero disk and a GPT without partitions all pass: Talos
//! writes its table afterwards (and its GPT writer keeps the bytes at 32 KiB). Only a
//! partition (GPT or classic MBR) that overlaps the bytes about to be written is refused,
//! as is a populated GPT whose entry array lies there, and a table too damaged to check.

use rockusb_images::ByteRange;
use rockusb_images::gpt::mbr::{MbrKind, mbr_partitions};
use rockusb_images::gpt::{GptProblem, GptReadOptions, GptReport, HeaderError};
use rockusb_images::read_at::ReadAtFn;
use std::fs::File;
use std::os::unix::fs::FileExt;
use thiserror::Error;

const SECTOR: u64 = rockusb_images::layout::SECTOR_SIZE;

/// The advice every refusal ends with: why a fresh 1.13 install can meet such a disk and
/// what to do about it.
pub const FRESH_INSTALL_HINT: &str = "on a fresh Talos 1.13 install the overlay runs before Talos wipes and partitions the disk, so an old system still there is refused: wipe the disk first (wipefs -a / blkdiscard from a rescue system), or flash the overlay's raw image from MaskROM with rockusb flash and upgrade from there (docs/talos-overlay.md, \"Talos versions\")";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GptGuardError {
    #[error("reading the partition table failed: {0}")]
    Read(String),
    #[error(
        "its partition table is damaged ({detail}); refusing to write the bootloader next to partitions that cannot be checked; {FRESH_INSTALL_HINT}"
    )]
    Damaged { detail: String },
    #[error(
        "{table} partition {number}{name} (bytes {part_start}..{part_end}) overlaps the bootloader area (bytes {start}..{end}) and would be destroyed; a disk partitioned with this overlay's partitionOptions.offset (20480) starts its first partition at byte 11534336; {FRESH_INSTALL_HINT}"
    )]
    PartitionOverlaps {
        table: &'static str,
        number: u32,
        /// `" (NAME)"` or empty.
        name: String,
        part_start: u64,
        part_end: u64,
        start: u64,
        end: u64,
    },
    #[error(
        "its GPT entry array (bytes {entries_at}..{entries_end}) lies inside the bootloader area (bytes {start}..{end}) and lists {partitions} partitions; the disk was partitioned without the overlay's partitionOptions.offset (20480); {FRESH_INSTALL_HINT}"
    )]
    EntriesOverlap {
        entries_at: u64,
        entries_end: u64,
        partitions: usize,
        start: u64,
        end: u64,
    },
}

/// Fails when writing bytes `[offset, offset + len)` of `disk` (`disk_len` bytes long)
/// would damage an existing partition or a populated GPT.
pub fn check_room_for_bootloader(
    disk: &File,
    disk_len: u64,
    offset: u64,
    len: u64,
) -> Result<(), GptGuardError> {
    let area = ByteRange::new(offset, len);
    let read = ReadAtFn(|at: u64, buf: &mut [u8]| disk.read_exact_at(buf, at));
    let report = GptReport::read(
        read,
        GptReadOptions {
            sector_size: Some(SECTOR),
            len: Some(disk_len),
            len_what: "disk",
            check_backup: true,
        },
    )
    .map_err(|e| GptGuardError::Read(e.to_string()))?;

    if let Some(table) = report.table() {
        for partition in &table.partitions {
            let Some(range) = partition.byte_range(SECTOR) else {
                continue;
            };
            if range.overlaps(&area) {
                return Err(GptGuardError::PartitionOverlaps {
                    table: "GPT",
                    number: partition.number,
                    name: if partition.name.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", partition.name)
                    },
                    part_start: range.start,
                    part_end: range.end(),
                    start: area.start,
                    end: area.end(),
                });
            }
        }
        // Only the primary array sits near the start of the disk.
        if let Some(primary) = &report.primary {
            let header = &primary.header;
            // The reader only returns arrays it could read, but stay clear of overflow.
            let entries_at = header.entries_lba.saturating_mul(SECTOR);
            let entries = ByteRange::new(
                entries_at,
                header.entries_len().max(1).min(u64::MAX - entries_at),
            );
            if !primary.partitions.is_empty() && entries.overlaps(&area) {
                return Err(GptGuardError::EntriesOverlap {
                    entries_at: entries.start,
                    entries_end: entries.end(),
                    partitions: primary.partitions.len(),
                    start: area.start,
                    end: area.end(),
                });
            }
        }
    } else if !report.is_absent() {
        let detail = report
            .problems
            .iter()
            .filter(|p| match p {
                GptProblem::Header { error, .. } => *error != HeaderError::NoSignature,
                GptProblem::EntriesCrcMismatch { .. }
                | GptProblem::EntryArrayInvalid { .. }
                | GptProblem::EntriesBeyondData { .. } => true,
                _ => false,
            })
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(GptGuardError::Damaged { detail });
    }

    // A classic MBR (no GPT, or a hybrid one) has partitions of its own.
    if matches!(report.mbr, MbrKind::Legacy { .. } | MbrKind::Hybrid { .. }) {
        let mut sector0 = [0u8; SECTOR as usize];
        disk.read_exact_at(&mut sector0, 0)
            .map_err(|e| GptGuardError::Read(e.to_string()))?;
        for partition in mbr_partitions(&sector0) {
            if partition.type_byte == 0xEE {
                continue;
            }
            let range = ByteRange::new(
                u64::from(partition.first_lba) * SECTOR,
                u64::from(partition.sectors) * SECTOR,
            );
            if range.overlaps(&area) {
                return Err(GptGuardError::PartitionOverlaps {
                    table: "MBR",
                    number: partition.number,
                    name: format!(" (type {:#04x})", partition.type_byte),
                    part_start: range.start,
                    part_end: range.end(),
                    start: area.start,
                    end: area.end(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LEN: u64 = 64 * SECTOR;

    fn disk_with(sector0: &[u8], lba1: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(sector0).unwrap();
        file.write_all(lba1).unwrap();
        file.write_all(&vec![0u8; (LEN - 2 * SECTOR) as usize])
            .unwrap();
        file
    }

    #[test]
    fn an_all_zero_disk_passes() {
        let zero = [0u8; SECTOR as usize];
        let disk = disk_with(&zero, &zero);
        assert_eq!(check_room_for_bootloader(&disk, LEN, 32768, 4096), Ok(()));
    }

    #[test]
    fn a_damaged_header_is_refused_rather_than_trusted() {
        let mut sector = [0u8; SECTOR as usize];
        sector[..8].copy_from_slice(b"EFI PART");
        sector[12..16].copy_from_slice(&92u32.to_le_bytes());
        let disk = disk_with(&[0u8; SECTOR as usize], &sector);
        let err = check_room_for_bootloader(&disk, LEN, 32768, 4096).unwrap_err();
        assert!(matches!(err, GptGuardError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("CRC"), "{err}");
        assert!(err.to_string().contains("Talos 1.13"), "{err}");
    }

    #[test]
    fn a_classic_mbr_partition_under_the_bootloader_is_refused() {
        let mut sector0 = [0u8; SECTOR as usize];
        // Partition 1: type 0x0c (FAT32 LBA) from sector 2048, 8 MiB.
        sector0[446 + 4] = 0x0c;
        sector0[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        sector0[446 + 12..446 + 16].copy_from_slice(&16384u32.to_le_bytes());
        sector0[510..512].copy_from_slice(&[0x55, 0xAA]);
        let disk = disk_with(&sector0, &[0u8; SECTOR as usize]);
        let err = check_room_for_bootloader(&disk, LEN, 32768, 2 * 1024 * 1024).unwrap_err();
        assert!(
            matches!(
                err,
                GptGuardError::PartitionOverlaps {
                    table: "MBR",
                    number: 1,
                    ..
                }
            ),
            "{err}"
        );
        // The same table with the bootloader ending before the partition passes.
        assert_eq!(check_room_for_bootloader(&disk, LEN, 32768, 4096), Ok(()));
    }
}
