//! A minimal, deterministic ustar writer for OCI layers and the OCI archive itself.
//!
//! Every entry gets owner 0:0, a fixed mtime and an explicit mode, so the same inputs
//! always give the same bytes and therefore the same digests.

use thiserror::Error;

const BLOCK: usize = 512;
/// ustar's `name` field; longer paths would need the `prefix` field, which the overlay's
/// short paths never do.
const MAX_NAME: usize = 100;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TarError {
    #[error(
        "path {path:?} is longer than {MAX_NAME} bytes, which this tar writer does not support"
    )]
    PathTooLong { path: String },
    #[error("path {path:?} must be relative, non-empty, and free of `..` and NUL")]
    BadPath { path: String },
    #[error("entry {path:?} is {size} bytes, beyond the 8 GiB ustar size field")]
    TooLarge { path: String, size: u64 },
}

/// Builds a tar archive in memory.
#[derive(Debug, Clone)]
pub struct TarBuilder {
    bytes: Vec<u8>,
    mtime: u64,
}

fn write_octal(field: &mut [u8], value: u64) {
    // Fields hold width-1 octal digits, zero padded, then a NUL.
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
}

impl TarBuilder {
    pub fn new(mtime: u64) -> Self {
        TarBuilder {
            bytes: Vec::new(),
            mtime,
        }
    }

    fn check_path(path: &str) -> Result<(), TarError> {
        let bad = path.is_empty()
            || path.starts_with('/')
            || path.contains('\0')
            || path.split('/').any(|part| part == "..");
        if bad {
            return Err(TarError::BadPath { path: path.into() });
        }
        if path.len() > MAX_NAME {
            return Err(TarError::PathTooLong { path: path.into() });
        }
        Ok(())
    }

    fn header(&mut self, path: &str, mode: u32, size: u64, typeflag: u8) -> Result<(), TarError> {
        Self::check_path(path)?;
        if size >= 0o77777777777 {
            return Err(TarError::TooLarge {
                path: path.into(),
                size,
            });
        }
        let mut header = [0u8; BLOCK];
        header[..path.len()].copy_from_slice(path.as_bytes());
        write_octal(&mut header[100..108], u64::from(mode));
        write_octal(&mut header[108..116], 0);
        write_octal(&mut header[116..124], 0);
        write_octal(&mut header[124..136], size);
        write_octal(&mut header[136..148], self.mtime);
        header[156] = typeflag;
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[265..269].copy_from_slice(b"root");
        header[297..301].copy_from_slice(b"root");
        // The checksum is computed with its own field read as spaces.
        header[148..156].fill(b' ');
        let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        header[148..156].copy_from_slice(text.as_bytes());
        self.bytes.extend_from_slice(&header);
        Ok(())
    }

    /// Adds a directory entry; `path` gets a trailing `/` as tar expects.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<(), TarError> {
        let path = format!("{}/", path.trim_end_matches('/'));
        self.header(&path, mode, 0, b'5')
    }

    pub fn add_file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<(), TarError> {
        self.header(path, mode, data.len() as u64, b'0')?;
        self.bytes.extend_from_slice(data);
        let padding = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.bytes.extend(std::iter::repeat_n(0u8, padding));
        Ok(())
    }

    /// Ends the archive with the two zero blocks tar requires.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_valid_ustar_blocks() {
        let mut tar = TarBuilder::new(0);
        tar.add_dir("a", 0o755).unwrap();
        tar.add_file("a/b.txt", 0o644, b"hello").unwrap();
        let bytes = tar.finish();
        assert_eq!(bytes.len(), 512 + 512 + 512 + 1024);
        assert_eq!(&bytes[..2], b"a/");
        assert_eq!(&bytes[257..263], b"ustar\0");
        // Recompute the checksum of the file header.
        let header = &bytes[512..1024];
        let stored =
            u64::from_str_radix(std::str::from_utf8(&header[148..154]).unwrap(), 8).unwrap();
        let sum: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        assert_eq!(stored, sum);
        assert_eq!(&bytes[1024..1029], b"hello");
    }

    #[test]
    fn unsafe_or_long_paths_are_refused() {
        let mut tar = TarBuilder::new(0);
        assert!(matches!(
            tar.add_file("/abs", 0o644, b""),
            Err(TarError::BadPath { .. })
        ));
        assert!(matches!(
            tar.add_file("a/../b", 0o644, b""),
            Err(TarError::BadPath { .. })
        ));
        let long = "x".repeat(101);
        assert!(matches!(
            tar.add_file(&long, 0o644, b""),
            Err(TarError::PathTooLong { .. })
        ));
    }
}
