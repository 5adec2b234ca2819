//! Cutting what the board sends into lines, each stamped with the time its first byte
//! arrived: the log file and `--json` both want whole lines with the time they began.

use std::time::SystemTime;

/// A received line, without its line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub time: SystemTime,
    /// The text; bytes that are not UTF-8 become U+FFFD.
    pub text: String,
}

impl Line {
    /// The time as RFC 3339 in UTC with milliseconds, e.g. `2025-01-31T08:00:00.123Z`.
    pub fn timestamp(&self) -> String {
        humantime::format_rfc3339_millis(self.time).to_string()
    }
}

/// Collects received bytes until a line ends (`\n`; a `\r` before it is dropped).
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
    started: Option<SystemTime>,
}

impl LineSplitter {
    /// Adds bytes received at `now` and returns the lines they complete.
    pub fn push(&mut self, bytes: &[u8], now: SystemTime) -> Vec<Line> {
        let mut lines = Vec::new();
        for &byte in bytes {
            let started = *self.started.get_or_insert(now);
            if byte == b'\n' {
                if self.pending.last() == Some(&b'\r') {
                    self.pending.pop();
                }
                lines.push(Line {
                    time: started,
                    text: String::from_utf8_lossy(&self.pending).into_owned(),
                });
                self.pending.clear();
                self.started = None;
            } else {
                self.pending.push(byte);
            }
        }
        lines
    }

    /// The unfinished line, if any (a prompt waiting for input, or the last words before
    /// the console closed).
    pub fn finish(&mut self) -> Option<Line> {
        let time = self.started.take()?;
        let line = Line {
            time,
            text: String::from_utf8_lossy(&self.pending).into_owned(),
        };
        self.pending.clear();
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn lines_carry_the_time_of_their_first_byte() {
        let mut splitter = LineSplitter::default();
        assert!(splitter.push(b"U-Boot 20", at(1)).is_empty());
        let lines = splitter.push(b"24.01\r\nDRAM:  16 GiB\r\n=> ", at(2));
        let texts: Vec<(&str, SystemTime)> =
            lines.iter().map(|l| (l.text.as_str(), l.time)).collect();
        assert_eq!(texts, [("U-Boot 2024.01", at(1)), ("DRAM:  16 GiB", at(2))]);
        let prompt = splitter.finish().unwrap();
        assert_eq!((prompt.text.as_str(), prompt.time), ("=> ", at(2)));
        assert_eq!(splitter.finish(), None);
    }

    #[test]
    fn bytes_that_are_not_utf8_do_not_stop_the_line() {
        let mut splitter = LineSplitter::default();
        let lines = splitter.push(b"a\xffb\n", at(0));
        assert_eq!(lines[0].text, "a\u{fffd}b");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let line = Line {
            time: at(1_700_000_000) + Duration::from_millis(42),
            text: String::new(),
        };
        assert_eq!(line.timestamp(), "2023-11-14T22:13:20.042Z");
    }
}
