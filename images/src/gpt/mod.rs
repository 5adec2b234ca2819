//! GUID Partition Tables: protective MBR, both header copies, both entry arrays, and a
//! precise list of what is wrong.
//!
//! [`GptReport::read`] never fails on bad table contents: every defect becomes a
//! [`GptProblem`] in the report, so `rockusb gpt` can print a damaged table and the
//! pre-flight check can say exactly what is broken. Only I/O failures are errors.
//!
//! The entry array is read wherever the header puts it, so Talos images whose array is
//! pushed out to LBA 2 + 20480 (`partitionOptions.offset`) parse like any other.

mod display;
pub mod entry;
pub mod guid;
pub mod header;
pub mod mbr;
pub mod problem;

pub use entry::Partition;
pub use guid::Guid;
pub use header::{GptHeader, HeaderError};
pub use mbr::MbrKind;
pub use problem::{Copy, GptProblem};

use crate::read_at::ReadAt;
use header::CRC32;
use std::io;

/// Entry arrays larger than this are refused as implausible (the usual one is 16 KiB);
/// the cap keeps a corrupt header from making the reader allocate gigabytes.
pub const MAX_ENTRY_ARRAY_LEN: u64 = 4 * 1024 * 1024;

/// How to read a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptReadOptions {
    /// Logical sector size; `None` probes 512 then 4096 for the header signature.
    pub sector_size: Option<u64>,
    /// Length of the image or storage, if known: the backup header must sit in its
    /// last LBA and every partition must end inside it.
    pub len: Option<u64>,
    /// What `len` measures, for messages ("image" or "storage").
    pub len_what: &'static str,
    /// Read and check the backup copy. A streamed image has no tail yet when the
    /// pre-flight check runs; the flasher checks the backup later from the kept tail.
    pub check_backup: bool,
}

impl Default for GptReadOptions {
    fn default() -> Self {
        Self {
            sector_size: None,
            len: None,
            len_what: "image",
            check_backup: true,
        }
    }
}

/// A header copy whose header CRC and entry-array CRC are both valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptCopy {
    pub which: Copy,
    /// The LBA the header was read from.
    pub lba: u64,
    pub header: GptHeader,
    /// The used entries, in slot order.
    pub partitions: Vec<Partition>,
    /// The raw entry array, kept to compare the two copies.
    entry_array: Vec<u8>,
}

impl GptCopy {
    /// The whole entry array as stored (used and empty slots), whose CRC the header
    /// checked: a tool that moves partitions rewrites only their LBAs in it.
    pub fn entry_array(&self) -> &[u8] {
        &self.entry_array
    }
}

