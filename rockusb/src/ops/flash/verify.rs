//! Reading back what was written and comparing digests, run by run.
//!
//! Some vendor loaders (RK3576 rkbin SPL, vendor U-Boot rockusb, some RK3588 builds)
//! answer any read that ends past sector 65536 (32 MiB) with 0xCC bytes and success
//! (spec §6.4); writes are not affected. A mismatching run that reads back as nothing but
//! 0xCC past that sector is that limitation, not a bad write: the verification stops
//! there and says so, instead of reporting a false mismatch.

use super::writer::{IoFailure, SectorIo};
use crate::ops::{Event, Observer};
use crate::transport::Transport;
use rockusb_images::ByteRange;
use serde::Serialize;
use std::time::Instant;
use xxhash_rust::xxh3::xxh3_128;

/// Reads ending past this sector return 0xCC on loaders with the read wall.
pub const READ_WALL_SECTORS: u64 = 65536;
const READ_WALL_BYTE: u8 = 0xCC;

/// One write, as recorded for the read-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub range: ByteRange,
    pub hash: u128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verify", rename_all = "kebab-case")]
pub enum VerifyOutcome {
    /// Every written byte read back as written.
    Verified { bytes: u64 },
    /// `--no-verify`.
    Skipped,
    /// The loader cannot read past 32 MiB: what lies below was verified, the rest not.
    ReadWall {
        verified_bytes: u64,
        unverified_bytes: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "verification failed: {range} reads back differently from what was written (first difference unknown: digests compared). The storage may be failing or the connection unreliable; run the flash again, and if it fails at the same place, the eMMC may be worn"
    )]
    Mismatch { range: ByteRange },
    #[error("reading back failed {0}")]
    Read(IoFailure),
}

impl From<IoFailure> for VerifyError {
    fn from(e: IoFailure) -> Self {
        VerifyError::Read(e)
    }
}

/// Reads back every record (sorted by offset) and compares digests.
pub fn verify<T: Transport>(
    io: &mut SectorIo<'_, T>,
    records: &mut [Written],
    observer: &mut dyn Observer,
) -> Result<VerifyOutcome, VerifyError> {
    records.sort_by_key(|w| w.range.start);
    let total: u64 = records.iter().map(|w| w.range.len).sum();
    observer.event(Event::PhaseStart {
        phase: "verify".into(),
        total_bytes: total,
    });
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut done = 0u64;
    let mut last_event = Instant::now();
    for w in records.iter() {
        buf.resize(w.range.len as usize, 0);
        io.read(w.range.start, &mut buf)?;
        if xxh3_128(&buf) != w.hash {
            let past_wall = w.range.end() > READ_WALL_SECTORS * 512;
            if past_wall && buf.iter().all(|&b| b == READ_WALL_BYTE) {
                observer.event(Event::PhaseDone {
                    phase: "verify".into(),
                    bytes: done,
                    seconds: start.elapsed().as_secs_f64(),
                });
                return Ok(VerifyOutcome::ReadWall {
                    verified_bytes: done,
                    unverified_bytes: total - done,
                });
            }
            return Err(VerifyError::Mismatch { range: w.range });
        }
        done += w.range.len;
        if last_event.elapsed().as_millis() >= 100 || done == total {
            last_event = Instant::now();
            observer.event(Event::Progress {
                phase: "verify".into(),
                done_bytes: done,
            });
        }
    }
    observer.event(Event::PhaseDone {
        phase: "verify".into(),
        bytes: done,
        seconds: start.elapsed().as_secs_f64(),
    });
    Ok(VerifyOutcome::Verified { bytes: done })
}
