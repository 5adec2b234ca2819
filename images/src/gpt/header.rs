//! The GPT header (UEFI 2.x §5.3.2): 92 meaningful bytes at the start of its sector.

use super::guid::Guid;
use crc::{CRC_32_ISO_HDLC, Crc};

pub(crate) const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

pub const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
/// Bytes of the header every revision so far defines.
pub const HEADER_MIN_SIZE: u32 = 92;

/// A parsed header whose signature, size and CRC are valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptHeader {
    pub revision: u32,
    pub header_size: u32,
    pub header_crc32: u32,
    /// The LBA this header says it lives at.
    pub my_lba: u64,
    /// The LBA of the other copy.
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    pub entries_lba: u64,
    pub entry_count: u32,
    pub entry_size: u32,
    pub entries_crc32: u32,
}

/// Why a sector does not hold a usable GPT header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("no GPT signature (\"EFI PART\")")]
    NoSignature,
    #[error("header size {size} is outside 92..={sector_size} bytes")]
    BadSize { size: u32, sector_size: usize },
    #[error("header CRC mismatch: stored 0x{stored:08x}, computed 0x{computed:08x}")]
    CrcMismatch { stored: u32, computed: u32 },
}

fn u32_le(b: &[u8; 92], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_le(b: &[u8; 92], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

impl GptHeader {
    /// Parses and checks the header at the start of `sector` (one logical sector).
    pub fn parse(sector: &[u8]) -> Result<GptHeader, HeaderError> {
        let fixed: &[u8; 92] = sector
            .get(..92)
            .and_then(|s| s.try_into().ok())
            .ok_or(HeaderError::NoSignature)?;
        if &fixed[..8] != GPT_SIGNATURE {
            return Err(HeaderError::NoSignature);
        }
        let header_size = u32_le(fixed, 12);
        let covered = usize::try_from(header_size)
            .ok()
            .filter(|&n| n >= HEADER_MIN_SIZE as usize)
            .and_then(|n| sector.get(..n))
            .ok_or(HeaderError::BadSize {
                size: header_size,
                sector_size: sector.len(),
            })?;
        let stored = u32_le(fixed, 16);
        let computed = header_crc(covered);
        if stored != computed {
            return Err(HeaderError::CrcMismatch { stored, computed });
        }
        let mut disk_guid = [0u8; 16];
        disk_guid.copy_from_slice(&fixed[56..72]);
        Ok(GptHeader {
            revision: u32_le(fixed, 8),
            header_size,
            header_crc32: stored,
            my_lba: u64_le(fixed, 24),
            alternate_lba: u64_le(fixed, 32),
            first_usable_lba: u64_le(fixed, 40),
            last_usable_lba: u64_le(fixed, 48),
            disk_guid: Guid(disk_guid),
            entries_lba: u64_le(fixed, 72),
            entry_count: u32_le(fixed, 80),
            entry_size: u32_le(fixed, 84),
            entries_crc32: u32_le(fixed, 88),
        })
    }

    /// Bytes of the partition-entry array (a u32 product always fits a u64).
    pub fn entries_len(&self) -> u64 {
        u64::from(self.entry_count) * u64::from(self.entry_size)
    }

    /// Serializes the header into the first 92 bytes of a sector, computing its CRC.
    /// Used to build test images and by tools that rewrite a table.
    pub fn to_bytes(&self) -> [u8; 92] {
        let mut b = [0u8; 92];
        b[..8].copy_from_slice(GPT_SIGNATURE);
        b[8..12].copy_from_slice(&self.revision.to_le_bytes());
        b[12..16].copy_from_slice(&HEADER_MIN_SIZE.to_le_bytes());
        b[24..32].copy_from_slice(&self.my_lba.to_le_bytes());
        b[32..40].copy_from_slice(&self.alternate_lba.to_le_bytes());
        b[40..48].copy_from_slice(&self.first_usable_lba.to_le_bytes());
        b[48..56].copy_from_slice(&self.last_usable_lba.to_le_bytes());
        b[56..72].copy_from_slice(&self.disk_guid.0);
        b[72..80].copy_from_slice(&self.entries_lba.to_le_bytes());
        b[80..84].copy_from_slice(&self.entry_count.to_le_bytes());
        b[84..88].copy_from_slice(&self.entry_size.to_le_bytes());
        b[88..92].copy_from_slice(&self.entries_crc32.to_le_bytes());
        let crc = header_crc(&b);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

/// CRC-32 of a header with its own CRC field (bytes 16..20) taken as zero.
fn header_crc(header: &[u8]) -> u32 {
    let mut digest = CRC32.digest();
    digest.update(header.get(..16).unwrap_or(header));
    digest.update(&[0; 4]);
    digest.update(header.get(20..).unwrap_or(&[]));
    digest.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GptHeader {
        GptHeader {
            revision: 0x0001_0000,
            header_size: 92,
            header_crc32: 0,
            my_lba: 1,
            alternate_lba: 99,
            first_usable_lba: 34,
            last_usable_lba: 66,
            disk_guid: Guid([7; 16]),
            entries_lba: 2,
            entry_count: 128,
            entry_size: 128,
            entries_crc32: 0xdead_beef,
        }
    }

    #[test]
    fn round_trips_and_detects_a_flipped_bit() {
        let mut sector = [0u8; 512];
        sector[..92].copy_from_slice(&sample().to_bytes());
        let parsed = GptHeader::parse(&sector).unwrap();
        assert_eq!(parsed.alternate_lba, 99);
        assert_eq!(parsed.entries_crc32, 0xdead_beef);

        sector[40] ^= 1;
        match GptHeader::parse(&sector) {
            Err(HeaderError::CrcMismatch { stored, computed }) => {
                assert_eq!(stored, parsed.header_crc32);
                assert_ne!(stored, computed);
            }
            other => panic!("expected a CRC mismatch, got {other:?}"),
        }
    }

    #[test]
    fn rejects_missing_signature_and_impossible_sizes() {
        assert_eq!(GptHeader::parse(&[0u8; 512]), Err(HeaderError::NoSignature));
        assert_eq!(GptHeader::parse(b"EFI PART"), Err(HeaderError::NoSignature));
        let mut sector = [0u8; 512];
        sector[..92].copy_from_slice(&sample().to_bytes());
        sector[12..16].copy_from_slice(&600u32.to_le_bytes());
        assert!(matches!(
            GptHeader::parse(&sector),
            Err(HeaderError::BadSize { size: 600, .. })
        ));
    }
}