/// Errors that stop reading altogether (bad contents never do).
#[derive(Debug, thiserror::Error)]
pub enum GptReadError {
    #[error("could not read {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

/// Everything found in LBA 0, both headers and both entry arrays.
#[derive(Debug, Clone)]
pub struct GptReport {
    pub sector_size: u64,
    /// The length the table was checked against, if known.
    pub len: Option<u64>,
    pub mbr: MbrKind,
    pub primary: Option<GptCopy>,
    pub backup: Option<GptCopy>,
    /// True when the backup was looked for (see [`GptReadOptions::check_backup`]).
    pub backup_checked: bool,
    pub problems: Vec<GptProblem>,
}

/// Reads `buf.len()` bytes; `Ok(None)` when they lie beyond the source's data.
fn read_opt(
    src: &mut (impl ReadAt + ?Sized),
    offset: u64,
    buf: &mut [u8],
    what: impl FnOnce() -> String,
) -> Result<Option<()>, GptReadError> {
    match src.read_exact_at(offset, buf) {
        Ok(()) => Ok(Some(())),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(source) => Err(GptReadError::Io {
            what: what(),
            source,
        }),
    }
}

fn has_signature(src: &mut (impl ReadAt + ?Sized), sector_size: u64) -> Result<bool, GptReadError> {
    let mut sig = [0u8; 8];
    let found = read_opt(src, sector_size, &mut sig, || {
        format!("LBA 1 at {sector_size}-byte sectors")
    })?;
    Ok(found.is_some() && &sig == header::GPT_SIGNATURE)
}

impl GptReport {
    /// Reads and checks the table from `src`.
    pub fn read(mut src: impl ReadAt, options: GptReadOptions) -> Result<GptReport, GptReadError> {
        let src = &mut src;
        let sector_size = match options.sector_size {
            Some(size) => size,
            None if has_signature(src, 512)? => 512,
            None if has_signature(src, 4096)? => 4096,
            None => 512,
        };
        let mut problems = Vec::new();

        let mut sector0 = [0u8; 512];
        let mbr = match read_opt(src, 0, &mut sector0, || "LBA 0".into())? {
            Some(()) => mbr::parse_mbr(&sector0),
            None => MbrKind::Missing,
        };
        match &mbr {
            MbrKind::Missing => problems.push(GptProblem::NoProtectiveMbr),
            MbrKind::Hybrid { types } => problems.push(GptProblem::HybridMbr {
                types: types.clone(),
            }),
            MbrKind::Legacy { types } => problems.push(GptProblem::MbrWithoutProtectiveEntry {
                types: types.clone(),
            }),
            MbrKind::Protective { .. } => {}
        }

        let mut reader = CopyReader {
            sector_size,
            len: options.len,
            problems: &mut problems,
        };
        let primary = reader.read_copy(src, Copy::Primary, 1)?;

        // The last LBA, when the length is known; the backup header must be there.
        let last_lba = options
            .len
            .map(|len| len / sector_size)
            .filter(|&n| n >= 2)
            .map(|n| n - 1);
        if let (Some(p), Some(last)) = (&primary, last_lba) {
            if p.header.alternate_lba != last {
                reader.problems.push(GptProblem::BackupNotAtEnd {
                    alternate_lba: p.header.alternate_lba,
                    last_lba: last,
                    len_what: options.len_what,
                });
            }
        }
        let backup = if !options.check_backup {
            None
        } else {
            match primary
                .as_ref()
                .map(|p| p.header.alternate_lba)
                .or(last_lba)
            {
                Some(lba) => reader.read_copy(src, Copy::Backup, lba)?,
                None => {
                    reader.problems.push(GptProblem::BackupNotLocated);
                    None
                }
            }
        };

        let mut report = GptReport {
            sector_size,
            len: options.len,
            mbr,
            primary,
            backup,
            backup_checked: options.check_backup,
            problems,
        };
        report.check_copies_agree();
        report.check_layout(options.len_what);
        Ok(report)
    }

    /// The copy to trust: the primary when valid, else the backup.
    pub fn table(&self) -> Option<&GptCopy> {
        self.primary.as_ref().or(self.backup.as_ref())
    }

    /// The used partitions of [`Self::table`] (empty without a valid copy).
    pub fn partitions(&self) -> &[Partition] {
        self.table().map_or(&[], |t| t.partitions.as_slice())
    }

    pub fn partition_named(&self, name: &str) -> Option<&Partition> {
        self.partitions().iter().find(|p| p.name == name)
    }

    /// True when neither header location holds a GPT signature: the image simply has
    /// no GPT (as opposed to a damaged one).
    pub fn is_absent(&self) -> bool {
        self.table().is_none()
            && !self.problems.iter().any(|p| match p {
                GptProblem::Header { error, .. } => *error != HeaderError::NoSignature,
                GptProblem::EntriesCrcMismatch { .. }
                | GptProblem::EntryArrayInvalid { .. }
                | GptProblem::EntriesBeyondData { .. } => true,
                _ => false,
            })
    }

