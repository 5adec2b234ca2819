//! Reading back what was written and comparing digests, run by run.
//!
//! Runs are read back while the flash is still going, whenever the writer has nothing
//! to write (the decoder is busy with a long zero run): the link does useful work
//! instead of idling, so a verified flash costs little more than the bytes that cross
//! the link. What is left is read back after the last write.
//!
//! Some vendor loaders (RK3576 rkbin SPL, vendor U-Boot rockusb, some RK3588 builds)
//! answer any read that ends past sector 65536 (32 MiB) with 0xCC bytes and success
//! (docs/protocol.md §6.1); writes are not affected. A mismatching run that reads back as nothing but
//! 0xCC past that sector is that limitation, not a bad write: runs past it are left
//! unverified and the outcome says so, instead of reporting a false mismatch.

use crate::ops::sector_io::IoFailure;
use crate::ops::sectors::Sectors;
use crate::ops::{Event, Observer, Phase};
use rockusb_images::ByteRange;
use serde::Serialize;
use std::time::Instant;
use xxhash_rust::xxh3::xxh3_128;

use crate::protocol::read_wall::{self, READ_WALL_BYTES};

/// One write, as recorded for the read-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub range: ByteRange,
    pub hash: u128,
    /// Already read back and found as written (a resumed flash's kept runs).
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verify", rename_all = "kebab-case")]
pub enum VerifyOutcome {
    /// Every written byte read back as written.
    Verified { bytes: u64 },
    /// `--verify none`.
    Skipped,
    /// `--verify device`: the loader re-read every write from the medium and found it
    /// matching its write parity (docs/protocol.md §9.1).
    Device { bytes: u64 },
    /// The loader cannot read past 32 MiB: what lies below was verified, the rest not.
    ReadWall {
        verified_bytes: u64,
        unverified_bytes: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "verification failed: {range} reads back differently from what was written (digests compared). The storage may be failing or the connection unreliable; run the flash again, and if it fails at the same place, the eMMC may be worn"
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

/// Reads back records in the order they were written.
#[derive(Debug, Default)]
pub struct Verifier {
    /// Records before this index are done (verified or, past the wall, skipped).
    next: usize,
    verified: u64,
    unverified: u64,
    wall: bool,
    buf: Vec<u8>,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when some of `records` still wait to be read back.
    pub fn pending(&self, records: &[Written]) -> bool {
        self.next < records.len()
    }

    /// Reads back the next record; returns its length.
    pub fn step<S: Sectors + ?Sized>(
        &mut self,
        io: &mut S,
        records: &[Written],
    ) -> Result<u64, VerifyError> {
        let Some(w) = records.get(self.next) else {
            return Ok(0);
        };
        self.next += 1;
        if w.verified {
            self.verified += w.range.len;
            return Ok(w.range.len);
        }
        let past_wall = w.range.end() > READ_WALL_BYTES;
        if self.wall && past_wall {
            self.unverified += w.range.len;
            return Ok(0);
        }
        self.buf.resize(w.range.len as usize, 0);
        io.read(w.range.start, &mut self.buf)?;
        if xxh3_128(&self.buf) != w.hash {
            if read_wall::is_wall_answer(w.range.end().div_ceil(512), &self.buf) {
                self.wall = true;
                self.unverified += w.range.len;
                return Ok(w.range.len);
            }
            // Read once more: data damaged on the link reads right the second time; data
            // wrong on the medium does not.
            io.read(w.range.start, &mut self.buf)?;
            if xxh3_128(&self.buf) != w.hash {
                return Err(VerifyError::Mismatch { range: w.range });
            }
            // Counted with the commands the link made fail once.
            io.count_retry();
        }
        self.verified += w.range.len;
        Ok(w.range.len)
    }

    pub fn verified_bytes(&self) -> u64 {
        self.verified
    }

    /// Reads back everything left, as the `verify` phase.
    pub fn finish<S: Sectors + ?Sized>(
        mut self,
        io: &mut S,
        records: &[Written],
        observer: &mut dyn Observer,
    ) -> Result<VerifyOutcome, VerifyError> {
        let left: u64 = records[self.next..]
            .iter()
            .filter(|w| !w.verified)
            .map(|w| w.range.len)
            .sum();
        observer.event(Event::PhaseStart {
            phase: Phase::Verify,
            total_bytes: left,
        });
        let start = Instant::now();
        let mut done = 0u64;
        let mut last_event = Instant::now();
        while self.pending(records) {
            let w = records[self.next];
            self.step(io, records)?;
            if !w.verified {
                done += w.range.len;
            }
            if last_event.elapsed().as_millis() >= 100 {
                last_event = Instant::now();
                observer.event(Event::Progress {
                    phase: Phase::Verify,
                    done_bytes: done,
                });
            }
        }
        observer.event(Event::PhaseDone {
            phase: Phase::Verify,
            bytes: done,
            seconds: start.elapsed().as_secs_f64(),
        });
        Ok(if self.wall {
            VerifyOutcome::ReadWall {
                verified_bytes: self.verified,
                unverified_bytes: self.unverified,
            }
        } else {
            VerifyOutcome::Verified {
                bytes: self.verified,
            }
        })
    }
}
