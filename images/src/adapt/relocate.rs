//! Where everything goes: one shift for all partitions, and the new table's geometry.

use super::AdaptError;
use super::source::SourceImage;
use crate::gpt::Partition;
use crate::layout::{BoardLayout, SECTOR_SIZE};

/// The output's table geometry and the moved partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relocation {
    /// Sectors every partition moves by (positive: towards the end).
    pub delta_lbas: i64,
    /// Output length in bytes: the source's, plus the shift, so the space after the last
    /// partition keeps its size.
    pub len: u64,
    /// Sectors of one entry array copy.
    pub entry_lbas: u64,
    pub primary_entries_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub backup_entries_lba: u64,
    /// The backup header's LBA: the output's last sector.
    pub last_lba: u64,
    /// The moved entries, in the source's slot order.
    pub partitions: Vec<Partition>,
}

pub(crate) fn relocate(
    source: &SourceImage,
    layout: &BoardLayout,
) -> Result<Relocation, AdaptError> {
    let overflow = |reason: String| AdaptError::LayoutOverflow {
        board: layout.display_name,
        reason,
    };
    let entries_len = source.header.entries_len();
    let entry_lbas = entries_len.div_ceil(SECTOR_SIZE);
    let primary_entries_lba = layout.gpt_entries_lba();
    let first_usable_lba = primary_entries_lba + entry_lbas;
    let new_first_lba = layout.first_partition_lba();
    if first_usable_lba > new_first_lba {
        return Err(overflow(format!(
            "the source's entry array ({entries_len} bytes) does not fit between LBA {primary_entries_lba} and the first partition at LBA {new_first_lba}"
        )));
    }

    check_partitions_can_move(source, entry_lbas)?;
    let old_first_lba = source
        .partitions
        .iter()
        .map(|p| p.first_lba)
        .min()
        .ok_or_else(|| overflow("the image has no partitions".into()))?;

    // Every quantity below is checked: a hostile table must give an error, not a wrap.
    let delta = i128::from(new_first_lba) - i128::from(old_first_lba);
    let delta_lbas = i64::try_from(delta)
        .map_err(|_| overflow(format!("a shift of {delta} sectors is out of range")))?;
    let shift = |lba: u64| u64::try_from(i128::from(lba) + delta).ok();
    let old_lbas = source.len / SECTOR_SIZE;
    let lbas = shift(old_lbas)
        .filter(|&n| n > first_usable_lba + entry_lbas + 1)
        .ok_or_else(|| {
            overflow(format!(
                "shifting by {delta} sectors leaves no room for the backup table"
            ))
        })?;
    let len = lbas
        .checked_mul(SECTOR_SIZE)
        .ok_or_else(|| overflow(format!("an output of {lbas} sectors is too large")))?;
    let last_lba = lbas - 1;
    let backup_entries_lba = last_lba - entry_lbas;
    let last_usable_lba = backup_entries_lba - 1;

    let mut partitions = Vec::with_capacity(source.partitions.len());
    for p in &source.partitions {
        let moved = match (shift(p.first_lba), shift(p.last_lba)) {
            (Some(first), Some(last)) if first >= first_usable_lba && last <= last_usable_lba => {
                Partition {
                    first_lba: first,
                    last_lba: last,
                    ..p.clone()
                }
            }
            _ => {
                return Err(overflow(format!(
                    "partition {} ({:?}) at LBAs {}..={} would leave the usable LBAs {first_usable_lba}..={last_usable_lba} when moved by {delta} sectors",
                    p.number, p.name, p.first_lba, p.last_lba
                )));
            }
        };
        partitions.push(moved);
    }
    Ok(Relocation {
        delta_lbas,
        len,
        entry_lbas,
        primary_entries_lba,
        first_usable_lba,
        last_usable_lba,
        backup_entries_lba,
        last_lba,
        partitions,
    })
}

/// A partition moves with its contents only if those contents are well defined: its
/// entry is not reversed, it lies inside the table's usable space and the image, and no
/// other partition claims the same sectors.
fn check_partitions_can_move(source: &SourceImage, entry_lbas: u64) -> Result<(), AdaptError> {
    let cannot = |p: &Partition, reason: String| AdaptError::PartitionCannotMove {
        number: p.number,
        name: p.name.clone(),
        reason,
    };
    let h = &source.header;
    // The source's own backup table occupies its last 1 + entry_lbas sectors.
    let data_end_lba = (source.len / SECTOR_SIZE).saturating_sub(1 + entry_lbas);
    for p in &source.partitions {
        if p.first_lba > p.last_lba {
            return Err(cannot(
                p,
                format!(
                    "its entry is reversed (first LBA {} after last LBA {}): the table is corrupt",
                    p.first_lba, p.last_lba
                ),
            ));
        }
        if p.last_lba >= data_end_lba {
            return Err(cannot(
                p,
                format!(
                    "it ends at LBA {}, but the image's data ends at LBA {} where its backup table begins: the image is truncated or its table is wrong",
                    p.last_lba,
                    data_end_lba.saturating_sub(1)
                ),
            ));
        }
        if p.first_lba < h.first_usable_lba || p.last_lba > h.last_usable_lba {
            return Err(cannot(
                p,
                format!(
                    "it lies at LBAs {}..={}, outside the usable LBAs {}..={} its table declares",
                    p.first_lba, p.last_lba, h.first_usable_lba, h.last_usable_lba
                ),
            ));
        }
    }
    let mut by_start: Vec<&Partition> = source.partitions.iter().collect();
    by_start.sort_by_key(|p| (p.first_lba, p.last_lba));
    for pair in by_start.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if b.first_lba <= a.last_lba {
            return Err(cannot(
                b,
                format!(
                    "it overlaps partition {} ({:?}) at LBAs {}..={}: the table is corrupt",
                    a.number,
                    a.name,
                    b.first_lba,
                    a.last_lba.min(b.last_lba)
                ),
            ));
        }
    }
    Ok(())
}
