//! The protective MBR in LBA 0 that keeps MBR-only tools off a GPT disk.

/// What LBA 0 holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MbrKind {
    /// No 0x55AA boot signature.
    Missing,
    /// A single-purpose protective MBR: a partition of type 0xEE.
    Protective { first_lba: u32, sectors: u32 },
    /// A hybrid MBR: 0xEE next to other partition types.
    Hybrid { types: Vec<u8> },
    /// A classic MBR without a 0xEE entry (not a GPT disk, or one tools would misread).
    Legacy { types: Vec<u8> },
}

pub fn parse_mbr(sector0: &[u8; 512]) -> MbrKind {
    if sector0[510..512] != [0x55, 0xAA] {
        return MbrKind::Missing;
    }
    let entries: Vec<&[u8]> = sector0[446..510].chunks_exact(16).collect();
    let types: Vec<u8> = entries.iter().map(|e| e[4]).filter(|&t| t != 0).collect();
    let protective = entries.iter().find(|e| e[4] == 0xEE);
    match protective {
        None => MbrKind::Legacy { types },
        Some(_) if types.len() > 1 => MbrKind::Hybrid { types },
        Some(e) => MbrKind::Protective {
            first_lba: u32::from_le_bytes([e[8], e[9], e[10], e[11]]),
            sectors: u32::from_le_bytes([e[12], e[13], e[14], e[15]]),
        },
    }
}

/// One used entry of a classic MBR's four-entry table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbrPartition {
    /// 1-based slot, as `fdisk` numbers primary partitions.
    pub number: u32,
    pub type_byte: u8,
    pub first_lba: u32,
    pub sectors: u32,
}

impl MbrPartition {
    /// An extended partition: a container whose logical partitions are described by
    /// further tables inside it (types 0x05, 0x0F, 0x85).
    pub fn is_extended(&self) -> bool {
        matches!(self.type_byte, 0x05 | 0x0F | 0x85)
    }
}

/// The used primary entries (non-zero type and size) of a signed MBR; empty without the
/// 0x55AA signature.
pub fn mbr_partitions(sector0: &[u8; 512]) -> Vec<MbrPartition> {
    if sector0[510..512] != [0x55, 0xAA] {
        return Vec::new();
    }
    sector0[446..510]
        .chunks_exact(16)
        .enumerate()
        .map(|(i, e)| MbrPartition {
            number: i as u32 + 1,
            type_byte: e[4],
            first_lba: u32::from_le_bytes([e[8], e[9], e[10], e[11]]),
            sectors: u32::from_le_bytes([e[12], e[13], e[14], e[15]]),
        })
        .filter(|p| p.type_byte != 0 && p.sectors != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_protective_hybrid_legacy_and_missing() {
        let mut s = [0u8; 512];
        assert_eq!(parse_mbr(&s), MbrKind::Missing);
        s[510] = 0x55;
        s[511] = 0xAA;
        s[446 + 4] = 0xEE;
        s[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        s[446 + 12..446 + 16].copy_from_slice(&71u32.to_le_bytes());
        assert_eq!(
            parse_mbr(&s),
            MbrKind::Protective {
                first_lba: 1,
                sectors: 71
            }
        );
        s[462 + 4] = 0x0C;
        assert_eq!(
            parse_mbr(&s),
            MbrKind::Hybrid {
                types: vec![0xEE, 0x0C]
            }
        );
        s[446 + 4] = 0x83;
        assert_eq!(
            parse_mbr(&s),
            MbrKind::Legacy {
                types: vec![0x83, 0x0C]
            }
        );
    }
}
