//! Writing a container: header, tables, payloads back to back, CRC-32.

use super::{CRC_LEN, ContainerError, ENTRY_LEN, EntryKind, HEADER_LEN, LoaderContainer};
use crate::crc32::rockchip_crc32;

impl LoaderContainer {
    /// Serialises the container the way boot_merger lays it out: tables right after
    /// the header (471, 472, loader), payloads in the same order, CRC-32 last.
    ///
    /// For every file parsed from disk with [`has_canonical_layout`] this gives the
    /// identical bytes.
    ///
    /// [`has_canonical_layout`]: LoaderContainer::has_canonical_layout
    pub fn to_bytes(&self) -> Result<Vec<u8>, ContainerError> {
        let mut counts = [0usize; 3];
        for (slot, kind) in counts.iter_mut().zip(EntryKind::ALL) {
            *slot = self.entries(kind).count();
            if *slot > usize::from(u8::MAX) {
                return Err(ContainerError::TooManyEntries { kind, count: *slot });
            }
        }
        let table_len = HEADER_LEN + ENTRY_LEN * self.entries.len();
        let total: u64 = table_len as u64
            + self
                .entries
                .iter()
                .map(|e| e.data.len() as u64)
                .sum::<u64>()
            + CRC_LEN as u64;
        if total > u64::from(u32::MAX) {
            return Err(ContainerError::TooLarge { size: total });
        }

        let mut out = Vec::with_capacity(total as usize);
        let h = &self.header;
        out.extend_from_slice(&h.tag.magic());
        out.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        out.extend_from_slice(&h.version.to_le_bytes());
        out.extend_from_slice(&h.merger_version.to_le_bytes());
        out.extend_from_slice(&h.release_time.to_bytes());
        out.extend_from_slice(&h.chip.file_bytes());
        let mut table_offset = HEADER_LEN;
        for count in counts {
            out.push(count as u8);
            // An empty table still points where it would start, as boot_merger does.
            out.extend_from_slice(&(table_offset as u32).to_le_bytes());
            out.push(ENTRY_LEN as u8);
            table_offset += count * ENTRY_LEN;
        }
        out.push(h.sign_flag);
        out.push(h.rc4_flag);
        out.extend_from_slice(&h.reserved);
        debug_assert_eq!(out.len(), HEADER_LEN);

        let mut data_offset = table_len;
        for entry in &self.entries {
            out.push(ENTRY_LEN as u8);
            out.extend_from_slice(&entry.kind.type_code().to_le_bytes());
            for unit in entry.raw_name {
                out.extend_from_slice(&unit.to_le_bytes());
            }
            out.extend_from_slice(&(data_offset as u32).to_le_bytes());
            out.extend_from_slice(&(entry.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&entry.delay_ms.to_le_bytes());
            data_offset += entry.data.len();
        }
        for entry in &self.entries {
            out.extend_from_slice(&entry.data);
        }
        let crc = rockchip_crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }
}
