//! A local block device or file, written and read back through [`Sectors`].

use super::blockdev::{self, Disk, Host, Refusal};
use crate::ops::flash::{LoaderKind, Target};
use crate::ops::sector_io::{IoCause, IoFailure};
use crate::ops::sectors::Sectors;
use crate::protocol::{SECTOR_SIZE, StorageKind};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Bytes per write or read: 8192 sectors, as [`LoaderKind::LocalDisk`] says.
const CHUNK: usize = 4 << 20;
/// Buffer alignment for `O_DIRECT`: a page, which covers any logical sector size.
const ALIGN: usize = 4096;

/// What `--to` named.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetKind {
    /// A whole-disk block device, opened with `O_DIRECT` and `O_EXCL`.
    BlockDevice { disk: Box<Disk> },
    /// A regular file (created when missing).
    File { existed: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(
        "{path} is {what}, neither a block device nor a regular file; name a disk such as /dev/sdb (`rockusb disks` lists them) or a file"
    )]
    NotADisk { path: String, what: &'static str },
    #[error("{path} is the image itself; name another file or a disk")]
    SameAsImage { path: String },
    #[error(
        "{path} is busy: something has it open exclusively or mounted (a file manager that just mounted it?). Unmount it, then run the same command again; nothing was written"
    )]
    Busy { path: String },
    #[error(
        "permission denied opening {path}: run as root (sudo), or add yourself to the group that owns it (often `disk`)"
    )]
    Access { path: String },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A local disk or file to flash, open for writing.
pub struct LocalDisk {
    file: File,
    path: String,
    kind: TargetKind,
    /// Bytes, when known (a block device, an existing file).
    capacity: Option<u64>,
    /// Opened with `O_DIRECT`: transfers go through `bounce`.
    direct: bool,
    bounce: Vec<u8>,
    commands: u64,
    retried: u64,
}

impl std::fmt::Debug for LocalDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDisk")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("capacity", &self.capacity)
            .field("direct", &self.direct)
            .finish()
    }
}

impl LocalDisk {
    /// Checks `path` and opens it for writing: a whole-disk block device that passes the
    /// checks of [`blockdev`] (`force` takes a disk that is not removable), or a regular
    /// file (created when missing). `image` is the image file, which `path` must not be.
    /// Nothing is written.
    pub fn open(
        path: &Path,
        force: bool,
        image: Option<&Path>,
        host: &Host,
    ) -> Result<LocalDisk, DiskError> {
        let shown = path.display().to_string();
        let io = |what| {
            let path = shown.clone();
            move |source| DiskError::Io { what, path, source }
        };
        match std::fs::metadata(path) {
            Ok(m) if m.file_type().is_block_device() => {
                let disk = blockdev::disk_of(host, blockdev::dev_num(m.rdev()))
                    .map_err(io("look up"))??;
                if let Some(refusal) = disk.refusal(force) {
                    return Err(refusal.into());
                }
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(
                        (rustix::fs::OFlags::DIRECT | rustix::fs::OFlags::EXCL).bits() as i32,
                    )
                    .open(path)
                    .map_err(|e| {
                        if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) {
                            DiskError::Busy {
                                path: shown.clone(),
                            }
                        } else if e.kind() == std::io::ErrorKind::PermissionDenied {
                            DiskError::Access {
                                path: shown.clone(),
                            }
                        } else {
                            io("open")(e)
                        }
                    })?;
                let sector = rustix::fs::ioctl_blksszget(&file)
                    .map_err(|e| io("ask the sector size of")(e.into()))?;
                if sector as usize != SECTOR_SIZE {
                    return Err(Refusal::SectorSize {
                        path: shown,
                        size: sector,
                    }
                    .into());
                }
                let capacity = (&file).seek(SeekFrom::End(0)).map_err(io("measure"))?;
                Ok(LocalDisk::new(
                    file,
                    shown,
                    TargetKind::BlockDevice {
                        disk: Box::new(disk),
                    },
                    Some(capacity),
                    true,
                ))
            }
            Ok(m) if m.is_file() => {
                if let Some(image) = image.and_then(|i| std::fs::metadata(i).ok()) {
                    if (image.dev(), image.ino()) == (m.dev(), m.ino()) {
                        return Err(DiskError::SameAsImage { path: shown });
                    }
                }
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(io("open"))?;
                let len = m.len() / SECTOR_SIZE as u64 * SECTOR_SIZE as u64;
                let capacity = (len > 0).then_some(len);
                Ok(LocalDisk::new(
                    file,
                    shown,
                    TargetKind::File { existed: true },
                    capacity,
                    false,
                ))
            }
            Ok(m) => Err(DiskError::NotADisk {
                path: shown,
                what: if m.is_dir() {
                    "a folder"
                } else if m.file_type().is_char_device() {
                    "a character device"
                } else {
                    "a special file"
                },
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .map_err(io("create"))?;
                Ok(LocalDisk::new(
                    file,
                    shown,
                    TargetKind::File { existed: false },
                    None,
                    false,
                ))
            }
            Err(e) => Err(io("open")(e)),
        }
    }

