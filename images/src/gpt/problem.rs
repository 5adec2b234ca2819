//! Everything that can be wrong with a GPT, each worded to say exactly what was found.

use super::header::HeaderError;
use std::fmt;

/// Which of the two copies of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    Primary,
    Backup,
}

impl fmt::Display for Copy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Copy::Primary => "primary",
            Copy::Backup => "backup",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GptProblem {
    #[error("LBA 0 has no MBR boot signature 0x55AA, so there is no protective MBR")]
    NoProtectiveMbr,
    #[error("LBA 0 holds a hybrid MBR (partition types {types:02x?}) instead of a protective one")]
    HybridMbr { types: Vec<u8> },
    #[error("LBA 0 holds an MBR without a 0xEE protective entry (partition types {types:02x?})")]
    MbrWithoutProtectiveEntry { types: Vec<u8> },
    #[error("{which} header (LBA {lba}): {error}")]
    Header {
        which: Copy,
        lba: u64,
        error: HeaderError,
    },
    #[error("{which} header at LBA {lba} lies beyond the end of the data ({available})")]
    HeaderBeyondData {
        which: Copy,
        lba: u64,
        available: String,
    },
    #[error(
        "the backup header cannot be located: the primary header is invalid and the image length is unknown"
    )]
    BackupNotLocated,
    #[error("{which} header at LBA {lba} records its own position as LBA {recorded}")]
    HeaderWrongLocation {
        which: Copy,
        lba: u64,
        recorded: u64,
    },
    #[error(
        "the primary header places the backup header at LBA {alternate_lba}, but the last LBA of the {len_what} is {last_lba}{}",
        backup_short_hint(*alternate_lba, *last_lba)
    )]
    BackupNotAtEnd {
        alternate_lba: u64,
        last_lba: u64,
        len_what: &'static str,
    },
    #[error("{which} partition-entry array is unusable: {reason}")]
    EntryArrayInvalid { which: Copy, reason: String },
    #[error(
        "{which} partition-entry array (LBA {lba}, {len} bytes) lies beyond the end of the data"
    )]
    EntriesBeyondData { which: Copy, lba: u64, len: u64 },
    #[error(
        "{which} partition-entry array CRC mismatch: stored 0x{stored:08x}, computed 0x{computed:08x}"
    )]
    EntriesCrcMismatch {
        which: Copy,
        stored: u32,
        computed: u32,
    },
    #[error(
        "{which} partition-entry array (LBAs {first}..={last}) overlaps the usable LBAs {usable_first}..={usable_last}"
    )]
    EntriesOverlapUsable {
        which: Copy,
        first: u64,
        last: u64,
        usable_first: u64,
        usable_last: u64,
    },
    #[error("usable LBA range {first}..={last} is empty or reversed")]
    UsableRangeInvalid { first: u64, last: u64 },
    #[error("the last usable LBA {last_usable} is not below the backup header's LBA {backup_lba}")]
    UsableRangePastBackup { last_usable: u64, backup_lba: u64 },
    #[error("primary and backup headers disagree on {field}: primary {primary}, backup {backup}")]
    CopiesDiffer {
        field: &'static str,
        primary: String,
        backup: String,
    },
    #[error("primary and backup partition-entry arrays differ (entry {number})")]
    EntriesDiffer { number: u32 },
    #[error("partition {number} ({name:?}) is reversed: first LBA {first} > last LBA {last}")]
    PartitionReversed {
        number: u32,
        name: String,
        first: u64,
        last: u64,
    },
    #[error(
        "partition {number} ({name:?}, LBAs {first}..={last}) lies outside the usable LBAs {usable_first}..={usable_last}"
    )]
    PartitionOutsideUsable {
        number: u32,
        name: String,
        first: u64,
        last: u64,
        usable_first: u64,
        usable_last: u64,
    },
    #[error(
        "partition {number} ({name:?}) ends at LBA {last}, beyond the {len_what}'s last LBA {last_lba}"
    )]
    PartitionBeyondEnd {
        number: u32,
        name: String,
        last: u64,
        last_lba: u64,
        len_what: &'static str,
    },
    #[error("partitions {a} ({a_name:?}) and {b} ({b_name:?}) overlap at LBAs {first}..={last}")]
    PartitionsOverlap {
        a: u32,
        a_name: String,
        b: u32,
        b_name: String,
        first: u64,
        last: u64,
    },
}

impl GptProblem {
    /// True for damage to the table itself (a CRC or structural error), as opposed to an
    /// unusual but readable arrangement such as a hybrid MBR.
    pub fn is_corruption(&self) -> bool {
        !matches!(
            self,
            GptProblem::HybridMbr { .. } | GptProblem::MbrWithoutProtectiveEntry { .. }
        )
    }
}

/// A table that ends before the storage does is what an image smaller than the storage
/// leaves behind; say so, since it is expected right after flashing.
fn backup_short_hint(alternate_lba: u64, last_lba: u64) -> &'static str {
    if alternate_lba < last_lba {
        " (expected right after flashing an image smaller than the storage: Talos moves the \
         backup table to the end at first boot, as `sgdisk -e` does)"
    } else {
        ""
    }
}
