//! What a flash writes through and reads back from: sector-addressed storage. A board's
//! storage over USB ([`SectorIo`]) is one; a local block device or file
//! ([`crate::local::LocalDisk`], `flash --to`) is the other, so both go through the same
//! pipeline, the same crash-safe order and the same read-back.

use crate::ops::sector_io::{IoFailure, SectorIo};
use crate::protocol::SECTOR_SIZE;
use crate::transport::Transport;

/// Sector-addressed storage. Offsets and lengths are whole 512-byte sectors.
pub trait Sectors {
    /// Writes `data` at byte `offset`.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), IoFailure>;
    /// Reads `buf.len()` bytes from byte `offset`; from the medium, not from a cache the
    /// writes went through, so a read-back checks what the storage holds.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoFailure>;
    /// The largest transfer made in one command; the flash cuts its runs to it.
    fn command_bytes(&self) -> usize;
    /// Transfers made so far.
    fn commands(&self) -> u64;
    /// Counts a transfer that failed (or read back wrong) once and went through when
    /// made again.
    fn count_retry(&mut self);
    /// Transfers that went through only when made again.
    fn retried(&self) -> u64;
    /// Command sizes given up on because they were refused: (from, to) sectors.
    fn fallbacks(&self) -> &[(u32, u32)] {
        &[]
    }
    /// Times the storage dropped off and was found again (a board on its USB port).
    fn reattached(&self) -> u32 {
        0
    }
    /// Bytes whose writes the storage itself checked against their write parity
    /// (docs/protocol.md §9.1); `None` when writes carry no parity.
    fn parity_checked(&self) -> Option<u64> {
        None
    }

    fn command_sectors(&self) -> u32 {
        (self.command_bytes() / SECTOR_SIZE) as u32
    }
}

impl<S: Sectors + ?Sized> Sectors for &mut S {
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), IoFailure> {
        (**self).write(offset, data)
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoFailure> {
        (**self).read(offset, buf)
    }
    fn command_bytes(&self) -> usize {
        (**self).command_bytes()
    }
    fn commands(&self) -> u64 {
        (**self).commands()
    }
    fn count_retry(&mut self) {
        (**self).count_retry()
    }
    fn retried(&self) -> u64 {
        (**self).retried()
    }
    fn fallbacks(&self) -> &[(u32, u32)] {
        (**self).fallbacks()
    }
    fn reattached(&self) -> u32 {
        (**self).reattached()
    }
    fn parity_checked(&self) -> Option<u64> {
        (**self).parity_checked()
    }
}

impl<T: Transport> Sectors for SectorIo<'_, T> {
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), IoFailure> {
        SectorIo::write(self, offset, data)
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoFailure> {
        SectorIo::read(self, offset, buf)
    }
    fn command_bytes(&self) -> usize {
        SectorIo::command_bytes(self)
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
    fn fallbacks(&self) -> &[(u32, u32)] {
        &self.fallbacks
    }
    fn reattached(&self) -> u32 {
        self.reattached
    }
    fn parity_checked(&self) -> Option<u64> {
        self.write_parity().then_some(self.parity_checked_bytes)
    }
}