    /// True when nothing at all is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    fn check_copies_agree(&mut self) {
        let (Some(p), Some(b)) = (&self.primary, &self.backup) else {
            return;
        };
        let (ph, bh) = (&p.header, &b.header);
        let mut differ = |field: &'static str, a: String, b: String| {
            if a != b {
                self.problems.push(GptProblem::CopiesDiffer {
                    field,
                    primary: a,
                    backup: b,
                });
            }
        };
        // A field both headers must hold alike.
        let mut same = |field, get: fn(&GptHeader) -> String| differ(field, get(ph), get(bh));
        same("the disk GUID", |h| h.disk_guid.to_string());
        same("the first usable LBA", |h| h.first_usable_lba.to_string());
        same("the last usable LBA", |h| h.last_usable_lba.to_string());
        same("the entry count", |h| h.entry_count.to_string());
        same("the entry size", |h| h.entry_size.to_string());
        differ(
            "the alternate LBA (each must point at the other)",
            format!("{} -> {}", ph.my_lba, ph.alternate_lba),
            format!("{} -> {}", bh.alternate_lba, bh.my_lba),
        );
        if p.entry_array != b.entry_array {
            let size = usize::try_from(ph.entry_size).unwrap_or(128).max(128);
            let number = p
                .entry_array
                .chunks(size)
                .zip(b.entry_array.chunks(size))
                .position(|(x, y)| x != y)
                .map_or(0, |i| u32::try_from(i + 1).unwrap_or(u32::MAX));
            self.problems.push(GptProblem::EntriesDiffer { number });
        }
    }

    /// Usable range, entry-array placement, partition bounds and overlaps of the
    /// trusted copy.
    fn check_layout(&mut self, len_what: &'static str) {
        let Some(table) = self.table() else { return };
        let h = &table.header;
        let mut found = Vec::new();
        if h.first_usable_lba > h.last_usable_lba {
            found.push(GptProblem::UsableRangeInvalid {
                first: h.first_usable_lba,
                last: h.last_usable_lba,
            });
        }
        let backup_lba = match table.which {
            Copy::Primary => h.alternate_lba,
            Copy::Backup => h.my_lba,
        };
        if h.last_usable_lba >= backup_lba {
            found.push(GptProblem::UsableRangePastBackup {
                last_usable: h.last_usable_lba,
                backup_lba,
            });
        }
        for copy in [&self.primary, &self.backup].into_iter().flatten() {
            let array_lbas = copy.header.entries_len().div_ceil(self.sector_size);
            let first = copy.header.entries_lba;
            let last = first.saturating_add(array_lbas).saturating_sub(1);
            if array_lbas > 0 && first <= h.last_usable_lba && last >= h.first_usable_lba {
                found.push(GptProblem::EntriesOverlapUsable {
                    which: copy.which,
                    first,
                    last,
                    usable_first: h.first_usable_lba,
                    usable_last: h.last_usable_lba,
                });
            }
        }
        let last_lba = self
            .len
            .map(|len| len / self.sector_size)
            .and_then(|n| n.checked_sub(1));
        let mut sorted: Vec<&Partition> = Vec::new();
        for p in &table.partitions {
            if p.first_lba > p.last_lba {
                found.push(GptProblem::PartitionReversed {
                    number: p.number,
                    name: p.name.clone(),
                    first: p.first_lba,
                    last: p.last_lba,
                });
                continue;
            }
            if p.first_lba < h.first_usable_lba || p.last_lba > h.last_usable_lba {
                found.push(GptProblem::PartitionOutsideUsable {
                    number: p.number,
                    name: p.name.clone(),
                    first: p.first_lba,
                    last: p.last_lba,
                    usable_first: h.first_usable_lba,
                    usable_last: h.last_usable_lba,
                });
            }
            if let Some(last_lba) = last_lba.filter(|&l| p.last_lba > l) {
                found.push(GptProblem::PartitionBeyondEnd {
                    number: p.number,
                    name: p.name.clone(),
                    last: p.last_lba,
                    last_lba,
                    len_what,
                });
            }
            sorted.push(p);
        }
        // Sorted by start, each partition can only overlap the one reaching furthest
        // among those before it: one pass finds every overlapping neighbour.
        sorted.sort_by_key(|p| (p.first_lba, p.last_lba));
        let mut furthest: Option<&Partition> = None;
        for p in sorted {
            if let Some(f) = furthest {
                if p.first_lba <= f.last_lba {
                    found.push(GptProblem::PartitionsOverlap {
                        a: f.number,
                        a_name: f.name.clone(),
                        b: p.number,
                        b_name: p.name.clone(),
                        first: p.first_lba,
                        last: p.last_lba.min(f.last_lba),
                    });
                }
            }
            if furthest.is_none_or(|f| p.last_lba > f.last_lba) {
                furthest = Some(p);
            }
        }
        self.problems.extend(found);
    }
}

