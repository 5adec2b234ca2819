//! File systems' own free-space accounting: which bytes of a partition a file system
//! declares unused.
//!
//! A sparse flash may skip an all-zero run of the image only where the file system on
//! the board will never read it: blocks its own allocation structures call free. Zeros
//! anywhere else carry meaning (an XFS log, an ext4 inode table, a FAT's free entries, a
//! file's allocated zero blocks), and skipping them leaves the board's *old* bytes there
//! (see [`crate::sparse`]).
//!
//! Each reader recognises its file system from the superblock, reads the allocation
//! structures through a [`ReadAt`] (every read bounds-checked against the partition, every
//! count checked against the superblock's geometry) and returns the free extents. Hostile
//! or damaged bytes give an [`FsError`], never a panic: the caller then writes that
//! partition in full.
//!
//! - [`fat`]: FAT12/16/32, clusters whose entry is 0 in every FAT copy.
//! - [`xfs`]: each allocation group's free-space B+tree by block number.
//! - [`ext`]: ext2/3/4 block bitmaps, with `BLOCK_UNINIT` groups worked out as the kernel
//!   does.

pub mod ext;
pub mod fat;
pub mod xfs;

use crate::layout::ByteRange;
use crate::read_at::ReadAt;
use std::fmt;
use std::io;

/// A file system the readers recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsKind {
    Fat12,
    Fat16,
    Fat32,
    Xfs,
    Ext2,
    Ext3,
    Ext4,
}

impl FsKind {
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Fat12 => "FAT12",
            FsKind::Fat16 => "FAT16",
            FsKind::Fat32 => "FAT32",
            FsKind::Xfs => "XFS",
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
        }
    }
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a file system says about its space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeSpace {
    pub kind: FsKind,
    /// Bytes the file system spans from the partition's start (its declared size).
    pub fs_len: u64,
    /// Free extents as offsets from the partition's start: sorted, disjoint, inside
    /// `fs_len`. Everything else (metadata, logs, journals, allocated blocks) is in use.
    pub free: Vec<ByteRange>,
}

impl FreeSpace {
    pub fn free_bytes(&self) -> u64 {
        self.free.iter().map(|r| r.len).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The superblock is recognised but something in the structures is inconsistent.
    #[error("{kind} file system is damaged or not understood: {detail}")]
    Damaged { kind: FsKind, detail: String },
    /// A structure lies past the end of the partition or of the image.
    #[error("{kind} file system reaches past {what}: {detail}")]
    Truncated {
        kind: FsKind,
        what: &'static str,
        detail: String,
    },
    #[error("cannot read the {kind} file system: {error}")]
    Io { kind: FsKind, error: io::Error },
    #[error("cannot read the partition's first sectors: {0}")]
    Head(io::Error),
}

/// Largest number of free extents a reader collects; a file system fragmented beyond
/// this is written in full rather than tracked (16 bytes each: 64 MiB at most).
pub const MAX_FREE_EXTENTS: usize = 4 << 20;

/// Recognises the file system at `partition` of `src` and reads its free extents.
///
/// `Ok(None)`: no file system these readers know (write the partition in full).
pub fn free_space(
    src: &mut dyn ReadAt,
    partition: ByteRange,
) -> Result<Option<FreeSpace>, FsError> {
    let mut part = Part::new(src, partition);
    let mut head = [0u8; 4096];
    let avail = (partition.len as usize).min(head.len());
    match part.src.read_exact_at(partition.start, &mut head[..avail]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(FsError::Head(e)),
    }
    let head = &head[..avail];
    if let Some(kind) = xfs::probe(head) {
        return xfs::free_space(&mut part, kind).map(Some);
    }
    if let Some(kind) = ext::probe(head) {
        return ext::free_space(&mut part, kind).map(Some);
    }
    if let Some(kind) = fat::probe(head) {
        return fat::free_space(&mut part, kind).map(Some);
    }
    Ok(None)
}

/// A partition of an image: bounds-checked reads relative to its start.
pub struct Part<'a> {
    src: &'a mut dyn ReadAt,
    range: ByteRange,
}

impl<'a> Part<'a> {
    pub fn new(src: &'a mut dyn ReadAt, range: ByteRange) -> Self {
        Self { src, range }
    }

