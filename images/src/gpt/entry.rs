//! GPT partition entries (UEFI 2.x §5.3.3).

use super::guid::Guid;

/// Attribute bit 2: legacy BIOS bootable (set on Talos's BIOS partition).
pub const ATTR_LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;

/// One used entry of the partition-entry array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based slot in the entry array (as `sgdisk` numbers partitions).
    pub number: u32,
    pub type_guid: Guid,
    pub unique_guid: Guid,
    pub first_lba: u64,
    /// Inclusive, as stored.
    pub last_lba: u64,
    pub attributes: u64,
    /// Decoded from UTF-16LE up to the first NUL; unpaired surrogates become U+FFFD.
    pub name: String,
}

impl Partition {
    /// Sectors covered; 0 when the entry is reversed (`last < first`).
    pub fn sectors(&self) -> u64 {
        self.last_lba
            .checked_sub(self.first_lba)
            .map_or(0, |d| d.saturating_add(1))
    }

    /// The partition's byte range, `None` if reversed or not representable.
    pub fn byte_range(&self, sector_size: u64) -> Option<crate::ByteRange> {
        let start = self.first_lba.checked_mul(sector_size)?;
        let end = self.last_lba.checked_add(1)?.checked_mul(sector_size)?;
        crate::ByteRange::from_bounds(start, end).filter(|r| !r.is_empty())
    }
}

/// Parses the used entries (non-zero type GUID) of an entry array.
/// `entry_size` must be at least 128; only the first 128 bytes of each entry are read.
pub fn parse_entries(array: &[u8], entry_size: usize) -> Vec<Partition> {
    if entry_size < 128 {
        return Vec::new();
    }
    array
        .chunks_exact(entry_size)
        .enumerate()
        .filter_map(|(i, raw)| {
            let fixed: &[u8; 128] = raw.get(..128)?.try_into().ok()?;
            parse_entry(u32::try_from(i + 1).ok()?, fixed)
        })
        .collect()
}

fn parse_entry(number: u32, e: &[u8; 128]) -> Option<Partition> {
    let guid = |at: usize| {
        let mut g = [0u8; 16];
        g.copy_from_slice(&e[at..at + 16]);
        Guid(g)
    };
    let u64_at = |at: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&e[at..at + 8]);
        u64::from_le_bytes(x)
    };
    let type_guid = guid(0);
    if type_guid.is_zero() {
        return None;
    }
    let units: Vec<u16> = e[56..128]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    Some(Partition {
        number,
        type_guid,
        unique_guid: guid(16),
        first_lba: u64_at(32),
        last_lba: u64_at(40),
        attributes: u64_at(48),
        name: String::from_utf16_lossy(&units),
    })
}

/// Serializes an entry into 128 bytes; names longer than 36 UTF-16 units are cut.
pub fn entry_to_bytes(p: &Partition) -> [u8; 128] {
    let mut b = [0u8; 128];
    b[..16].copy_from_slice(&p.type_guid.0);
    b[16..32].copy_from_slice(&p.unique_guid.0);
    b[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
    b[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
    b[48..56].copy_from_slice(&p.attributes.to_le_bytes());
    for (slot, unit) in b[56..].chunks_exact_mut(2).zip(p.name.encode_utf16()) {
        slot.copy_from_slice(&unit.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_empty_slots_and_decodes_utf16_names() {
        let meta = Partition {
            number: 3,
            type_guid: Guid([1; 16]),
            unique_guid: Guid([2; 16]),
            first_lba: 4_325_376,
            last_lba: 4_327_423,
            attributes: ATTR_LEGACY_BIOS_BOOTABLE,
            name: "META-é".into(),
        };
        let mut array = vec![0u8; 4 * 128];
        array[256..384].copy_from_slice(&entry_to_bytes(&meta));
        let parsed = parse_entries(&array, 128);
        assert_eq!(parsed, vec![meta.clone()]);
        assert_eq!(parsed[0].sectors(), 2048);
        assert_eq!(
            parsed[0].byte_range(512),
            Some(crate::ByteRange::new(4_325_376 * 512, 1024 * 1024))
        );
    }

    #[test]
    fn reversed_or_huge_entries_have_no_byte_range() {
        let mut p = Partition {
            number: 1,
            type_guid: Guid([1; 16]),
            unique_guid: Guid::ZERO,
            first_lba: 10,
            last_lba: 9,
            attributes: 0,
            name: String::new(),
        };
        assert_eq!(p.sectors(), 0);
        assert_eq!(p.byte_range(512), None);
        p.last_lba = u64::MAX;
        assert_eq!(p.byte_range(512), None);
    }
}
