//! Reading the source image's table and deciding whether it can be adapted at all.

use super::AdaptError;
use crate::fs::fat;
use crate::gpt::{GptHeader, GptProblem, GptReadError, GptReadOptions, GptReport, Guid, Partition};
use crate::layout::{BoardLayout, SECTOR_SIZE};
use crate::read_at::ReadAt;
use std::io;

/// The EFI system partition type GUID (UEFI 2.x §5.3.3, table 5.7).
pub const ESP_TYPE_GUID: Guid = Guid([
    0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B,
]);

/// What the adaptation needs from the source: its valid primary table, the ESP, and the
/// boot code of its MBR.
#[derive(Debug, Clone)]
pub(crate) struct SourceImage {
    pub len: u64,
    /// Bytes 0..446 of LBA 0 (boot code and disk signature), kept as Talos's writer keeps them.
    pub mbr_code: [u8; 446],
    pub header: GptHeader,
    pub entry_array: Vec<u8>,
    /// Used entries, in slot order.
    pub partitions: Vec<Partition>,
    pub esp: Partition,
    /// Defects that do not stop the adaptation (the output gets a fresh table).
    pub warnings: Vec<String>,
}

/// Problems of the source table that the rewrite replaces anyway: a damaged or misplaced
/// backup copy, a missing or hybrid MBR. Anything else wrong stops the adaptation.
fn replaced_by_rewrite(problem: &GptProblem) -> bool {
    use crate::gpt::Copy;
    match problem {
        GptProblem::NoProtectiveMbr
        | GptProblem::HybridMbr { .. }
        | GptProblem::MbrWithoutProtectiveEntry { .. }
        | GptProblem::BackupNotAtEnd { .. }
        | GptProblem::CopiesDiffer { .. }
        | GptProblem::EntriesDiffer { .. } => true,
        GptProblem::Header { which, .. }
        | GptProblem::HeaderBeyondData { which, .. }
        | GptProblem::HeaderWrongLocation { which, .. }
        | GptProblem::EntryArrayInvalid { which, .. }
        | GptProblem::EntriesBeyondData { which, .. }
        | GptProblem::EntriesCrcMismatch { which, .. } => *which == Copy::Backup,
        _ => false,
    }
}

/// Partition-layout problems are reported per partition by [`super::relocate`], with
/// what they mean for a move.
fn is_partition_problem(problem: &GptProblem) -> bool {
    matches!(
        problem,
        GptProblem::PartitionReversed { .. }
            | GptProblem::PartitionOutsideUsable { .. }
            | GptProblem::PartitionBeyondEnd { .. }
            | GptProblem::PartitionsOverlap { .. }
    )
}

fn read_error(error: GptReadError) -> AdaptError {
    match error {
        GptReadError::Io { what, source } => AdaptError::Read { what, source },
    }
}

pub(crate) fn read_source(
    src: &mut dyn ReadAt,
    len: u64,
    layout: &BoardLayout,
) -> Result<SourceImage, AdaptError> {
    let options = GptReadOptions {
        len: Some(len),
        ..GptReadOptions::default()
    };
    let report = GptReport::read(&mut *src, options).map_err(read_error)?;
    let Some(primary) = report.primary.as_ref() else {
        return Err(if report.is_absent() {
            AdaptError::NoGpt
        } else {
            AdaptError::DamagedGpt {
                problems: join(report.problems.iter()),
            }
        });
    };
    if report.sector_size != SECTOR_SIZE {
        return Err(AdaptError::SectorSize {
            sector_size: report.sector_size,
            board: layout.display_name,
        });
    }
    if len % SECTOR_SIZE != 0 {
        return Err(AdaptError::LengthNotSectorMultiple { len });
    }
    let fatal: Vec<&GptProblem> = report
        .problems
        .iter()
        .filter(|p| !replaced_by_rewrite(p) && !is_partition_problem(p))
        .collect();
    if !fatal.is_empty() {
        return Err(AdaptError::DamagedGpt {
            problems: join(fatal.into_iter()),
        });
    }
    let warnings = report
        .problems
        .iter()
        .filter(|p| replaced_by_rewrite(p))
        .map(|p| format!("the source image's table: {p}; the adapted image gets a new one"))
        .collect();

    let first_lba = primary.partitions.iter().map(|p| p.first_lba).min();
    if primary.header.entries_lba == layout.gpt_entries_lba()
        && first_lba == Some(layout.first_partition_lba())
    {
        return Err(AdaptError::AlreadyAdapted {
            board: layout.display_name,
            entries_lba: primary.header.entries_lba,
            first_lba: layout.first_partition_lba(),
        });
    }

    let esp = primary
        .partitions
        .iter()
        .find(|p| p.type_guid == ESP_TYPE_GUID)
        .ok_or(AdaptError::NoEsp)?
        .clone();
    check_esp_is_fat(src, &esp)?;

    let mut sector0 = [0u8; 512];
    read(src, 0, &mut sector0, "LBA 0")?;
    let mut mbr_code = [0u8; 446];
    mbr_code.copy_from_slice(&sector0[..446]);

    Ok(SourceImage {
        len,
        mbr_code,
        header: primary.header.clone(),
        entry_array: primary.entry_array().to_vec(),
        partitions: primary.partitions.clone(),
        esp,
        warnings,
    })
}

fn check_esp_is_fat(src: &mut dyn ReadAt, esp: &Partition) -> Result<(), AdaptError> {
    let not_fat = || AdaptError::EspNotFat {
        number: esp.number,
        name: esp.name.clone(),
    };
    let range = esp.byte_range(SECTOR_SIZE).ok_or_else(not_fat)?;
    let mut head = [0u8; 512];
    if range.len < head.len() as u64 {
        return Err(not_fat());
    }
    match src.read_exact_at(range.start, &mut head) {
        Ok(()) => {}
        // Past the image's end: the partition check reports that with its numbers.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
        Err(source) => {
            return Err(AdaptError::Read {
                what: "the EFI system partition's boot sector".into(),
                source,
            });
        }
    }
    fat::probe(&head).map(|_| ()).ok_or_else(not_fat)
}

fn read(src: &mut dyn ReadAt, offset: u64, buf: &mut [u8], what: &str) -> Result<(), AdaptError> {
    src.read_exact_at(offset, buf)
        .map_err(|source| AdaptError::Read {
            what: what.to_string(),
            source,
        })
}

fn join<'a>(problems: impl Iterator<Item = &'a GptProblem>) -> String {
    problems
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_type_guid_matches_its_text_form() {
        let text: Guid = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B".parse().unwrap();
        assert_eq!(ESP_TYPE_GUID, text);
    }
}
