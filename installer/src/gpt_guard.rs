//! A last check before the bootloader is written: if the disk already carries a GPT,
//! its entry array and partitions must start after the bootloader. A disk partitioned
//! without the overlay's offset (entries at LBA 2) would otherwise lose its partition
//! table to the ID block.
//!
//! Only the primary header's three fields needed for this are read (UEFI spec 5.3.2).

use std::fs::File;
use std::os::unix::fs::FileExt;
use thiserror::Error;

const SECTOR: u64 = rockusb_images::layout::SECTOR_SIZE;
const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GptGuardError {
    #[error("reading the GPT header failed: {0}")]
    Read(String),
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

fn u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let field: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(field))
}

fn u64_le(bytes: &[u8], at: usize) -> Option<u64> {
    let field: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(field))
}

/// Fails when a GPT on `disk` overlaps bytes `[offset, offset + len)`.
/// A disk without a GPT (a fresh image file before Talos writes its table) passes.
pub fn check_room_for_bootloader(disk: &File, offset: u64, len: u64) -> Result<(), GptGuardError> {
    let mut header = [0u8; SECTOR as usize];
    disk.read_exact_at(&mut header, SECTOR)
        .map_err(|e| GptGuardError::Read(e.to_string()))?;
    if header.get(..8) != Some(GPT_SIGNATURE.as_slice()) {
        return Ok(());
    }
    let end = offset + len;
    // Header fields: first usable LBA at byte 40, partition-entry LBA at byte 72,
    // entry count at 80 and entry size at 84.
    let first_usable_lba = u64_le(&header, 40).unwrap_or(0);
    let entries_lba = u64_le(&header, 72).unwrap_or(0);
    let entries_len =
        u64::from(u32_le(&header, 80).unwrap_or(0)) * u64::from(u32_le(&header, 84).unwrap_or(0));
    let entries_at = entries_lba.saturating_mul(SECTOR);
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
