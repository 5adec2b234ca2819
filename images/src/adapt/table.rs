//! The bytes of the output's partition table: protective MBR, both headers, both arrays.

use super::relocate::Relocation;
use super::source::SourceImage;
use crate::gpt::GptHeader;
use crate::layout::SECTOR_SIZE;
use crc::{CRC_32_ISO_HDLC, Crc};

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// The rewritten table, ready to be placed.
#[derive(Debug, Clone)]
pub(crate) struct TableBytes {
    pub mbr: [u8; 512],
    /// LBA 1: the primary header padded to a sector.
    pub primary_header: [u8; 512],
    /// The entry array, written twice: after the primary header's skip and before the backup.
    pub entries: Vec<u8>,
    /// The last LBA: the backup header padded to a sector.
    pub backup_header: [u8; 512],
}

pub(crate) fn build(source: &SourceImage, moved: &Relocation) -> TableBytes {
    let entries = moved_entry_array(source, moved);
    let entries_crc32 = CRC32.checksum(&entries);
    let primary = GptHeader {
        my_lba: 1,
        alternate_lba: moved.last_lba,
        first_usable_lba: moved.first_usable_lba,
        last_usable_lba: moved.last_usable_lba,
        entries_lba: moved.primary_entries_lba,
        entries_crc32,
        // Revision, disk GUID, entry count and size stay as the source has them.
        ..source.header.clone()
    };
    let backup = GptHeader {
        my_lba: moved.last_lba,
        alternate_lba: 1,
        entries_lba: moved.backup_entries_lba,
        ..primary.clone()
    };
    TableBytes {
        mbr: protective_mbr(&source.mbr_code, moved.last_lba),
        primary_header: header_sector(&primary),
        entries,
        backup_header: header_sector(&backup),
    }
}

/// The source's array with only the LBAs of the used entries changed: empty slots, names,
/// GUIDs, attributes and any bytes past 128 in larger entries stay as they were.
fn moved_entry_array(source: &SourceImage, moved: &Relocation) -> Vec<u8> {
    let entry_size = source.header.entry_size as usize;
    let mut array = source.entry_array.clone();
    for p in &moved.partitions {
        let at = (p.number as usize - 1) * entry_size;
        if let Some(lbas) = array.get_mut(at + 32..at + 48) {
            lbas[..8].copy_from_slice(&p.first_lba.to_le_bytes());
            lbas[8..].copy_from_slice(&p.last_lba.to_le_bytes());
        }
    }
    array
}

fn header_sector(header: &GptHeader) -> [u8; 512] {
    let mut sector = [0u8; SECTOR_SIZE as usize];
    sector[..92].copy_from_slice(&header.to_bytes());
    sector
}

/// A protective MBR (UEFI 2.x §5.2.3): one 0xEE entry from LBA 1 over the whole disk
/// (capped at 0xFFFFFFFF sectors), CHS fields as gdisk writes them, boot code kept.
fn protective_mbr(code: &[u8; 446], last_lba: u64) -> [u8; 512] {
    let mut mbr = [0u8; 512];
    mbr[..446].copy_from_slice(code);
    let entry = &mut mbr[446..462];
    entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
    entry[4] = 0xEE;
    entry[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]); // CHS "beyond addressable"
    entry[8..12].copy_from_slice(&1u32.to_le_bytes());
    let sectors = u32::try_from(last_lba).unwrap_or(u32::MAX);
    entry[12..16].copy_from_slice(&sectors.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    mbr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpt::mbr::{MbrKind, parse_mbr};

    #[test]
    fn protective_mbr_covers_the_disk_after_lba_0_and_keeps_the_boot_code() {
        let code = [0x33u8; 446];
        let mbr = protective_mbr(&code, 4_620_287);
        assert_eq!(
            parse_mbr(&mbr),
            MbrKind::Protective {
                first_lba: 1,
                sectors: 4_620_287
            }
        );
        assert_eq!(mbr[..446], code);
        // Disks beyond 2 TiB are capped, as the UEFI specification says.
        let big = protective_mbr(&code, 1 << 40);
        assert_eq!(
            u32::from_le_bytes(big[458..462].try_into().unwrap()),
            u32::MAX
        );
    }
}
