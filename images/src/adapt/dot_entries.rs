//! Puts right the `.` and `..` entries of directories the FAT library created.
//!
//! fatfs 0.3.6, the current release, writes a long-name entry before each of `.` and
//! `..` and gives `..` the root directory's cluster number. The FAT specification wants
//! `.` and `..` as the first two short entries of a directory and `..` = 0 when the
//! parent is the root; `fsck.vfat` rewrites such directories, and firmware that walks
//! `..` may take cluster 2 for a subdirectory. Every new directory's first sector is
//! among the sectors the library wrote, and it is recognisable: no valid directory
//! sector starts with a long-name entry followed by `.`. Each one found becomes
//! `.`, `..`, and two deleted slots.

use super::sector_overlay::SectorOverlay;
use crate::fs::{FsKind, fat};
use crate::read_at::ReadAt;
use std::io;

const ENTRY: usize = 32;
const ATTR_LONG_NAME: u8 = 0x0F;
const ATTR_DIRECTORY: u8 = 0x10;
const DELETED: u8 = 0xE5;
const DOT: &[u8; 11] = b".          ";
const DOT_DOT: &[u8; 11] = b"..         ";

fn is_long_name(entry: &[u8]) -> bool {
    entry[11] == ATTR_LONG_NAME && entry[0] != DELETED && entry[0] != 0
}

fn is_short_dir(entry: &[u8], name: &[u8; 11]) -> bool {
    &entry[..11] == name && entry[11] & ATTR_DIRECTORY != 0 && entry[11] != ATTR_LONG_NAME
}

fn entry_cluster(entry: &[u8]) -> u32 {
    u32::from(u16::from_le_bytes([entry[20], entry[21]])) << 16
        | u32::from(u16::from_le_bytes([entry[26], entry[27]]))
}

fn set_entry_cluster(entry: &mut [u8], cluster: u32) {
    entry[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    entry[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
}

/// Rewrites, in `sector`, a directory start of the shape fatfs 0.3.6 writes
/// (long name, `.`, long name, `..`). Returns false when the sector has another shape.
fn repair_sector(sector: &mut [u8], root_cluster: Option<u32>) -> bool {
    let slot = |i: usize| i * ENTRY..(i + 1) * ENTRY;
    let shaped = is_long_name(&sector[slot(0)])
        && is_short_dir(&sector[slot(1)], DOT)
        && is_long_name(&sector[slot(2)])
        && is_short_dir(&sector[slot(3)], DOT_DOT);
    if !shaped {
        return false;
    }
    let dot: Vec<u8> = sector[slot(1)].to_vec();
    let mut dot_dot: Vec<u8> = sector[slot(3)].to_vec();
    if root_cluster.is_some_and(|root| entry_cluster(&dot_dot) == root) {
        set_entry_cluster(&mut dot_dot, 0);
    }
    sector[slot(0)].copy_from_slice(&dot);
    sector[slot(1)].copy_from_slice(&dot_dot);
    for i in [2, 3] {
        sector[slot(i)].fill(0);
        sector[slot(i)][0] = DELETED;
    }
    true
}

/// Repairs every new directory among the sectors written to `device`; returns how many.
pub(crate) fn repair_new_directories<S: ReadAt>(
    device: &mut SectorOverlay<S>,
) -> io::Result<usize> {
    let boot = device.sector(0)?;
    let root_cluster = match fat::probe(&boot) {
        Some(FsKind::Fat32) => Some(u32::from_le_bytes([boot[44], boot[45], boot[46], boot[47]])),
        // FAT12/16 roots have no cluster; fatfs already writes 0 there.
        Some(_) => None,
        None => {
            return Err(io::Error::other(
                "the partition no longer holds a FAT boot sector",
            ));
        }
    };
    let mut repaired = 0;
    for index in device.written_indices() {
        let mut sector = device.sector(index)?;
        if repair_sector(&mut sector, root_cluster) {
            device.replace_sector(index, sector);
            repaired += 1;
        }
    }
    Ok(repaired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::SECTOR_SIZE;

    fn short(name: &[u8; 11], cluster: u32) -> [u8; 32] {
        let mut e = [0u8; 32];
        e[..11].copy_from_slice(name);
        e[11] = ATTR_DIRECTORY;
        set_entry_cluster(&mut e, cluster);
        e
    }

    fn long() -> [u8; 32] {
        let mut e = [0u8; 32];
        e[0] = 0x41;
        e[11] = ATTR_LONG_NAME;
        e
    }

    /// A directory sector starting with `entries`, zeros after them.
    fn sector_of(entries: &[[u8; 32]]) -> [u8; SECTOR_SIZE as usize] {
        let mut sector = [0u8; SECTOR_SIZE as usize];
        for (i, e) in entries.iter().enumerate() {
            sector[i * 32..(i + 1) * 32].copy_from_slice(e);
        }
        sector
    }

    #[test]
    fn dot_entries_move_to_the_front_and_dot_dot_of_a_root_child_becomes_zero() {
        let mut sector = sector_of(&[long(), short(DOT, 0x1_0005), long(), short(DOT_DOT, 2)]);
        assert!(repair_sector(&mut sector, Some(2)));
        assert_eq!(&sector[..11], DOT);
        assert_eq!(entry_cluster(&sector[..32]), 0x1_0005);
        assert_eq!(&sector[32..43], DOT_DOT);
        assert_eq!(entry_cluster(&sector[32..64]), 0);
        assert_eq!(sector[64], DELETED);
        assert_eq!(sector[96], DELETED);
        // A correct directory start is left alone.
        assert!(!repair_sector(&mut sector, Some(2)));
    }

    #[test]
    fn dot_dot_of_a_deeper_directory_keeps_its_parent() {
        let mut sector = sector_of(&[long(), short(DOT, 9), long(), short(DOT_DOT, 7)]);
        assert!(repair_sector(&mut sector, Some(2)));
        assert_eq!(entry_cluster(&sector[32..64]), 7);
    }
}
