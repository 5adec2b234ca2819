//! Decoding the whole image once, before anything is written, so a damaged download is
//! refused while the board is still exactly as it was.
//!
//! Streaming writes reach a damaged block only when the decoder does, by which time the
//! old bootloader and partition table may already be gone. The check runs in the
//! background while the loader boots and the board's table is read, and the flash waits
//! for it before its first write. A seekable `.xz` with a block index is decoded block by
//! block on every core; gzip, zstd and single-block `.xz` files are decoded in one pass;
//! a raw file has nothing to decode, and standard input cannot be read twice.

use super::xz_blocks::{BlockDecoder, XzBlocks};
use super::{Format, ImageSource, SourceError};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why an image was not checked up front, in the words of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotChecked {
    /// Raw data: nothing to decode, so nothing that can be damaged that way.
    Raw,
    /// Standard input: it can be read only once.
    Stdin,
}

/// What checking would cost against what flashing will take, estimated before either
/// starts, to decide whether the check is cheap enough to run by default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Seconds to decode the whole image on this host.
    pub check_seconds: f64,
    /// Seconds to write and read back what the image holds over a USB 2.0 link.
    pub flash_seconds: f64,
}

/// Decoding speed per core, measured on the benchmark image (rockusb/cli/benches/adapt.sh:
/// a 2 GiB sparse Talos image decoded in about 5 s on 2 cores): about 200 MB/s for xz
/// blocks. gzip and zstd decode on one core at roughly 250 and 800 MB/s.
const XZ_BYTES_PER_SECOND_PER_CORE: f64 = 200e6;
const GZIP_BYTES_PER_SECOND: f64 = 250e6;
const ZSTD_BYTES_PER_SECOND: f64 = 800e6;
/// What a USB 2.0 link carries, written and then read back: 40 MB/s each way.
const LINK_BYTES_PER_SECOND: f64 = 40e6;

impl Estimate {
    /// The estimate for `source`; `None` when its sizes are not known up front.
    ///
    /// The compressed size stands for the bytes that will cross the link: zero runs, which
    /// the flash skips, compress to almost nothing, and data compresses little.
    pub fn for_source(source: &ImageSource) -> Option<Estimate> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(
            source.format,
            source.xz_blocks.is_some(),
            source.stored_len?,
            source.image_len,
            cores,
        )
    }

    /// The estimate from the image's format and sizes and the host's cores; the decoded
    /// size of a stream that does not say it is taken as four times the stored one.
    pub fn new(
        format: Format,
        xz_indexed: bool,
        stored_len: u64,
        decoded_len: Option<u64>,
        cores: usize,
    ) -> Option<Estimate> {
        let stored = stored_len as f64;
        let decoded = decoded_len.map_or(stored * 4.0, |l| l as f64);
        let rate = match format {
            Format::Raw => return None,
            Format::Xz if xz_indexed => XZ_BYTES_PER_SECOND_PER_CORE * cores.max(1) as f64,
            Format::Xz => XZ_BYTES_PER_SECOND_PER_CORE,
            Format::Gzip => GZIP_BYTES_PER_SECOND,
            Format::Zstd => ZSTD_BYTES_PER_SECOND,
        };
        Some(Estimate {
            check_seconds: decoded / rate,
            flash_seconds: 2.0 * stored / LINK_BYTES_PER_SECOND,
        })
    }

    /// Cheap: the check adds at most a tenth to the flash.
    pub fn is_cheap(&self) -> bool {
        self.check_seconds <= 0.1 * self.flash_seconds
    }
}

/// A decode-only pass over the image, running in the background.
pub struct IntegrityCheck {
    name: String,
    handle: JoinHandle<io::Result<u64>>,
    started: Instant,
}

/// What the check found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Checked {
    /// Decoded bytes.
    pub bytes: u64,
    /// From the start of the check to its end.
    pub elapsed: Duration,
}

impl IntegrityCheck {
    /// Starts checking the image `source` was opened from (`path`), or says why not.
    pub fn start(source: &ImageSource, path: &Path) -> Result<IntegrityCheck, NotChecked> {
        if path == Path::new("-") {
            return Err(NotChecked::Stdin);
        }
        let started = Instant::now();
        let handle = match (source.format, &source.xz_blocks) {
            (Format::Raw, _) => return Err(NotChecked::Raw),
            (Format::Xz, Some(blocks)) => {
                let blocks = blocks.clone();
                std::thread::spawn(move || decode_blocks(&blocks))
            }
            _ => {
                let path = path.to_path_buf();
                std::thread::spawn(move || decode_stream(&path))
            }
        };
        Ok(IntegrityCheck {
            name: source.name.clone(),
            handle,
            started,
        })
    }

    /// Waits for the check: the decoded length, or the damage found.
    pub fn wait(self) -> Result<Checked, SourceError> {
        let damaged = |error: io::Error| SourceError::Damaged {
            name: self.name.clone(),
            error,
        };
        let bytes = self
            .handle
            .join()
            .map_err(|_| damaged(io::Error::other("the check stopped unexpectedly")))?
            .map_err(damaged)?;
        Ok(Checked {
            bytes,
            elapsed: self.started.elapsed(),
        })
    }
}

/// Every block decoded (and its check verified by liblzma) on every core.
fn decode_blocks(blocks: &XzBlocks) -> io::Result<u64> {
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> io::Result<u64> {
                    let (mut out, mut decoder) = (Vec::new(), BlockDecoder::new());
                    let mut bytes = 0u64;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(block) = blocks.blocks.get(i) else {
                            return Ok(bytes);
                        };
                        decoder.decode(&blocks.file, block, &mut out).map_err(|e| {
                            // Stop the other workers early: the answer is known.
                            next.store(usize::MAX / 2, Ordering::Relaxed);
                            io::Error::new(
                                e.kind(),
                                format!("block {} (at byte {}): {e}", i + 1, block.offset),
                            )
                        })?;
                        bytes += out.len() as u64;
                    }
                })
            })
            .collect();
        let mut total = 0u64;
        let mut first_error = None;
        for worker in workers {
            match worker.join() {
                Ok(Ok(bytes)) => total += bytes,
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(io::Error::other("a decoding thread stopped"));
                }
            }
        }
        first_error.map_or(Ok(total), Err)
    })
}

/// The whole stream decoded once, front to back.
fn decode_stream(path: &Path) -> io::Result<u64> {
    let source = ImageSource::open(path).map_err(io::Error::other)?;
    let mut decoded = source.into_decoded().map_err(io::Error::other)?;
    io::copy(&mut decoded, &mut io::sink())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_check_is_cheap_for_dense_images_and_not_for_mostly_empty_ones() {
        // The benchmark image: 2.1 GiB decoded from 300 MiB, on 2 cores: about 5.5 s of
        // decoding for about 16 s of flashing.
        let sparse = Estimate::new(Format::Xz, true, 300 * MIB, Some(2150 * MIB), 2).unwrap();
        assert!(!sparse.is_cheap(), "{sparse:?}");
        // Dense: 600 MiB decoded from 500 MiB.
        let dense = Estimate::new(Format::Xz, true, 500 * MIB, Some(600 * MIB), 2).unwrap();
        assert!(dense.is_cheap(), "{dense:?}");
        // The same dense image as one xz block decodes on one core only.
        let single = Estimate::new(Format::Xz, false, 500 * MIB, Some(600 * MIB), 2).unwrap();
        assert!(single.check_seconds > dense.check_seconds);
        assert_eq!(Estimate::new(Format::Raw, false, MIB, Some(MIB), 2), None);
    }
}
