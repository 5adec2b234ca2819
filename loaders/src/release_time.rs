//! The 7-byte release time in a loader header.
//!
//! boot_merger stamps the local wall-clock time, which makes its output
//! irreproducible; here the time is always a parameter so a build can be repeated
//! byte for byte (the CLI passes a flag or `SOURCE_DATE_EPOCH`).

use std::fmt;

use serde::{Serialize, Serializer};

/// Calendar time as stored in the header: u16 year, then month, day, hour, minute, second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ReleaseTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl ReleaseTime {
    /// Encoded size in the header.
    pub const LEN: usize = 7;

    /// Decodes the 7 header bytes.
    pub fn from_bytes(b: [u8; 7]) -> Self {
        ReleaseTime {
            year: u16::from_le_bytes([b[0], b[1]]),
            month: b[2],
            day: b[3],
            hour: b[4],
            minute: b[5],
            second: b[6],
        }
    }

    /// Encodes to the 7 header bytes.
    pub fn to_bytes(self) -> [u8; 7] {
        let y = self.year.to_le_bytes();
        [
            y[0],
            y[1],
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        ]
    }

    /// The UTC calendar time of a Unix timestamp (as in `SOURCE_DATE_EPOCH`).
    /// Years past 65535 saturate.
    pub fn from_unix_seconds(secs: u64) -> Self {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        // Civil-from-days (proleptic Gregorian), shifted so the era starts on 0000-03-01.
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        ReleaseTime {
            year: u16::try_from(year).unwrap_or(u16::MAX),
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    /// True when every field is in its calendar range (files in the wild are
    /// not checked against this; it only feeds warnings).
    pub fn is_plausible(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 61
    }
}

impl fmt::Display for ReleaseTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl Serialize for ReleaseTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_conversion() {
        assert_eq!(
            ReleaseTime::from_unix_seconds(0).to_string(),
            "1970-01-01 00:00:00"
        );
        // 2024-06-28 18:54:12 UTC
        assert_eq!(
            ReleaseTime::from_unix_seconds(1_719_600_852).to_string(),
            "2024-06-28 18:54:12"
        );
        // Leap day.
        assert_eq!(
            ReleaseTime::from_unix_seconds(1_709_208_000).to_string(),
            "2024-02-29 12:00:00"
        );
    }

    #[test]
    fn bytes_round_trip() {
        let t = ReleaseTime::from_bytes([0xe8, 0x07, 6, 28, 18, 54, 12]);
        assert_eq!(t.to_string(), "2024-06-28 18:54:12");
        assert_eq!(t.to_bytes(), [0xe8, 0x07, 6, 28, 18, 54, 12]);
    }
}
