//! Reading a partition table, from an image file or from a board's storage.

use super::pipeline::CHUNK_LEN;
use super::target::Target;
use crate::ops::sector_io::SectorIo;
use crate::protocol::SECTOR_SIZE;
use crate::protocol::read_wall;
use crate::source::{ImageSource, SourceError};
use crate::transport::Transport;
use rockusb_images::ByteRange;
use rockusb_images::adapt::{PartitionRow, TableReport};
use rockusb_images::gpt::{GptReadError, GptReadOptions, GptReport};
use rockusb_images::read_at::{ReadAtFn, Windows};
use std::io::{self, Read};

/// How much of an image's start is kept for its primary GPT: the header at LBA 1 and an
/// entry array wherever it may be (LBA 2, or LBA 20482 on Talos RK3588 images).
const KEEP_HEAD: usize = 16 << 20;
/// How much of its end is kept for the backup GPT (33 sectors, with room to spare).
const KEEP_TAIL: usize = 2 << 20;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{name}: the data is corrupt or truncated at image byte {offset}: {error}")]
    Decode {
        name: String,
        offset: u64,
        error: io::Error,
    },
    #[error(transparent)]
    Gpt(#[from] GptReadError),
}

/// The partition table of an image file (decoding it whole when it is compressed, to
/// reach the backup table at its end).
pub fn image_gpt(source: ImageSource) -> Result<GptReport, InspectError> {
    if let Some(image) = &source.random_access {
        let options = GptReadOptions {
            len: source.image_len,
            ..GptReadOptions::default()
        };
        return Ok(GptReport::read(image, options)?);
    }
    let name = source.name.clone();
    let mut reader = source.into_decoded()?;
    let mut head = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    let mut tail_offset = 0u64;
    let mut buf = vec![0u8; CHUNK_LEN];
    let mut offset = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(InspectError::Decode {
                    name,
                    offset,
                    error,
                });
            }
        };
        let data = &buf[..n];
        if head.len() < KEEP_HEAD {
            let take = n.min(KEEP_HEAD - head.len());
            head.extend_from_slice(&data[..take]);
        }
        tail.extend_from_slice(data);
        if tail.len() > 2 * KEEP_TAIL {
            let drop = tail.len() - KEEP_TAIL;
            tail.drain(..drop);
            tail_offset += drop as u64;
        }
        offset += n as u64;
    }
    let pieces: Windows = [(0, head.as_slice()), (tail_offset, tail.as_slice())]
        .into_iter()
        .collect();
    let options = GptReadOptions {
        len: Some(offset),
        ..GptReadOptions::default()
    };
    Ok(GptReport::read(pieces, options)?)
}

/// The partition table of the board's storage, and whether the loader's 32 MiB read wall
/// hid the backup table (reads past it return 0xCC).
pub fn storage_gpt<T: Transport>(
    io: &mut SectorIo<'_, T>,
    target: &Target,
) -> Result<(GptReport, bool), GptReadError> {
    let mut wall = false;
    let report = {
        let reader = ReadAtFn(|offset: u64, buf: &mut [u8]| -> io::Result<()> {
            let ss = SECTOR_SIZE as u64;
            let first = offset / ss;
            let end = (offset + buf.len() as u64).div_ceil(ss);
            if target.capacity.is_some_and(|c| end * ss > c) {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "beyond the end of the storage",
                ));
            }
            let mut sectors = vec![0u8; ((end - first) * ss) as usize];
            io.read(first * ss, &mut sectors)
                .map_err(io::Error::other)?;
            if read_wall::is_wall_answer(end, &sectors) {
                wall = true;
            }
            let from = (offset - first * ss) as usize;
            buf.copy_from_slice(&sectors[from..from + buf.len()]);
            Ok(())
        });
        GptReport::read(
            reader,
            GptReadOptions {
                len: target.capacity,
                len_what: "storage",
                ..GptReadOptions::default()
            },
        )?
    };
    Ok((report, wall))
}

/// Where the BootROM of every SoC in the table looks for an ID block on eMMC and SD:
/// sector 64. A disk map draws a bootloader from there to whatever comes next on the disk
/// (the entry array moved past it, or the first partition) when that sector holds one.
pub const BOOTLOADER_OFFSET: u64 = 64 * 512;

/// A partition table as the disk map draws it: where its copies, the bootloader (when
/// `bootloader_sector` holds an ID block) and the partitions lie on a disk (or image) of
/// `len` bytes. `None` without a readable table.
pub fn table_layout(
    report: &GptReport,
    len: u64,
    bootloader_sector: Option<&[u8]>,
) -> Option<TableReport> {
    let table = report.table()?;
    let header = &table.header;
    let entries_len = u64::from(header.entry_count) * u64::from(header.entry_size);
    let sector = report.sector_size;
    let next_after_bootloader = std::iter::once(header.entries_lba * sector)
        .chain(table.partitions.iter().map(|p| p.first_lba * sector))
        .filter(|&start| start > BOOTLOADER_OFFSET)
        .min()
        .unwrap_or(len);
    let bootloader = bootloader_sector
        .filter(|s| rockusb_loaders::idblock::classify_sector(s).is_present())
        .and_then(|_| ByteRange::from_bounds(BOOTLOADER_OFFSET, next_after_bootloader));
    Some(TableReport {
        len,
        entries_lba: header.entries_lba,
        entries_lbas: entries_len.div_ceil(report.sector_size),
        bootloader,
        partitions: table
            .partitions
            .iter()
            .map(|p| PartitionRow::with_sector_size(p, report.sector_size))
            .collect(),
    })
}
