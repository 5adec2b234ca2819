//! Turning a generic Talos image (`metal-arm64.raw`: systemd-boot + UKI, the EFI system
//! partition at LBA 2048, GPT entries at LBA 2) into an image for a board whose
//! bootloader sits where that table and partition are: U-Boot at byte 32768, the entry
//! array at LBA 2 + 20480 and every partition moved by the same number of sectors to
//! where the board layout puts the first one (LBA 22528 on the NanoPi M6,
//! docs/disk-layout.md §1).
//!
//! Partition contents are copied verbatim; type and unique GUIDs, names, attributes,
//! slot order and the disk GUID stay. The table is rewritten in both copies (the backup
//! at the new end) with a protective MBR for the new size, and the board's DTB is put
//! into the EFI system partition at `/dtb/rockchip/<name>` (where U-Boot's EFI loader
//! looks for `fdtfile`) by the FAT library working on a sector overlay, so only the FAT
//! sectors that must change differ from the source.
//!
//! The result is a description, [`AdaptPlan`], not bytes: its [`OutputPlan`] says what
//! fills every output byte, so the same plan writes a file ([`OutputPlan::write_to`]) or
//! feeds a flasher chunk by chunk ([`OutputPlan::read_output`], [`OutputPlan::image`]).
//!
//! ```no_run
//! use rockusb_images::adapt::{self, AdaptRequest, DtbFile};
//! use rockusb_images::{NANOPI_M6, read_at::SeekReader};
//! # fn demo(uboot: &[u8], dtb: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! let file = std::fs::File::open("metal-arm64.raw")?;
//! let len = file.metadata()?.len();
//! let mut source = SeekReader(file);
//! let request = AdaptRequest {
//!     layout: &NANOPI_M6,
//!     uboot,
//!     dtb: Some(DtbFile { name: "rk3588s-nanopi-m6.dtb", bytes: dtb }),
//! };
//! let plan = match adapt::plan(&mut source, len, &request) {
//!     Err(e) if e.is_already_adapted() => return Ok(()),
//!     other => other?,
//! };
//! print!("{}", plan.after);
//! plan.output.write_to(&mut source, std::fs::File::create("m6.raw")?)?;
//! # Ok(()) }
//! ```

mod assemble;
mod dot_entries;
mod error;
mod esp_file;
mod output;
mod relocate;
mod report;
mod sector_overlay;
mod source;
mod table;

pub use error::AdaptError;
pub use output::{AdaptedImage, OutputPlan, Patch, Segment, SegmentData};
pub use report::{PartitionRow, TableReport};
pub use source::ESP_TYPE_GUID;

pub(crate) use esp_file::fs_options;
pub(crate) use sector_overlay::SectorOverlay;

use crate::layout::{BoardLayout, ByteRange, SECTOR_SIZE};
use crate::read_at::ReadAt;

/// Directories of the ESP the DTB goes into: U-Boot's EFI loader looks for `fdtfile`
/// (`rockchip/<name>.dtb`) under `/dtb/`, as the board's Talos overlay installs it.
pub const DTB_DIRS: [&str; 2] = ["dtb", "rockchip"];

/// A DTB to place in the ESP.
#[derive(Debug, Clone, Copy)]
pub struct DtbFile<'a> {
    /// File name in `/dtb/rockchip/`, e.g. `rk3588s-nanopi-m6.dtb`.
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// What to adapt the image to.
#[derive(Debug, Clone, Copy)]
pub struct AdaptRequest<'a> {
    pub layout: &'a BoardLayout,
    /// `u-boot-rockchip.bin`, already checked by the caller (ID block, size).
    pub uboot: &'a [u8],
    /// The board's DTB, already checked by the caller's DTB gate.
    pub dtb: Option<DtbFile<'a>>,
}

/// The EFI system partition, before and after the move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspPlacement {
    pub number: u32,
    pub name: String,
    pub source: ByteRange,
    pub output: ByteRange,
}

/// Everything the adaptation will do, before a byte is written.
#[derive(Debug, Clone)]
pub struct AdaptPlan {
    pub output: OutputPlan,
    pub before: TableReport,
    pub after: TableReport,
    /// Sectors every partition moved by.
    pub delta_lbas: i64,
    pub esp: EspPlacement,
    /// Where the DTB was put in the ESP (`/dtb/rockchip/<name>`), if one was given.
    pub dtb_path: Option<String>,
    /// Defects of the source that the rewrite repairs, as sentences.
    pub warnings: Vec<String>,
}

