//! File-backed storage for the virtual board: one sparse file per storage device, so a
//! 32 GiB eMMC costs only the blocks actually written.

use rockusb::positional::PositionalFile;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// One storage device backed by a sparse file.
#[derive(Debug)]
pub struct BackingStore {
    file: File,
    len: u64,
}

impl BackingStore {
    /// Opens the file, creating it as a sparse file of `len` bytes if it does not exist.
    pub fn open_or_create(path: &Path, len: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if file.metadata()?.len() != len {
            file.set_len(len)?;
        }
        Ok(BackingStore { file, len })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: u64, len: u64) -> io::Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "range {offset}+{len} is beyond the end of the storage ({} bytes)",
                    self.len
                ),
            )),
        }
    }

    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check(offset, buf.len() as u64)?;
        self.file.read_exact_at(buf, offset)
    }

    pub fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check(offset, data.len() as u64)?;
        self.file.write_all_at(data, offset)
    }

    /// Erases a range so it reads back as zeros, freeing the file's blocks where the
    /// file system allows it.
    pub fn erase(&self, offset: u64, len: u64) -> io::Result<()> {
        self.check(offset, len)?;
        if punch_hole(&self.file, offset, len).is_ok() {
            return Ok(());
        }
        let zeros = vec![0u8; 1 << 20];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            self.file.write_all_at(&zeros[..n], offset + done)?;
            done += n as u64;
        }
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(not(target_os = "linux"))]
fn punch_hole(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(target_os = "linux")]
fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    fallocate(
        file,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        offset,
        len,
    )
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_erase_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackingStore::open_or_create(&dir.path().join("s.img"), 1 << 30).unwrap();
        store.write_at(4096, &[7u8; 8192]).unwrap();
        let mut buf = [0u8; 8192];
        store.read_at(4096, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 7));
        store.erase(4096, 4096).unwrap();
        store.read_at(4096, &mut buf).unwrap();
        assert!(buf[..4096].iter().all(|&b| b == 0));
        assert!(buf[4096..].iter().all(|&b| b == 7));
        assert!(store.write_at((1 << 30) - 511, &[0u8; 512]).is_err());
        assert!(store.read_at(u64::MAX, &mut buf).is_err());
    }
}
