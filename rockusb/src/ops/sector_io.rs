//! The one loop that moves sectors: reads and writes in large commands, falling back to
//! smaller ones when a loader refuses a size. Flashing, verifying, backups and the plain
//! `read`/`write` commands all go through it.
//!
//! The count field allows 65535 sectors per command; how many a loader accepts is not
//! advertised. Each loader kind gets a default (see [`super::flash::target`]); when a command
//! fails the way a too-large one does (failed or phase-error status, a stall), the
//! endpoint is recovered and the same command is sent again, twice, after a short pause (a
//! lost command or a glitch on the link goes away by itself); when it still fails, the same
//! bytes are sent in commands of half the size, down to 64 KiB, the size rkdeveloptool
//! always uses. The smaller size then sticks for the rest of the job.
//!
//! With write parity on ([`SectorIo::set_write_parity`]), each write carries its checksum
//! and the loader re-reads it from the medium (docs/protocol.md §9.1): commands are held
//! to [`MAX_PARITY_SECTORS`], and a mismatch is sent again like any failed command, but
//! never at a smaller size (a smaller command cannot cure damaged data). A mismatch that
//! persists fails the write with its sector.
//!
//! A board that drops off the bus mid-command (a hub or cable glitch) is looked for again
//! on the same port ([`Transport::reattach`]) and the command sent again, a few times at
//! most; one that comes back in MaskROM has lost its loader, and the job stops there.

use crate::client::{Client, CommandError};
use crate::protocol::SECTOR_SIZE;
pub use crate::protocol::parity::MAX_PARITY_SECTORS;
use crate::transport::{Transport, TransportError};
use std::time::Duration;

/// The smallest command tried: rkdeveloptool's 128 sectors, which every loader takes.
pub const MIN_COMMAND_SECTORS: u32 = 128;

/// A transfer that failed: a command the loader refused after every fallback, or a
/// local disk's read or write ([`crate::local`]).
#[derive(Debug, thiserror::Error)]
#[error("at sector {lba} ({sectors} sectors): {error}")]
pub struct IoFailure {
    pub lba: u64,
    pub sectors: u32,
    pub error: IoCause,
}

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum IoCause {
    /// The loader refused the command, or the link failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The kernel refused a local disk's read or write.
    #[error("{path}: {source}")]
    Local {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl IoCause {
    /// The transport error behind this one, if any.
    pub fn transport(&self) -> Option<&TransportError> {
        match self {
            IoCause::Command(e) => e.transport(),
            IoCause::Local { .. } => None,
        }
    }
}

/// Sector-addressed I/O with the current command size.
pub struct SectorIo<'a, T: Transport> {
    pub client: &'a mut Client<T>,
    command_sectors: u32,
    /// Set when the size was lowered: (from, to).
    pub fallbacks: Vec<(u32, u32)>,
    /// Commands sent.
    pub commands: u64,
    /// Commands that failed and then went through when sent again.
    pub retried: u64,
    /// Writes carry their parity and the loader checks them on the medium.
    write_parity: bool,
    /// Bytes the loader checked against their parity and accepted.
    pub parity_checked_bytes: u64,
    /// Times the board dropped off the bus and was found again on its port.
    pub reattached: u32,
}

/// Re-attachments allowed for one command before the link is called dead.
const MAX_REATTACH_PER_COMMAND: usize = 3;

/// Pauses before sending a failed command again at the same size, before concluding the
/// loader refuses that size: bounded, so a dead link is reported within a second.
const RETRY_BACKOFF: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(200)];

/// Failures that a smaller command may cure.
fn refused(e: &CommandError) -> bool {
    matches!(
        e,
        CommandError::Failed { .. }
            | CommandError::PhaseError { .. }
            | CommandError::ShortData { .. }
            | CommandError::Transport {
                source: TransportError::Stall | TransportError::Overflow | TransportError::Timeout,
                ..
            }
    )
}

impl<'a, T: Transport> SectorIo<'a, T> {
    pub fn new(client: &'a mut Client<T>, command_sectors: u32) -> Self {
        SectorIo {
            client,
            command_sectors: command_sectors.clamp(MIN_COMMAND_SECTORS, 65535),
            fallbacks: Vec::new(),
            commands: 0,
            retried: 0,
            write_parity: false,
            parity_checked_bytes: 0,
            reattached: 0,
        }
    }

