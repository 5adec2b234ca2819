//! The check run before the first byte is written.
//!
//! Everything it needs lies in the image's first sectors (the GPT, the bootloader at
//! sector 64), so a streaming flasher runs it on the buffered start of the image, before
//! the writer starts; the backup GPT at the end can be checked then too when the source
//! reaches that far (a raw file), or later from the kept tail with [`GptReport::read`].
//!
//! Errors stop the flash; warnings are shown and the flash goes on. Every finding is a
//! sentence that says what was found and what to do about it.

use crate::bootloader::{self, BootloaderKind};
use crate::gpt::{GptProblem, GptReadError, GptReadOptions, GptReport};
use crate::layout::BoardLayout;
use crate::read_at::ReadAt;
use crate::regions::{MustWrite, must_write};
use crate::units::human_bytes;
use std::fmt;
use std::io;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    ImageTooLarge {
        image_len: u64,
        storage_len: u64,
        /// True when the length comes from the GPT (the real length is not known yet).
        from_gpt: bool,
    },
    ImageLengthUnknown,
    NoGpt,
    Gpt(GptProblem),
    BootloaderMissing {
        layout: &'static str,
        lba: u64,
        found: BootloaderKind,
    },
    BootloaderBeyondImage {
        layout: &'static str,
        lba: u64,
    },
    GptEntriesElsewhere {
        layout: &'static str,
        found_lba: u64,
        expected_lba: u64,
    },
    PartitionNamesDiffer {
        layout: &'static str,
        found: Vec<String>,
        expected: Vec<String>,
    },
}

impl Finding {
    pub fn severity(&self) -> Severity {
        match self {
            Finding::ImageTooLarge { .. } => Severity::Error,
            Finding::Gpt(p) if p.is_corruption() => Severity::Error,
            _ => Severity::Warning,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::ImageTooLarge {
                image_len,
                storage_len,
                from_gpt,
            } => write!(
                f,
                "The image is {} ({image_len} bytes{}) but the target storage holds only {} ({storage_len} bytes): flash it to a larger device, or check that you picked the right image and device.",
                human_bytes(*image_len),
                if *from_gpt { ", according to its GPT" } else { "" },
                human_bytes(*storage_len),
            ),
            Finding::ImageLengthUnknown => f.write_str(
                "The image's length is not known in advance and it has no valid GPT to tell it: whether it fits the storage will only show while writing.",
            ),
            Finding::NoGpt => f.write_str(
                "The image has no GPT (no \"EFI PART\" signature at LBA 1): it is not a Talos disk image, so only its first bytes are written in full and no META partition can be protected; continue only if this is the image you meant.",
            ),
            Finding::Gpt(problem) if problem.is_corruption() => write!(
                f,
                "The image's GPT is damaged: {problem}. Re-download or rebuild the image; flashing it could leave a board that does not boot."
            ),
            Finding::Gpt(problem) => write!(
                f,
                "The image's partition table is unusual: {problem}. Check that this is the image you meant."
            ),
            Finding::BootloaderMissing { layout, lba, found } => write!(
                f,
                "No bootloader at sector {lba} where the {layout} layout puts it ({}, not an RKNS or RC4 ID block header): the board will boot from this storage only if another device (SPI flash, SD) holds a bootloader; build the image with the {layout} overlay to include u-boot-rockchip.bin.",
                match found {
                    BootloaderKind::Empty => "the sector is all zeros",
                    _ => "the sector holds unrecognised data",
                }
            ),
            Finding::BootloaderBeyondImage { layout, lba } => write!(
                f,
                "The image ends before sector {lba}, where the {layout} layout puts the bootloader: it holds no bootloader; build the image with the {layout} overlay."
            ),
            Finding::GptEntriesElsewhere {
                layout,
                found_lba,
                expected_lba,
            } => write!(
                f,
                "The image's GPT entry array starts at LBA {found_lba}, not at LBA {expected_lba} where the {layout} layout keeps it clear of the bootloader (Talos partitionOptions.offset {}): the bootloader and the partition table may overwrite each other; build the image with the {layout} overlay.",
                expected_lba.saturating_sub(2)
            ),
            Finding::PartitionNamesDiffer {
                layout,
                found,
                expected,
            } => write!(
                f,
                "The image's partitions are {found:?}, not the Talos set {expected:?} of the {layout} layout: this is not a Talos image built for this board{}; check that it is the image you meant.",
                if !found.iter().any(|name| name == "META") {
                    ", and a missing META cannot be protected from stale settings"
                } else {
                    ""
                }
            ),
        }
    }
}

