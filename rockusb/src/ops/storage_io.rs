//! Reading, writing and erasing a loader's current storage in large commands, with
//! bounds checked against the storage's size before the first transfer.

use super::sector_io::{IoCause, IoFailure, SectorIo};
use super::{Event, Observer, Phase};
use crate::client::Client;
use crate::protocol::SECTOR_SIZE;
use crate::transport::Transport;
use std::io::{Read, Write};
use std::time::Instant;

/// Sectors per READ_LBA/WRITE_LBA command: 1 MiB, large enough that the per-command
/// overhead is small on USB 2.0, small enough for any loader's buffer.
pub const DEFAULT_CHUNK_SECTORS: u32 = 2048;
/// Sectors per ERASE_LBA command, as rkdeveloptool uses (docs/protocol.md §3.4).
pub const ERASE_CHUNK_SECTORS: u32 = 32768;

#[derive(Debug, thiserror::Error)]
pub enum StorageIoError {
    #[error(
        "the range {first}+{count} sectors ends past the end of the storage ({capacity} \
         sectors, {capacity_mib} MiB); nothing was {verb}"
    )]
    OutOfRange {
        first: u64,
        count: u64,
        capacity: u64,
        capacity_mib: u64,
        verb: &'static str,
    },
    #[error("{what} is {len} bytes, not a whole number of 512-byte sectors")]
    NotSectorAligned { what: String, len: u64 },
    #[error("at sector {lba}: {source}")]
    Command {
        lba: u64,
        #[source]
        source: IoCause,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<IoFailure> for StorageIoError {
    fn from(failure: IoFailure) -> Self {
        StorageIoError::Command {
            lba: failure.lba,
            source: failure.error,
        }
    }
}

/// Refuses a range that does not fit in `capacity_sectors`.
pub fn check_range(
    first: u64,
    count: u64,
    capacity_sectors: u64,
    verb: &'static str,
) -> Result<(), StorageIoError> {
    match first.checked_add(count) {
        Some(end) if end <= capacity_sectors && first <= u64::from(u32::MAX) => Ok(()),
        _ => Err(StorageIoError::OutOfRange {
            first,
            count,
            capacity: capacity_sectors,
            capacity_mib: (capacity_sectors * SECTOR_SIZE as u64) >> 20,
            verb,
        }),
    }
}

fn timed<F: FnOnce(&mut dyn Observer) -> Result<u64, StorageIoError>>(
    phase: Phase,
    total_bytes: u64,
    observer: &mut dyn Observer,
    work: F,
) -> Result<u64, StorageIoError> {
    observer.event(Event::PhaseStart { phase, total_bytes });
    let start = Instant::now();
    let bytes = work(observer)?;
    observer.event(Event::PhaseDone {
        phase,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
    });
    Ok(bytes)
}

/// Moves `total` bytes from byte `start` of the storage in 1 MiB steps through the sector
/// loop (which falls back to smaller commands), reporting progress after each step.
fn in_steps<T: Transport>(
    client: &mut Client<T>,
    phase: Phase,
    start: u64,
    total: u64,
    observer: &mut dyn Observer,
    mut step: impl FnMut(&mut SectorIo<'_, T>, u64, &mut [u8]) -> Result<(), StorageIoError>,
) -> Result<u64, StorageIoError> {
    timed(phase, total, observer, |observer| {
        let mut io = SectorIo::new(client, DEFAULT_CHUNK_SECTORS);
        let mut buf = vec![0u8; DEFAULT_CHUNK_SECTORS as usize * SECTOR_SIZE];
        let mut done = 0u64;
        while done < total {
            let n = (total - done).min(buf.len() as u64) as usize;
            step(&mut io, start + done, &mut buf[..n])?;
            done += n as u64;
            observer.event(Event::Progress {
                phase,
                done_bytes: done,
            });
        }
        Ok(total)
    })
}

/// Reads `count` sectors from `first` into `out`.
pub fn read<T: Transport>(
    client: &mut Client<T>,
    first: u64,
    count: u64,
    out: &mut dyn Write,
    observer: &mut dyn Observer,
) -> Result<u64, StorageIoError> {
    let start = first * SECTOR_SIZE as u64;
    let total = count * SECTOR_SIZE as u64;
    in_steps(
        client,
        Phase::Read,
        start,
        total,
        observer,
        |io, at, chunk| {
            io.read(at, chunk)?;
            Ok(out.write_all(chunk)?)
        },
    )
}

/// Writes `len` bytes from `input` at sector `first`.
pub fn write<T: Transport>(
    client: &mut Client<T>,
    first: u64,
    len: u64,
    input: &mut dyn Read,
    observer: &mut dyn Observer,
) -> Result<u64, StorageIoError> {
    let start = first * SECTOR_SIZE as u64;
    in_steps(
        client,
        Phase::Write,
        start,
        len,
        observer,
        |io, at, chunk| {
            input.read_exact(chunk)?;
            Ok(io.write(at, chunk)?)
        },
    )
}

/// Erases `count` sectors from `first`.
pub fn erase<T: Transport>(
    client: &mut Client<T>,
    first: u64,
    count: u64,
    observer: &mut dyn Observer,
) -> Result<u64, StorageIoError> {
    let total = count * SECTOR_SIZE as u64;
    timed(Phase::Erase, total, observer, |observer| {
        let mut done = 0u64;
        while done < count {
            let n = (count - done).min(u64::from(ERASE_CHUNK_SECTORS));
            let lba = first + done;
            client
                .erase_lba(lba as u32, n as u16)
                .map_err(|source| StorageIoError::Command {
                    lba,
                    source: source.into(),
                })?;
            done += n;
            observer.event(Event::Progress {
                phase: Phase::Erase,
                done_bytes: done * SECTOR_SIZE as u64,
            });
        }
        Ok(total)
    })
}
