//! Writing an adapted image to a file (`rockusb image adapt`), and giving a stream-only
//! image (gzip, zstd) the random access adapting needs.
//!
//! Output goes to `<output>.partial` and is renamed into place only when complete, so a
//! failure or an interrupted run never leaves a file that looks finished.

use super::{Event, Observer, Phase};
use crate::source::{ImageSource, SourceError, decode};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the output file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    Raw,
    /// Talos's form: xz preset 0, 1 MiB blocks, multi-threaded.
    Xz,
}

impl OutputFormat {
    /// By the output's name: `.xz` is compressed, anything else raw.
    pub fn for_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("xz") => OutputFormat::Xz,
            _ => OutputFormat::Raw,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteImageError {
    #[error("{} already exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {error}; nothing was left behind", path.display())]
    Write { path: PathBuf, error: io::Error },
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// The file a result is written to until it is complete.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Refuses an output that exists, unless `force`.
pub fn check_output(path: &Path, force: bool) -> Result<(), WriteImageError> {
    if path.exists() && !force {
        return Err(WriteImageError::Exists(path.to_path_buf()));
    }
    Ok(())
}

/// Writes the image `source` decodes to `path` (raw or xz), reporting progress; returns
/// the image bytes written.
pub fn write_image(
    source: ImageSource,
    path: &Path,
    format: OutputFormat,
    phase: Phase,
    observer: &mut dyn Observer,
) -> Result<u64, WriteImageError> {
    let total = source.image_len.unwrap_or(0);
    let partial = partial_path(path);
    let failed = |error| WriteImageError::Write {
        path: path.to_path_buf(),
        error,
    };
    let result = (|| -> Result<u64, WriteImageError> {
        let input = source.into_decoded()?;
        let file = File::create(&partial).map_err(failed)?;
        let written = match format {
            OutputFormat::Raw => {
                let mut out = BufWriter::with_capacity(1 << 20, file);
                let n =
                    copy_with_progress(input, &mut out, total, phase, observer).map_err(failed)?;
                let file = out.into_inner().map_err(|e| failed(e.into_error()))?;
                file.sync_all().map_err(failed)?;
                n
            }
            OutputFormat::Xz => {
                let mut out = decode::xz_encoder(file).map_err(failed)?;
                let n =
                    copy_with_progress(input, &mut out, total, phase, observer).map_err(failed)?;
                let file = out.finish().map_err(failed)?;
                file.sync_all().map_err(failed)?;
                n
            }
        };
        std::fs::rename(&partial, path).map_err(failed)?;
        Ok(written)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn copy_with_progress(
    mut input: impl Read,
    out: &mut impl Write,
    total: u64,
    phase: Phase,
    observer: &mut dyn Observer,
) -> io::Result<u64> {
    observer.event(Event::PhaseStart {
        phase,
        total_bytes: total,
    });
    let start = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        done += n as u64;
        observer.event(Event::Progress {
            phase,
            done_bytes: done,
        });
    }
    observer.event(Event::PhaseDone {
        phase,
        bytes: done,
        seconds: start.elapsed().as_secs_f64(),
    });
    Ok(done)
}

/// A decoded copy of a stream-only image (gzip, zstd, stdin) beside `near`, removed when
/// dropped, so it can be adapted like a raw file.
pub struct Spilled {
    path: PathBuf,
}

impl Spilled {
    /// Decodes `source` into `<near>.source.partial`.
    pub fn decode(
        source: ImageSource,
        near: &Path,
        observer: &mut dyn Observer,
    ) -> Result<Spilled, WriteImageError> {
        let mut name = near.file_name().unwrap_or_default().to_os_string();
        name.push(".source");
        let path = near.with_file_name(name);
        let spilled = Spilled {
            path: partial_path(&path),
        };
        // The decoded copy itself is written through its own `.partial`, then renamed.
        write_image(
            source,
            &spilled.path,
            OutputFormat::Raw,
            Phase::Decompress,
            observer,
        )?;
        Ok(spilled)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Spilled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