    fn new(
        file: File,
        path: String,
        kind: TargetKind,
        capacity: Option<u64>,
        direct: bool,
    ) -> LocalDisk {
        LocalDisk {
            file,
            path,
            kind,
            capacity,
            direct,
            bounce: if direct {
                vec![0; CHUNK + ALIGN]
            } else {
                Vec::new()
            },
            commands: 0,
            retried: 0,
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn kind(&self) -> &TargetKind {
        &self.kind
    }

    /// Bytes, when known (a block device, a file that already had a length).
    pub fn capacity(&self) -> Option<u64> {
        self.capacity
    }

    /// True when transfers bypass the page cache (`O_DIRECT`).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// What the flash is told about the storage: a partitioned disk like a board's SD
    /// card (never SPI flash, so the old backup GPT at its end is wiped), its capacity.
    pub fn target(&self) -> Target {
        Target {
            storage: StorageKind::Sd,
            loader: LoaderKind::LocalDisk,
            flash_id: match &self.kind {
                TargetKind::BlockDevice { disk } => disk.describe(),
                TargetKind::File { .. } => "file".into(),
            },
            capacity: self.capacity,
            transfer_size: None,
        }
    }

    /// After a flash: a file gets at least the image's length (zeros skipped at its end
    /// are holes), then everything is synced to the medium (for a device, its write cache
    /// is flushed).
    pub fn finish(&mut self, image_len: u64) -> Result<(), DiskError> {
        let io = |what| {
            let path = self.path.clone();
            move |source| DiskError::Io { what, path, source }
        };
        if let TargetKind::File { .. } = self.kind {
            let len = self.file.metadata().map_err(io("measure"))?.len();
            if len < image_len {
                self.file.set_len(image_len).map_err(io("extend"))?;
            }
        }
        self.file.sync_all().map_err(io("sync"))
    }

    fn failure(&self, offset: u64, len: usize, source: std::io::Error) -> IoFailure {
        IoFailure {
            lba: offset / SECTOR_SIZE as u64,
            sectors: (len / SECTOR_SIZE) as u32,
            error: IoCause::Local {
                path: self.path.clone(),
                source,
            },
        }
    }

    /// The page-aligned transfer buffer.
    fn aligned(bounce: &mut [u8]) -> &mut [u8] {
        let at = bounce.as_ptr().align_offset(ALIGN);
        &mut bounce[at..at + CHUNK]
    }
}

impl Sectors for LocalDisk {
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), IoFailure> {
        debug_assert!(offset % SECTOR_SIZE as u64 == 0 && data.len() % SECTOR_SIZE == 0);
        for (i, piece) in data.chunks(CHUNK).enumerate() {
            let at = offset + (i * CHUNK) as u64;
            self.commands += 1;
            let result = if self.direct {
                let buf = &mut Self::aligned(&mut self.bounce)[..piece.len()];
                buf.copy_from_slice(piece);
                self.file.write_all_at(buf, at)
            } else {
                self.file.write_all_at(piece, at)
            };
            result.map_err(|e| self.failure(at, piece.len(), e))?;
        }
        Ok(())
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoFailure> {
        debug_assert!(offset % SECTOR_SIZE as u64 == 0 && buf.len() % SECTOR_SIZE == 0);
        for (i, piece) in buf.chunks_mut(CHUNK).enumerate() {
            let at = offset + (i * CHUNK) as u64;
            self.commands += 1;
            let result = if self.direct {
                let aligned = &mut Self::aligned(&mut self.bounce)[..piece.len()];
                let r = self.file.read_exact_at(aligned, at);
                piece.copy_from_slice(aligned);
                r
            } else {
                self.file.read_exact_at(piece, at)
            };
            result.map_err(|e| self.failure(at, piece.len(), e))?;
        }
        Ok(())
    }

    fn command_bytes(&self) -> usize {
        CHUNK
    }

    fn commands(&self) -> u64 {
        self.commands
    }

    fn count_retry(&mut self) {
        self.retried += 1;
    }

    fn retried(&self) -> u64 {
        self.retried
    }
}
