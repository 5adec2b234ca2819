//! Deterministic tar archives for the OCI layers, the OCI archive and the flat overlay tree,
//! written with the `tar` crate.
//!
//! Every entry is a ustar header with owner 0:0 (`root`/`root`), a fixed mtime and an
//! explicit mode, and nothing is read from the file system, so the same inputs always give
//! the same bytes and therefore the same digests.
//!
//! Directories must come before the files inside them: the Talos imager's `tarballPath`
//! extraction (`siderolabs/talos:pkg/archiver/untar.go`, v1.9.0) creates a directory only
//! for a directory entry (`os.Mkdir`, no parents) and opens files with `O_EXCL`, so a
//! file whose directory was not listed first, or a path listed twice, fails there.

use std::collections::BTreeSet;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TarError {
    #[error("path {path:?} must be relative, non-empty, and free of `..` and NUL")]
    BadPath { path: String },
    #[error("path {path:?} cannot be stored in a ustar header: {reason}")]
    Unrepresentable { path: String, reason: String },
    #[error("path {path:?} is listed twice")]
    Duplicate { path: String },
    #[error("{path:?} is added before its directory {parent:?}; list the directory first")]
    ParentMissing { path: String, parent: String },
    #[error("writing tar entry {path:?} failed: {reason}")]
    Write { path: String, reason: String },
}

/// Builds a tar archive in memory.
pub struct TarBuilder {
    builder: tar::Builder<Vec<u8>>,
    mtime: u64,
    dirs: BTreeSet<String>,
    seen: BTreeSet<String>,
}

impl std::fmt::Debug for TarBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarBuilder")
            .field("mtime", &self.mtime)
            .field("entries", &self.seen.len())
            .finish()
    }
}

impl TarBuilder {
    pub fn new(mtime: u64) -> Self {
        TarBuilder {
            builder: tar::Builder::new(Vec::new()),
            mtime,
            dirs: BTreeSet::new(),
            seen: BTreeSet::new(),
        }
    }

    fn check_path(&self, path: &str) -> Result<(), TarError> {
        let bad = path.is_empty()
            || path.starts_with('/')
            || path.contains('\0')
            || path.split('/').any(|part| part.is_empty() || part == "..");
        if bad {
            return Err(TarError::BadPath { path: path.into() });
        }
        if self.seen.contains(path) {
            return Err(TarError::Duplicate { path: path.into() });
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            if !self.dirs.contains(parent) {
                return Err(TarError::ParentMissing {
                    path: path.into(),
                    parent: parent.into(),
                });
            }
        }
        Ok(())
    }

    fn append(
        &mut self,
        path: &str,
        name: &str,
        mode: u32,
        kind: tar::EntryType,
        data: &[u8],
    ) -> Result<(), TarError> {
        self.check_path(path)?;
        let mut header = tar::Header::new_ustar();
        let unrepresentable = |e: std::io::Error| TarError::Unrepresentable {
            path: path.into(),
            reason: e.to_string(),
        };
        header.set_path(name).map_err(unrepresentable)?;
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("root").map_err(unrepresentable)?;
        header.set_groupname("root").map_err(unrepresentable)?;
        header.set_mtime(self.mtime);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.builder
            .append(&header, data)
            .map_err(|e| TarError::Write {
                path: path.into(),
                reason: e.to_string(),
            })?;
        self.seen.insert(path.to_owned());
        Ok(())
    }

    /// Adds a directory entry; it is stored with a trailing `/` as tar expects.
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<(), TarError> {
        let path = path.trim_end_matches('/');
        self.append(
            path,
            &format!("{path}/"),
            mode,
            tar::EntryType::Directory,
            &[],
        )?;
        self.dirs.insert(path.to_owned());
        Ok(())
    }

    /// Adds a regular file.
    pub fn add_file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<(), TarError> {
        self.append(path, path, mode, tar::EntryType::Regular, data)
    }

    /// Adds `path` and each of its parents that is not in the archive yet, as 0755
    /// directories, parents first.
    pub fn add_dirs(&mut self, path: &str) -> Result<(), TarError> {
        let mut prefix = String::new();
        for part in path.trim_end_matches('/').split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if !self.dirs.contains(&prefix) {
                self.add_dir(&prefix.clone(), 0o755)?;
            }
        }
        Ok(())
    }

    /// Ends the archive with the two zero blocks tar requires.
    pub fn finish(self) -> Result<Vec<u8>, TarError> {
        self.builder.into_inner().map_err(|e| TarError::Write {
            path: "(end of archive)".into(),
            reason: e.to_string(),
        })
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
        let bytes = tar.finish().unwrap();
        assert_eq!(bytes.len(), 512 + 512 + 512 + 1024);
        assert_eq!(&bytes[..2], b"a/");
        assert_eq!(&bytes[257..263], b"ustar\0");
        assert_eq!(&bytes[265..269], b"root");
        // Recompute the checksum of the file header.
        let header = &bytes[512..1024];
        let field = std::str::from_utf8(&header[148..156]).unwrap();
        let stored = u64::from_str_radix(field.trim_matches(['\0', ' ']), 8).unwrap();
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
    fn the_same_entries_give_the_same_bytes() {
        let build = |mtime| {
            let mut tar = TarBuilder::new(mtime);
            tar.add_dirs("x/y").unwrap();
            tar.add_file("x/y/z", 0o755, b"data").unwrap();
            tar.finish().unwrap()
        };
        assert_eq!(build(0), build(0));
        assert_ne!(build(0), build(1));
    }

    #[test]
    fn unsafe_duplicate_or_orphan_paths_are_refused() {
        let mut tar = TarBuilder::new(0);
        assert!(matches!(
            tar.add_file("/abs", 0o644, b""),
            Err(TarError::BadPath { .. })
        ));
        assert!(matches!(
            tar.add_file("a/../b", 0o644, b""),
            Err(TarError::BadPath { .. })
        ));
        assert!(matches!(
            tar.add_file("a/b", 0o644, b""),
            Err(TarError::ParentMissing { .. })
        ));
        tar.add_file("top", 0o644, b"").unwrap();
        assert!(matches!(
            tar.add_file("top", 0o644, b""),
            Err(TarError::Duplicate { .. })
        ));
        let long = "x".repeat(300);
        assert!(matches!(
            tar.add_file(&long, 0o644, b""),
            Err(TarError::Unrepresentable { .. })
        ));
    }
}