    /// Sends every write with its parity, for a loader whose capability has the parity
    /// bit; lowers the command size to what the loader can re-read.
    pub fn set_write_parity(&mut self) {
        self.write_parity = true;
        self.command_sectors = self.command_sectors.min(MAX_PARITY_SECTORS);
    }

    pub fn write_parity(&self) -> bool {
        self.write_parity
    }

    pub fn command_sectors(&self) -> u32 {
        self.command_sectors
    }

    pub fn command_bytes(&self) -> usize {
        self.command_sectors as usize * SECTOR_SIZE
    }

    /// Writes `data` (whole sectors) at byte `offset`.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), IoFailure> {
        if self.write_parity {
            self.each_command(offset, data.len(), |client, lba, range| {
                client.write_lba_parity(lba, &data[range])
            })?;
            self.parity_checked_bytes += data.len() as u64;
            return Ok(());
        }
        self.each_command(offset, data.len(), |client, lba, range| {
            client.write_lba(lba, &data[range])
        })
    }

    /// Reads `buf.len()` bytes (whole sectors) from byte `offset`.
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoFailure> {
        self.each_command(offset, buf.len(), |client, lba, range| {
            client.read_lba(lba, &mut buf[range])
        })
    }

    fn each_command(
        &mut self,
        offset: u64,
        len: usize,
        mut op: impl FnMut(&mut Client<T>, u32, std::ops::Range<usize>) -> Result<(), CommandError>,
    ) -> Result<(), IoFailure> {
        debug_assert!(offset % SECTOR_SIZE as u64 == 0 && len % SECTOR_SIZE == 0);
        let mut done = 0usize;
        let mut attempt = 0usize;
        let mut reattach_attempts = 0usize;
        while done < len {
            let n = (len - done).min(self.command_bytes());
            let lba = (offset + done as u64) / SECTOR_SIZE as u64;
            let sectors = (n / SECTOR_SIZE) as u32;
            let failure = |error: CommandError| IoFailure {
                lba,
                sectors,
                error: error.into(),
            };
            let lba32 = u32::try_from(lba).map_err(|_| {
                failure(CommandError::Failed {
                    op: "LBA beyond 2 TiB",
                })
            })?;
            self.commands += 1;
            match op(self.client, lba32, done..done + n) {
                Ok(()) => {
                    if attempt > 0 {
                        self.retried += 1;
                    }
                    attempt = 0;
                    reattach_attempts = 0;
                    done += n;
                }
                // Damaged on the way or on the medium: worth sending again, but a smaller
                // command would only spread the same damage over more commands.
                Err(e @ CommandError::ParityMismatch { .. }) => {
                    let _ = self.client.transport_mut().recover();
                    let Some(pause) = RETRY_BACKOFF.get(attempt) else {
                        return Err(failure(e));
                    };
                    std::thread::sleep(*pause);
                    attempt += 1;
                }
                Err(CommandError::Transport {
                    source: TransportError::Disconnected,
                    ..
                }) if reattach_attempts < MAX_REATTACH_PER_COMMAND => {
                    reattach_attempts += 1;
                    match self.client.transport_mut().reattach() {
                        Ok(()) => {
                            self.reattached += 1;
                            // The command may have been cut off half-way: send it whole again.
                            attempt = attempt.max(1);
                        }
                        Err(source) => {
                            return Err(failure(CommandError::Transport {
                                op: "finding the board again on its port",
                                source,
                            }));
                        }
                    }
                }
                Err(e) if refused(&e) => {
                    // The endpoint may be halted or mid-command: clear it before retrying.
                    let _ = self.client.transport_mut().recover();
                    if let Some(pause) = RETRY_BACKOFF.get(attempt) {
                        // A lost command or a glitch on the link goes away by itself.
                        std::thread::sleep(*pause);
                        attempt += 1;
                    } else if self.command_sectors > MIN_COMMAND_SECTORS {
                        // The same size failed every time: the loader refuses it.
                        let from = self.command_sectors;
                        self.command_sectors = (from / 2).max(MIN_COMMAND_SECTORS);
                        self.fallbacks.push((from, self.command_sectors));
                        attempt = 0;
                    } else {
                        return Err(failure(e));
                    }
                }
                Err(e) => return Err(failure(e)),
            }
        }
        Ok(())
    }
}