/// Reads one header copy and its entry array, recording what is wrong.
struct CopyReader<'a> {
    sector_size: u64,
    len: Option<u64>,
    problems: &'a mut Vec<GptProblem>,
}

impl CopyReader<'_> {
    fn available(&self) -> String {
        match self.len {
            Some(len) => format!("{len} bytes"),
            None => "only the start of the image is available".into(),
        }
    }

    fn read_copy(
        &mut self,
        src: &mut (impl ReadAt + ?Sized),
        which: Copy,
        lba: u64,
    ) -> Result<Option<GptCopy>, GptReadError> {
        let ss = self.sector_size;
        let Some(offset) = lba.checked_mul(ss) else {
            self.problems.push(GptProblem::HeaderBeyondData {
                which,
                lba,
                available: self.available(),
            });
            return Ok(None);
        };
        let mut sector = vec![0u8; usize::try_from(ss).unwrap_or(512)];
        if read_opt(src, offset, &mut sector, || {
            format!("the {which} GPT header")
        })?
        .is_none()
        {
            self.problems.push(GptProblem::HeaderBeyondData {
                which,
                lba,
                available: self.available(),
            });
            return Ok(None);
        }
        let header = match GptHeader::parse(&sector) {
            Ok(h) => h,
            Err(error) => {
                self.problems.push(GptProblem::Header { which, lba, error });
                return Ok(None);
            }
        };
        if header.my_lba != lba {
            self.problems.push(GptProblem::HeaderWrongLocation {
                which,
                lba,
                recorded: header.my_lba,
            });
        }
        let invalid = |reason: String| GptProblem::EntryArrayInvalid { which, reason };
        if header.entry_size < 128 || header.entry_size % 128 != 0 {
            self.problems.push(invalid(format!(
                "entry size {} is not a multiple of 128 bytes",
                header.entry_size
            )));
            return Ok(None);
        }
        let len = header.entries_len();
        if len > MAX_ENTRY_ARRAY_LEN {
            self.problems.push(invalid(format!(
                "{} entries of {} bytes make {len} bytes, more than the {MAX_ENTRY_ARRAY_LEN} this reader accepts",
                header.entry_count, header.entry_size
            )));
            return Ok(None);
        }
        // Past the known end there is nothing to read: say so without allocating.
        let array_offset = header
            .entries_lba
            .checked_mul(ss)
            .filter(|off| self.len.is_none_or(|l| off.saturating_add(len) <= l));
        let mut array = vec![0u8; usize::try_from(len).unwrap_or(0)];
        let got = match array_offset {
            Some(off) => read_opt(src, off, &mut array, || {
                format!("the {which} GPT entry array")
            })?,
            None => None,
        };
        if got.is_none() {
            self.problems.push(GptProblem::EntriesBeyondData {
                which,
                lba: header.entries_lba,
                len,
            });
            return Ok(None);
        }
        let computed = CRC32.checksum(&array);
        if computed != header.entries_crc32 {
            self.problems.push(GptProblem::EntriesCrcMismatch {
                which,
                stored: header.entries_crc32,
                computed,
            });
            return Ok(None);
        }
        let partitions = entry::parse_entries(&array, header.entry_size as usize);
        Ok(Some(GptCopy {
            which,
            lba,
            header,
            partitions,
            entry_array: array,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal but complete GPT on `sectors` sectors of `ss` bytes with one partition.
    fn synthetic(ss: usize, sectors: u64, part: &Partition) -> Vec<u8> {
        let mut image = vec![0u8; ss * sectors as usize];
        image[510] = 0x55;
        image[511] = 0xAA;
        image[446 + 4] = 0xEE;
        let array_lbas = (128 * 128_u64).div_ceil(ss as u64);
        let mut array = vec![0u8; 128 * 128];
        array[..128].copy_from_slice(&entry::entry_to_bytes(part));
        let crc = CRC32.checksum(&array);
        let last = sectors - 1;
        let header = |my: u64, alt: u64, entries: u64| GptHeader {
            revision: 0x0001_0000,
            header_size: 92,
            header_crc32: 0,
            my_lba: my,
            alternate_lba: alt,
            first_usable_lba: 2 + array_lbas,
            last_usable_lba: last - 1 - array_lbas,
            disk_guid: Guid([9; 16]),
            entries_lba: entries,
            entry_count: 128,
            entry_size: 128,
            entries_crc32: crc,
        };
        for (h, array_lba) in [
            (header(1, last, 2), 2),
            (header(last, 1, last - array_lbas), last - array_lbas),
        ] {
            let at = h.my_lba as usize * ss;
            image[at..at + 92].copy_from_slice(&h.to_bytes());
            let at = array_lba as usize * ss;
            image[at..at + array.len()].copy_from_slice(&array);
        }
        image
    }

    fn part() -> Partition {
        part_at(10, 20)
    }

    fn part_at(first_lba: u64, last_lba: u64) -> Partition {
        Partition {
            number: 1,
            type_guid: "0FC63DAF-8483-4772-8E79-3D69D8477DE4".parse().unwrap(),
            unique_guid: Guid([3; 16]),
            first_lba,
            last_lba,
            attributes: 0,
            name: "data".into(),
        }
    }

    #[test]
    fn a_4k_sector_table_is_found_by_probing() {
        let image = synthetic(4096, 256, &part());
        let options = GptReadOptions {
            len: Some(image.len() as u64),
            ..GptReadOptions::default()
        };
        let report = GptReport::read(image.as_slice(), options).unwrap();
        assert_eq!(report.sector_size, 4096);
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(report.backup.as_ref().unwrap().lba, 255);
        let p = report.partition_named("data").unwrap();
        assert_eq!(
            p.byte_range(report.sector_size),
            Some(crate::ByteRange::new(10 * 4096, 11 * 4096))
        );
    }

    #[test]
    fn a_backup_that_differs_from_the_primary_is_reported() {
        let mut image = synthetic(512, 128, &part_at(40, 50));
        // Re-sign the backup header with another disk GUID.
        let backup = GptHeader::parse(&image[127 * 512..128 * 512]).unwrap();
        let other = GptHeader {
            disk_guid: Guid([4; 16]),
            ..backup
        };
        image[127 * 512..127 * 512 + 92].copy_from_slice(&other.to_bytes());
        let report = GptReport::read(image.as_slice(), GptReadOptions::default()).unwrap();
        assert_eq!(
            report.problems,
            vec![GptProblem::CopiesDiffer {
                field: "the disk GUID",
                primary: Guid([9; 16]).to_string(),
                backup: Guid([4; 16]).to_string(),
            }]
        );
    }

    #[test]
    fn an_implausibly_large_entry_array_is_refused_without_allocating_it() {
        let mut image = synthetic(512, 128, &part_at(40, 50));
        let h = GptHeader::parse(&image[512..1024]).unwrap();
        let huge = GptHeader {
            entry_count: u32::MAX,
            entry_size: 1 << 16,
            ..h
        };
        image[512..512 + 92].copy_from_slice(&huge.to_bytes());
        let options = GptReadOptions {
            len: Some(image.len() as u64),
            ..GptReadOptions::default()
        };
        let report = GptReport::read(image.as_slice(), options).unwrap();
        assert!(matches!(
            report.problems.first(),
            Some(GptProblem::EntryArrayInvalid {
                which: Copy::Primary,
                ..
            })
        ));
        assert_eq!(report.table().unwrap().which, Copy::Backup);
    }
}
