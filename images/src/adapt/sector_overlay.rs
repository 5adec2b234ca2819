//! A block device for the FAT library: a partition of a [`ReadAt`] source whose writes
//! land in memory instead.
//!
//! Reads fall through to the source (each sector read once and cached); writes go into
//! an overlay of changed 512-byte sectors. When the file system is done, the sectors
//! whose bytes really differ from the source are the only ones the output has to
//! change: mount-time flag flips that are undone at unmount leave nothing behind.

use crate::layout::{ByteRange, SECTOR_SIZE};
use crate::read_at::ReadAt;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Seek, SeekFrom, Write};

type Sector = [u8; SECTOR_SIZE as usize];

pub(crate) struct SectorOverlay<S> {
    source: S,
    /// Where the partition lies in the source.
    range: ByteRange,
    position: u64,
    /// Source sectors read so far, by sector index within the partition.
    original: HashMap<u64, Box<Sector>>,
    /// Sectors written, by sector index within the partition.
    written: BTreeMap<u64, Box<Sector>>,
}

impl<S: ReadAt> SectorOverlay<S> {
    pub fn new(source: S, range: ByteRange) -> Self {
        Self {
            source,
            range,
            position: 0,
            original: HashMap::new(),
            written: BTreeMap::new(),
        }
    }

    /// Runs of changed sectors as (byte offset within the partition, bytes), in order.
    pub fn changed_runs(&self) -> Vec<(u64, Vec<u8>)> {
        let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
        for (&index, sector) in &self.written {
            if self.original.get(&index).is_some_and(|o| o == sector) {
                continue;
            }
            let offset = index * SECTOR_SIZE;
            match runs.last_mut() {
                Some((start, bytes)) if *start + bytes.len() as u64 == offset => {
                    bytes.extend_from_slice(&sector[..])
                }
                _ => runs.push((offset, sector.to_vec())),
            }
        }
        runs
    }

    /// The current bytes of sector `index` (within the partition).
    pub fn sector(&mut self, index: u64) -> io::Result<Sector> {
        self.current_sector(index)
    }

    /// The indices of the sectors written so far, in order.
    pub fn written_indices(&self) -> Vec<u64> {
        self.written.keys().copied().collect()
    }

    /// Sets sector `index` to `bytes`, as a write would.
    pub fn replace_sector(&mut self, index: u64, bytes: Sector) {
        self.written.insert(index, Box::new(bytes));
    }

    fn source_sector(&mut self, index: u64) -> io::Result<&Sector> {
        if !self.original.contains_key(&index) {
            let mut sector = Box::new([0u8; SECTOR_SIZE as usize]);
            self.source
                .read_exact_at(self.range.start + index * SECTOR_SIZE, &mut sector[..])?;
            self.original.insert(index, sector);
        }
        Ok(&self.original[&index])
    }

    fn current_sector(&mut self, index: u64) -> io::Result<Sector> {
        if let Some(sector) = self.written.get(&index) {
            return Ok(**sector);
        }
        self.source_sector(index).copied()
    }

    /// Bytes from the position to the partition's end, capped at `want`.
    fn available(&self, want: usize) -> usize {
        let left = self.range.len.saturating_sub(self.position);
        want.min(usize::try_from(left).unwrap_or(usize::MAX))
    }
}

impl<S: ReadAt> Read for SectorOverlay<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.available(buf.len());
        let mut done = 0;
        while done < n {
            let index = self.position / SECTOR_SIZE;
            let within = (self.position % SECTOR_SIZE) as usize;
            let take = (SECTOR_SIZE as usize - within).min(n - done);
            let sector = self.current_sector(index)?;
            buf[done..done + take].copy_from_slice(&sector[within..within + take]);
            done += take;
            self.position += take as u64;
        }
        Ok(n)
    }
}

impl<S: ReadAt> Write for SectorOverlay<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.available(buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        let mut done = 0;
        while done < n {
            let index = self.position / SECTOR_SIZE;
            let within = (self.position % SECTOR_SIZE) as usize;
            let take = (SECTOR_SIZE as usize - within).min(n - done);
            // Reading first also caches the source sector the change is compared against.
            let mut sector = self.current_sector(index)?;
            sector[within..within + take].copy_from_slice(&buf[done..done + take]);
            self.written.insert(index, Box::new(sector));
            done += take;
            self.position += take as u64;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S> Seek for SectorOverlay<S> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.range.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.position.checked_add_signed(d),
        };
        self.position = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the partition's start",
            )
        })?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_stay_in_memory_and_only_real_changes_are_reported() {
        let source: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
        let mut dev = SectorOverlay::new(source.as_slice(), ByteRange::new(1024, 4096));
        // A change, and a write of identical bytes (a flag set and cleared again).
        dev.seek(SeekFrom::Start(510)).unwrap();
        dev.write_all(&[1, 2, 3, 4]).unwrap();
        dev.seek(SeekFrom::Start(2048)).unwrap();
        let same = source[1024 + 2048..1024 + 2060].to_vec();
        dev.write_all(&same).unwrap();

        let mut back = [0u8; 8];
        dev.seek(SeekFrom::Start(508)).unwrap();
        dev.read_exact(&mut back).unwrap();
        assert_eq!(back[2..6], [1, 2, 3, 4]);
        assert_eq!(back[..2], source[1024 + 508..1024 + 510]);

        let runs = dev.changed_runs();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].0, 0);
        assert_eq!(runs[0].1.len(), 1024, "two adjacent sectors form one run");
        assert_eq!(runs[0].1[510..514], [1, 2, 3, 4]);
    }

    #[test]
    fn reads_and_writes_stop_at_the_partition_end() {
        let source = vec![7u8; 4096];
        let mut dev = SectorOverlay::new(source.as_slice(), ByteRange::new(0, 1000));
        dev.seek(SeekFrom::End(-4)).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(dev.read(&mut buf).unwrap(), 4);
        assert_eq!(dev.read(&mut buf).unwrap(), 0);
        assert!(dev.write(&[1]).is_err());
        assert!(dev.seek(SeekFrom::Current(-2000)).is_err());
    }
}
