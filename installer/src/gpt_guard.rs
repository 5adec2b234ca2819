//! A last check before the bootloader is written: if the disk already carries a GPT,
//! its entry array and partitions must start after the bootloader. A disk partitioned
//! without the overlay's offset (entries at LBA 2) would otherwise lose its partition
//! table to the ID block.
//!
//! Only the primary header is read, with the shared GPT header parser.

use rockusb_images::gpt::{GptHeader, HeaderError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use thiserror::Error;

const SECTOR: u64 = rockusb_images::layout::SECTOR_SIZE;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GptGuardError {
    #[error("reading the GPT header failed: {0}")]
    Read(String),
    #[error(
        "its primary GPT header is damaged ({0}); refusing to write the bootloader next to a partition table that cannot be checked — repair or recreate the table first"
    )]
    Damaged(HeaderError),
    #[error(
        "its GPT entry array starts at byte {entries_at}, inside the bootloader area (bytes {start}..{end}); the disk was partitioned without the overlay's partitionOptions.offset (20480), so reinstall Talos with this overlay"
    )]
    EntriesOverlap {
        entries_at: u64,
        start: u64,
        end: u64,
    },
    #[error(
        "its first usable sector {first_usable_lba} lies inside the bootloader area (bytes {start}..{end}); a partition there would be overwritten"
    )]
    PartitionsOverlap {
        first_usable_lba: u64,
        start: u64,
        end: u64,
    },
}

/// Fails when a GPT on `disk` overlaps bytes `[offset, offset + len)`.
/// A disk without a GPT (a fresh image file before Talos writes its table) passes.
pub fn check_room_for_bootloader(disk: &File, offset: u64, len: u64) -> Result<(), GptGuardError> {
    let mut header = [0u8; SECTOR as usize];
    disk.read_exact_at(&mut header, SECTOR)
        .map_err(|e| GptGuardError::Read(e.to_string()))?;
    let gpt = match GptHeader::parse(&header) {
        Ok(gpt) => gpt,
        Err(HeaderError::NoSignature) => return Ok(()),
        Err(damaged) => return Err(GptGuardError::Damaged(damaged)),
    };
    let end = offset + len;
    let first_usable_lba = gpt.first_usable_lba;
    let entries_len = gpt.entries_len();
    let entries_at = gpt.entries_lba.saturating_mul(SECTOR);
    // Saturating arithmetic: the header is untrusted and may hold absurd values.
    let entries_end = entries_at.saturating_add(entries_len.max(1));
    if entries_at < end && offset < entries_end {
        return Err(GptGuardError::EntriesOverlap {
            entries_at,
            start: offset,
            end,
        });
    }
    if first_usable_lba.saturating_mul(SECTOR) < end {
        return Err(GptGuardError::PartitionsOverlap {
            first_usable_lba,
            start: offset,
            end,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn disk_with_lba1(sector: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[0u8; SECTOR as usize]).unwrap();
        file.write_all(sector).unwrap();
        file.write_all(&[0u8; SECTOR as usize]).unwrap();
        file
    }

    #[test]
    fn a_disk_without_a_gpt_passes() {
        let disk = disk_with_lba1(&[0u8; SECTOR as usize]);
        assert_eq!(check_room_for_bootloader(&disk, 32768, 4096), Ok(()));
    }

    #[test]
    fn a_damaged_header_is_refused_rather_than_trusted() {
        let mut sector = [0u8; SECTOR as usize];
        sector[..8].copy_from_slice(b"EFI PART");
        sector[12..16].copy_from_slice(&92u32.to_le_bytes());
        let disk = disk_with_lba1(&sector);
        assert!(matches!(
            check_room_for_bootloader(&disk, 32768, 4096),
            Err(GptGuardError::Damaged(HeaderError::CrcMismatch { .. }))
        ));
    }
}
