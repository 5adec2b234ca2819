//! Reading a board's storage into a file, compressing while reading.
//!
//! USB reads and compression overlap: buffers go from the reader (the caller's thread,
//! which owns the client) to a compressing thread over a bounded channel. xz uses
//! liblzma's multi-threaded encoder at preset 0 with 1 MiB blocks, as Talos does, so the
//! backup decodes in parallel when it is flashed back.

use super::target::Target;
use crate::ops::sector_io::{IoFailure, SectorIo};
use crate::ops::{Event, Observer, Phase};
use crate::protocol::SECTOR_SIZE;
use crate::protocol::read_wall::{self, READ_WALL_SECTORS};
use crate::transport::Transport;
use serde::Serialize;
use std::io::{self, Write};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

/// Bytes per read command.
const READ_CHUNK: usize = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupFormat {
    Raw,
    Xz,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub bytes: u64,
    pub stored_bytes: u64,
    pub format: BackupFormat,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "the loader does not report the storage size (mainline U-Boot); give the length with --sectors"
    )]
    UnknownSize,
    #[error("reading the storage failed {0}")]
    Read(IoFailure),
    #[error(
        "this loader answers reads that end past 32 MiB (sector 65536) with 0xCC bytes instead of the storage's contents, a known limitation of some Rockchip vendor loaders: a backup made with it would be wrong. Boot a loader that reads the whole eMMC (e.g. the FriendlyELEC RK3588 usbplug), or back up only the first 32 MiB with --sectors 65536"
    )]
    ReadWall,
    #[error("writing the backup failed: {0}")]
    Output(io::Error),
    #[error("{sectors} sectors from 0 reach past the end of the storage ({capacity} bytes)")]
    OutOfRange { sectors: u64, capacity: u64 },
}

/// Reads `sectors` (default: the whole storage) into `out`, xz-compressed or raw.
pub fn backup<T: Transport, W: Write + Send + 'static>(
    io: &mut SectorIo<'_, T>,
    target: &Target,
    sectors: Option<u64>,
    format: BackupFormat,
    out: W,
    observer: &mut dyn Observer,
) -> Result<BackupReport, BackupError> {
    let total = match (sectors, target.capacity) {
        (Some(s), Some(cap)) if s * SECTOR_SIZE as u64 > cap => {
            return Err(BackupError::OutOfRange {
                sectors: s,
                capacity: cap,
            });
        }
        (Some(s), _) => s * SECTOR_SIZE as u64,
        (None, Some(cap)) => cap,
        (None, None) => return Err(BackupError::UnknownSize),
    };
    observer.event(Event::PhaseStart {
        phase: Phase::Backup,
        total_bytes: total,
    });
    let start = Instant::now();
    let (tx, rx) = sync_channel::<Vec<u8>>(4);
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(6);
    let compressor = std::thread::spawn(move || -> io::Result<u64> {
        let mut counting = Counting { inner: out, n: 0 };
        {
            let mut sink: Box<dyn Write> = match format {
                BackupFormat::Raw => Box::new(&mut counting),
                BackupFormat::Xz => Box::new(crate::source::decode::xz_encoder(&mut counting)?),
            };
            for buf in rx {
                sink.write_all(&buf)?;
                let _ = back_tx.try_send(buf);
            }
            sink.flush()?;
        }
        counting.inner.flush()?;
        Ok(counting.n)
    });
    let mut done = 0u64;
    let mut last_event = Instant::now();
    let result = (|| -> Result<(), BackupError> {
        while done < total {
            let n = ((total - done) as usize).min(READ_CHUNK);
            let mut buf = back_rx.try_recv().unwrap_or_default();
            buf.resize(n, 0);
            io.read(done, &mut buf)?;
            let end_sector = (done + n as u64) / SECTOR_SIZE as u64;
            if read_wall::is_wall_answer(end_sector, &buf)
                && done < READ_WALL_SECTORS * SECTOR_SIZE as u64 + READ_CHUNK as u64
            {
                return Err(BackupError::ReadWall);
            }
            if tx.send(buf).is_err() {
                break; // the compressor failed; its error is reported below
            }
            done += n as u64;
            if last_event.elapsed().as_millis() >= 100 || done == total {
                last_event = Instant::now();
                observer.event(Event::Progress {
                    phase: Phase::Backup,
                    done_bytes: done,
                });
            }
        }
        Ok(())
    })();
    drop(tx);
    let stored = compressor
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the compressing thread panicked")))
        .map_err(BackupError::Output);
    result?;
    let stored = stored?;
    let seconds = start.elapsed().as_secs_f64();
    observer.event(Event::PhaseDone {
        phase: Phase::Backup,
        bytes: done,
        seconds,
    });
    Ok(BackupReport {
        bytes: done,
        stored_bytes: stored,
        format,
        seconds,
    })
}

impl From<IoFailure> for BackupError {
    fn from(e: IoFailure) -> Self {
        BackupError::Read(e)
    }
}

struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
