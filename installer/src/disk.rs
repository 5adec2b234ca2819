//! Writing the bootloader into the boot disk: a block device on the node, or the raw
//! image file the Talos ≥ 1.13 imager builds (no loop device any more).
//!
//! The file is opened read-write without create or truncate, written with positioned
//! writes only, and flushed with fsync. No O_DIRECT and no block ioctls, so the same code
//! serves files and devices.

use crate::gpt_guard::{self, GptGuardError};
use rockusb_images::BoardLayout;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DiskError {
    #[error("cannot open the install disk {path} for writing: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} on the install disk {path} failed: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the install disk {path} is {size} bytes, too small to hold the bootloader up to byte {needed}; installDisk must be the whole disk (e.g. /dev/mmcblk0), not a partition"
    )]
    TooSmall {
        path: PathBuf,
        size: u64,
        needed: u64,
    },
    #[error("refusing to write the bootloader to {path}: {source}")]
    Partitioning {
        path: PathBuf,
        #[source]
        source: GptGuardError,
    },
    #[error(
        "the install disk {path} is a partition ({sysfs} exists); installDisk must be the whole disk, e.g. /dev/mmcblk0 rather than /dev/mmcblk0p1"
    )]
    IsPartition { path: PathBuf, sysfs: PathBuf },
    #[error(
        "the bootloader read back from {path} differs from what was written; the disk may be failing"
    )]
    VerifyFailed { path: PathBuf },
}

/// What [`write_bootloader`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// The same bytes were already there; nothing was written, saving eMMC wear on
    /// every upgrade.
    AlreadyPresent,
}

/// Linux's device-number split (glibc `gnu_dev_major`/`gnu_dev_minor`).
pub fn major_minor(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

/// The sysfs attribute that exists only for partitions of a block device.
fn partition_marker(file: &File) -> Option<PathBuf> {
    let meta = file.metadata().ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    let (major, minor) = major_minor(meta.rdev());
    let marker = PathBuf::from(format!("/sys/dev/block/{major}:{minor}/partition"));
    marker.exists().then_some(marker)
}

/// Writes `image` at the layout's bootloader offset of `disk`, fsyncs and verifies it.
/// The caller has validated `image` (see [`crate::bootloader::validate`]).
pub fn write_bootloader(
    disk: &Path,
    image: &[u8],
    layout: &BoardLayout,
) -> Result<WriteOutcome, DiskError> {
    let io = |what: &'static str| {
        move |source| DiskError::Io {
            what,
            path: disk.to_path_buf(),
            source,
        }
    };
    let mut file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .map_err(|source| DiskError::Open {
            path: disk.to_path_buf(),
            source,
        })?;
    // A partition of the boot disk (say the ESP) would be large enough and carry no GPT
    // of its own, so neither check below would catch it: ask sysfs.
    if let Some(sysfs) = partition_marker(&file) {
        return Err(DiskError::IsPartition {
            path: disk.to_path_buf(),
            sysfs,
        });
    }
    // Seeking to the end gives the size of regular files and block devices alike.
    let size = file
        .seek(SeekFrom::End(0))
        .map_err(io("finding the size"))?;
    let offset = layout.bootloader_offset();
    let needed = offset + image.len() as u64;
    if size < needed {
        return Err(DiskError::TooSmall {
            path: disk.to_path_buf(),
            size,
            needed,
        });
    }
    gpt_guard::check_room_for_bootloader(&file, size, offset, image.len() as u64).map_err(
        |source| DiskError::Partitioning {
            path: disk.to_path_buf(),
            source,
        },
    )?;

    let mut current = vec![0u8; image.len()];
    file.read_exact_at(&mut current, offset)
        .map_err(io("reading the bootloader area"))?;
    if current == image {
        return Ok(WriteOutcome::AlreadyPresent);
    }
    file.write_all_at(image, offset)
        .map_err(io("writing the bootloader"))?;
    // The imager closes and reuses the file right away, and a node may reboot straight
    // after an upgrade: the bytes must be on the medium before we report success.
    file.sync_all().map_err(io("flushing (fsync)"))?;
    file.read_exact_at(&mut current, offset)
        .map_err(io("reading the bootloader back"))?;
    if current != image {
        return Err(DiskError::VerifyFailed {
            path: disk.to_path_buf(),
        });
    }
    Ok(WriteOutcome::Written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_split_like_glibc() {
        // /dev/mmcblk0p1 is 179:1; large minors (e.g. 259:65536) use the high bits.
        assert_eq!(major_minor((179 << 8) | 1), (179, 1));
        let rdev = (259u64 << 8) | ((65_536u64 & !0xff) << 12);
        assert_eq!(major_minor(rdev), (259, 65_536));
    }
}