    /// The partition's length in bytes.
    pub fn len(&self) -> u64 {
        self.range.len
    }

    pub fn is_empty(&self) -> bool {
        self.range.len == 0
    }

    /// Fills `buf` from `offset` bytes into the partition. Fails with
    /// [`FsError::Truncated`] when that lies outside the partition or the image.
    pub fn read(&mut self, kind: FsKind, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.range.len) {
            return Err(FsError::Truncated {
                kind,
                what: "the end of its partition",
                detail: format!(
                    "{} bytes at offset {offset} of a {}-byte partition",
                    buf.len(),
                    self.range.len
                ),
            });
        }
        match self.src.read_exact_at(self.range.start + offset, buf) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(FsError::Truncated {
                kind,
                what: "the end of the image",
                detail: format!("{} bytes at partition offset {offset}", buf.len()),
            }),
            Err(error) => Err(FsError::Io { kind, error }),
        }
    }

    /// Reads `len` bytes at `offset` into a new buffer (after the same bounds check, so a
    /// hostile length never allocates more than the partition holds).
    pub fn read_vec(&mut self, kind: FsKind, offset: u64, len: u64) -> Result<Vec<u8>, FsError> {
        if offset
            .checked_add(len)
            .is_none_or(|end| end > self.range.len)
        {
            return Err(FsError::Truncated {
                kind,
                what: "the end of its partition",
                detail: format!(
                    "{len} bytes at offset {offset} of a {}-byte partition",
                    self.range.len
                ),
            });
        }
        let mut buf = vec![0u8; len as usize];
        self.read(kind, offset, &mut buf)?;
        Ok(buf)
    }
}

/// Collects free extents in order, joining touching ones, with the [`MAX_FREE_EXTENTS`]
/// cap. Readers feed it runs in increasing order.
#[derive(Debug)]
pub struct FreeList {
    kind: FsKind,
    extents: Vec<ByteRange>,
}

impl FreeList {
    pub fn new(kind: FsKind) -> Self {
        Self {
            kind,
            extents: Vec::new(),
        }
    }

    /// Adds `[start, start + len)`; runs must come in increasing, non-overlapping order.
    pub fn push(&mut self, start: u64, len: u64) -> Result<(), FsError> {
        if len == 0 {
            return Ok(());
        }
        let end = start
            .checked_add(len)
            .ok_or_else(|| damaged(self.kind, "a free extent overflows"))?;
        if let Some(last) = self.extents.last_mut() {
            if start < last.end() {
                return Err(damaged(
                    self.kind,
                    format!(
                        "free extents overlap or are out of order (bytes {start}..{end} after ..{})",
                        last.end()
                    ),
                ));
            }
            if start == last.end() {
                last.len += len;
                return Ok(());
            }
        }
        if self.extents.len() >= MAX_FREE_EXTENTS {
            return Err(damaged(
                self.kind,
                format!("more than {MAX_FREE_EXTENTS} free extents"),
            ));
        }
        self.extents.push(ByteRange::new(start, len));
        Ok(())
    }

    pub fn finish(self, fs_len: u64) -> Result<FreeSpace, FsError> {
        if let Some(last) = self.extents.last() {
            if last.end() > fs_len {
                return Err(damaged(
                    self.kind,
                    format!(
                        "a free extent ends at byte {} past the file system's {fs_len}",
                        last.end()
                    ),
                ));
            }
        }
        Ok(FreeSpace {
            kind: self.kind,
            fs_len,
            free: self.extents,
        })
    }
}

/// The `N` bytes at `at` of an on-disk structure, or [`FsError::Damaged`] when the
/// structure is too short to hold them.
pub(crate) fn field<const N: usize>(kind: FsKind, b: &[u8], at: usize) -> Result<[u8; N], FsError> {
    b.get(at..)
        .and_then(|rest| rest.get(..N))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| {
            damaged(
                kind,
                format!("a {N}-byte field at {at} lies past its structure"),
            )
        })
}

pub(crate) fn damaged(kind: FsKind, detail: impl Into<String>) -> FsError {
    FsError::Damaged {
        kind,
        detail: detail.into(),
    }
}
