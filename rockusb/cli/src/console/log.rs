//! The `--log FILE` writer: what the board sends, one line per line, each prefixed with
//! the time it began.

use super::lines::{Line, LineSplitter};
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Appends timestamped lines to a log file. Appending keeps earlier sessions: a board that
/// is power-cycled again and again is one story told across several consoles.
pub struct LogWriter {
    path: PathBuf,
    file: BufWriter<File>,
    lines: LineSplitter,
}

impl LogWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| {
                format!(
                    "cannot open the log file {} (does its folder exist and may you write there?)",
                    path.display()
                )
            })?;
        Ok(LogWriter {
            path: path.to_path_buf(),
            file: BufWriter::new(file),
            lines: LineSplitter::default(),
        })
    }

    /// Logs the complete lines among `bytes`, and flushes them so `tail -f` sees them now.
    pub fn received(&mut self, bytes: &[u8], now: SystemTime) -> Result<()> {
        for line in self.lines.push(bytes, now) {
            self.write_line(&line)?;
        }
        self.file.flush().with_context(|| self.write_error())
    }

    /// Logs the unfinished last line, if any, and flushes.
    pub fn finish(&mut self) -> Result<()> {
        if let Some(line) = self.lines.finish() {
            self.write_line(&line)?;
        }
        self.file.flush().with_context(|| self.write_error())
    }

    fn write_line(&mut self, line: &Line) -> Result<()> {
        writeln!(self.file, "{} {}", line.timestamp(), line.text)
            .with_context(|| self.write_error())
    }

    fn write_error(&self) -> String {
        format!(
            "cannot write the log file {} (disk full?)",
            self.path.display()
        )
    }
}