/// Plans the adaptation of the image read from `source` (`source_len` bytes).
///
/// Reads the source's GPT, the ESP's FAT structures and nothing else; the partitions'
/// contents are read only when the output is produced.
pub fn plan(
    mut source: impl ReadAt,
    source_len: u64,
    request: &AdaptRequest,
) -> Result<AdaptPlan, AdaptError> {
    let layout = request.layout;
    let source_image = source::read_source(&mut source, source_len, layout)?;
    let moved = relocate::relocate(&source_image, layout)?;
    check_uboot_fits(request.uboot, layout, &moved)?;

    let esp_source = partition_range(&source_image.esp, layout)?;
    let esp_moved = moved
        .partitions
        .iter()
        .find(|p| p.number == source_image.esp.number)
        .ok_or_else(|| {
            overflow(
                layout,
                "the EFI system partition was lost in the move".into(),
            )
        })?;
    let esp_output = partition_range(esp_moved, layout)?;

    let (dtb_path, patches) = match request.dtb {
        None => (None, Vec::new()),
        Some(dtb) => {
            check_dtb_name(dtb.name)?;
            let path = format!("/{}/{}", DTB_DIRS.join("/"), dtb.name);
            let runs = esp_file::put_file(&mut source, esp_source, &DTB_DIRS, dtb.name, dtb.bytes)
                .map_err(|source| AdaptError::DtbInsert {
                    path: path.clone(),
                    source,
                })?;
            let patches = runs
                .into_iter()
                .map(|(offset, bytes)| Patch {
                    output_offset: esp_output.start + offset,
                    bytes,
                })
                .collect();
            (Some(path), patches)
        }
    };

    let table = table::build(&source_image, &moved);
    let output = assemble::assemble(layout, &table, &moved, request.uboot, patches)
        .map_err(|reason| overflow(layout, reason))?;

    let before = TableReport {
        len: source_len,
        entries_lba: source_image.header.entries_lba,
        entries_lbas: moved.entry_lbas,
        bootloader: None,
        partitions: source_image
            .partitions
            .iter()
            .map(PartitionRow::new)
            .collect(),
    };
    let after = TableReport {
        len: moved.len,
        entries_lba: moved.primary_entries_lba,
        entries_lbas: moved.entry_lbas,
        bootloader: Some(ByteRange::new(
            layout.bootloader_offset(),
            request.uboot.len() as u64,
        )),
        partitions: moved.partitions.iter().map(PartitionRow::new).collect(),
    };
    Ok(AdaptPlan {
        output,
        before,
        after,
        delta_lbas: moved.delta_lbas,
        esp: EspPlacement {
            number: source_image.esp.number,
            name: source_image.esp.name.clone(),
            source: esp_source,
            output: esp_output,
        },
        dtb_path,
        warnings: source_image.warnings,
    })
}

fn overflow(layout: &BoardLayout, reason: String) -> AdaptError {
    AdaptError::LayoutOverflow {
        board: layout.display_name,
        reason,
    }
}

fn partition_range(
    p: &crate::gpt::Partition,
    layout: &BoardLayout,
) -> Result<ByteRange, AdaptError> {
    p.byte_range(SECTOR_SIZE).ok_or_else(|| {
        overflow(
            layout,
            format!("partition {} ({:?}) has no byte range", p.number, p.name),
        )
    })
}

/// U-Boot runs from its offset up to whatever comes next: the primary entry array, or the
/// first partition if that came first.
fn check_uboot_fits(
    uboot: &[u8],
    layout: &BoardLayout,
    moved: &relocate::Relocation,
) -> Result<(), AdaptError> {
    if uboot.is_empty() {
        return Err(AdaptError::UbootEmpty);
    }
    let entries = moved.primary_entries_lba * SECTOR_SIZE;
    let first_partition = moved
        .partitions
        .iter()
        .map(|p| p.first_lba * SECTOR_SIZE)
        .min()
        .unwrap_or(u64::MAX);
    let (end, limit) = if entries <= first_partition {
        (entries, "the primary GPT entry array")
    } else {
        (first_partition, "the first partition")
    };
    let start = layout.bootloader_offset();
    let max = end.saturating_sub(start);
    let len = uboot.len() as u64;
    if len > max {
        return Err(AdaptError::UbootTooLarge {
            len,
            max,
            start,
            end,
            limit,
            board: layout.display_name,
        });
    }
    Ok(())
}

/// A plain name: one path component, FAT's 255-character limit, no characters FAT
/// forbids in long names.
fn check_dtb_name(name: &str) -> Result<(), AdaptError> {
    let forbidden = |c: char| c.is_control() || "/\\:*?\"<>|".contains(c);
    let plain = !name.is_empty()
        && name.chars().count() <= 255
        && name != "."
        && name != ".."
        && !name.chars().any(forbidden);
    if plain {
        Ok(())
    } else {
        Err(AdaptError::DtbName {
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtb_names_must_be_one_plain_component() {
        assert!(check_dtb_name("rk3588s-nanopi-m6.dtb").is_ok());
        for bad in ["", ".", "..", "a/b.dtb", "a\\b", "x\0y", &"n".repeat(256)] {
            assert!(check_dtb_name(bad).is_err(), "{bad:?}");
        }
    }
}