/// What the flasher knows besides the image bytes.
#[derive(Debug, Clone, Copy)]
pub struct PreflightInput<'a> {
    pub layout: &'a BoardLayout,
    /// The decompressed image's length, when known (raw file size, xz index).
    pub image_len: Option<u64>,
    /// The target storage's capacity in bytes, when known.
    pub storage_len: Option<u64>,
    /// True when the source reaches the image's end, so the backup GPT can be read now.
    pub check_backup_gpt: bool,
}

#[derive(Debug, Clone)]
pub struct Preflight {
    pub findings: Vec<Finding>,
    pub gpt: GptReport,
    pub bootloader: Option<BootloaderKind>,
    /// The image length the checks used: the given one, else the one its GPT implies.
    pub image_len: Option<u64>,
    /// Must-write regions and the trailing wipe, when the image length is known.
    pub must_write: Option<MustWrite>,
}

impl Preflight {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity() == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity() == Severity::Warning)
    }

    /// True when nothing forbids writing.
    pub fn may_flash(&self) -> bool {
        self.errors().next().is_none()
    }
}

/// Runs every check on the image readable through `src`.
pub fn preflight(mut src: impl ReadAt, input: PreflightInput) -> Result<Preflight, GptReadError> {
    let layout = input.layout;
    let gpt = GptReport::read(
        &mut src,
        GptReadOptions {
            sector_size: None,
            len: input.image_len,
            len_what: "image",
            check_backup: input.check_backup_gpt,
        },
    )?;
    let mut findings = Vec::new();

    // Size: the known length, else where the GPT says the image ends.
    let from_gpt = input.image_len.is_none();
    let image_len = input.image_len.or_else(|| {
        gpt.primary.as_ref().and_then(|p| {
            p.header
                .alternate_lba
                .checked_add(1)?
                .checked_mul(gpt.sector_size)
        })
    });
    match (image_len, input.storage_len) {
        (Some(image_len), Some(storage_len)) if image_len > storage_len => {
            findings.push(Finding::ImageTooLarge {
                image_len,
                storage_len,
                from_gpt,
            })
        }
        (None, _) => findings.push(Finding::ImageLengthUnknown),
        _ => {}
    }

    if gpt.is_absent() {
        findings.push(Finding::NoGpt);
    } else {
        findings.extend(
            gpt.problems
                .iter()
                // An image without an MBR at all is covered by the GPT findings.
                .filter(|p| **p != GptProblem::NoProtectiveMbr || gpt.table().is_some())
                .cloned()
                .map(Finding::Gpt),
        );
    }

    if let Some(primary) = &gpt.primary {
        if primary.header.entries_lba != layout.gpt_entries_lba() {
            findings.push(Finding::GptEntriesElsewhere {
                layout: layout.name,
                found_lba: primary.header.entries_lba,
                expected_lba: layout.gpt_entries_lba(),
            });
        }
    }
    // Only a layout that names its partitions (a Talos overlay's) can find them missing.
    if let Some(table) = gpt.table().filter(|_| !layout.talos_partitions.is_empty()) {
        let found: Vec<String> = table.partitions.iter().map(|p| p.name.clone()).collect();
        let expected: Vec<String> = layout
            .talos_partitions
            .iter()
            .map(|s| s.to_string())
            .collect();
        // A Talos image for UEFI (systemd-boot, 1.10 and later, and generic images adapted
        // to the board) has no BIOS and BOOT: EFI first and a META are what it must have.
        let uefi_talos =
            found.first().is_some_and(|n| n == "EFI") && found.iter().any(|n| n == "META");
        if found != expected && !uefi_talos {
            findings.push(Finding::PartitionNamesDiffer {
                layout: layout.name,
                found,
                expected,
            });
        }
    }

    let mut sector = [0u8; 512];
    let bootloader = match src.read_exact_at(layout.bootloader_offset(), &mut sector) {
        Ok(()) => Some(bootloader::detect(&sector)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
        Err(source) => {
            return Err(GptReadError::Io {
                what: format!("the bootloader sector {}", layout.bootloader_lba),
                source,
            });
        }
    };
    match bootloader {
        Some(kind) if kind.is_present() => {}
        Some(found) => findings.push(Finding::BootloaderMissing {
            layout: layout.name,
            lba: layout.bootloader_lba,
            found,
        }),
        None => findings.push(Finding::BootloaderBeyondImage {
            layout: layout.name,
            lba: layout.bootloader_lba,
        }),
    }

    let must_write = image_len.map(|len| {
        let table = (!gpt.is_absent()).then_some(&gpt);
        must_write(layout, table, len, input.storage_len)
    });
    Ok(Preflight {
        findings,
        gpt,
        bootloader,
        image_len,
        must_write,
    })
}
