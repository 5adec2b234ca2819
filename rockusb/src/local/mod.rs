//! Local disks as flash targets (`rockusb flash IMAGE --to DEVICE`): an SD card in a
//! reader, a USB disk, a loop device or a plain file gets what a board's eMMC gets, through
//! the same pipeline ([`crate::ops::flash::flash_to`]).
//!
//! Before anything is written the device is checked ([`blockdev`]): a partition, a disk
//! with anything mounted (or used as swap, or under LVM/RAID/encryption), the disk holding
//! the running system, a read-only or empty one, and one with other than 512-byte sectors
//! are refused; a disk that is not removable (not on USB, not an SD card, not marked
//! removable) is refused unless `--force`. The device is then opened with `O_EXCL`, which
//! the kernel refuses while anything has it mounted or claimed, closing the gap between the
//! check and the open.
//!
//! **Reading back the medium.** A block device is opened with `O_DIRECT`: every write
//! goes to the device before it returns, and every read-back comes from the device, never
//! from the page cache the writes would otherwise have gone through (which would make a
//! read-back compare the host's memory with itself). `O_DIRECT` wants buffers, offsets and
//! lengths aligned to the logical sector, so transfers go through a 4 KiB-aligned buffer.
//! The device's own cache is flushed with `fsync` at the end. A plain file is written
//! through the page cache (which is the file's contents, coherent with any other reader)
//! and synced at the end.

pub mod blockdev;
mod disk;

pub use blockdev::{Disk, Host, Refusal};
pub use disk::{DiskError, LocalDisk, TargetKind};
