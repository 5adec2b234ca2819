//! Why an image cannot be adapted, each worded to say what was found and what to do.

use std::io;

/// A refusal to adapt. Nothing has been written when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    #[error("cannot read {what} of the source image: {source}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "the image has no GPT (no \"EFI PART\" signature at LBA 1), so it is not a Talos disk image: use a metal-arm64.raw.xz from Omni or the Image Factory"
    )]
    NoGpt,
    #[error(
        "the image's GPT is damaged: {problems}. Download the image again; if it came from elsewhere, repair its table (`sgdisk -v`, `gdisk`) first"
    )]
    DamagedGpt { problems: String },
    #[error(
        "the image uses {sector_size}-byte sectors, but the {board} layout is defined in 512-byte sectors: use the ordinary metal-arm64 image"
    )]
    SectorSize {
        sector_size: u64,
        board: &'static str,
    },
    #[error(
        "the image is {len} bytes, not a whole number of 512-byte sectors: it looks truncated; download it again"
    )]
    LengthNotSectorMultiple { len: u64 },
    #[error(
        "the image is already in the {board} layout (GPT entries at LBA {entries_lba}, first partition at LBA {first_lba}): already adapted, nothing to do; flash it as it is"
    )]
    AlreadyAdapted {
        board: &'static str,
        entries_lba: u64,
        first_lba: u64,
    },
    #[error(
        "the image has no EFI system partition (type C12A7328-F81F-11D2-BA4B-00A0C93EC93B), so U-Boot would find nothing to boot: use a Talos metal-arm64 image (systemd-boot + UKI)"
    )]
    NoEsp,
    #[error(
        "the EFI system partition {number} ({name:?}) holds no FAT file system, so neither U-Boot nor this tool can use it: the image is damaged or not a Talos image; download it again"
    )]
    EspNotFat { number: u32, name: String },
    #[error("partition {number} ({name:?}) cannot be moved: {reason}")]
    PartitionCannotMove {
        number: u32,
        name: String,
        reason: String,
    },
    #[error("the partitions cannot be moved into the {board} layout: {reason}")]
    LayoutOverflow { board: &'static str, reason: String },
    #[error("the U-Boot file is empty: pass the board's u-boot-rockchip.bin")]
    UbootEmpty,
    #[error(
        "U-Boot is {len} bytes, but only {max} bytes fit between byte {start} and {limit} at byte {end}: pass the {board}'s u-boot-rockchip.bin (idbloader at 0, u-boot.itb at 0x7F8000)"
    )]
    UbootTooLarge {
        len: u64,
        max: u64,
        start: u64,
        end: u64,
        limit: &'static str,
        board: &'static str,
    },
    #[error(
        "{name:?} cannot name the DTB in the EFI system partition: give a plain file name such as rk3588s-nanopi-m6.dtb (no '/', at most 255 characters)"
    )]
    DtbName { name: String },
    #[error(
        "could not put the DTB into the EFI system partition at {path}: {source}; the partition may be full or its FAT damaged (check the image with `fsck.vfat -n`)"
    )]
    DtbInsert {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl AdaptError {
    /// True when the image needs no change: the caller writes nothing and exits cleanly.
    pub fn is_already_adapted(&self) -> bool {
        matches!(self, AdaptError::AlreadyAdapted { .. })
    }
}
