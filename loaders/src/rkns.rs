//! RKNS ID block header (U-Boot `header0_info_v2`), used by new-IDB SoCs.
//!
//! The same 2048-byte header appears as the `UsbHead` 471 entry of "LDR " loaders, as
//! the (RC4-per-block) `FlashHead` loader entry, and at the start of every mainline or
//! vendor `idbloader.img` written at LBA 64.
//!
//! Layout (little-endian): magic "RKNS" @0; `size_and_nimage` @8 (low 16 bits = offset
//! of the header hash in 4-byte words, normally 384 → byte 1536; high 16 bits = image
//! count); `boot_flag` @12 (low 4 bits: hash type); boot0 parameters (10 words) @48 and
//! boot1 parameters (8 words) @88; image entries of 88 bytes from @120; the header hash
//! over bytes 0..1536 at 1536.

use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};
use thiserror::Error;

use crate::bytes::{array_at, hex, slice_at, u32_at};

/// "RKNS".
pub const RKNS_MAGIC: [u8; 4] = *b"RKNS";
/// Bytes a header occupies in an ID block (the first image starts at sector 4).
pub const RKNS_HEADER_LEN: usize = 2048;
/// The usual hash-field offset (384 words).
pub const HASH_FIELD_OFFSET: usize = 1536;
/// Offset of the first image entry.
pub const IMAGES_OFFSET: usize = 120;
/// Size of one image entry.
pub const IMAGE_ENTRY_LEN: usize = 88;
/// Most image entries that fit before the hash field.
pub const MAX_IMAGES: usize = (HASH_FIELD_OFFSET - 8 - IMAGES_OFFSET) / IMAGE_ENTRY_LEN;
/// Sector size used by the header's offsets and sizes.
pub const SECTOR: usize = 512;

/// Hash algorithm from `boot_flag[3:0]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum HashType {
    None,
    Sha256,
    Sha512,
    Unknown(u32),
}

impl HashType {
    fn from_flag(boot_flag: u32) -> Self {
        match boot_flag & 0xf {
            0 => HashType::None,
            1 => HashType::Sha256,
            2 => HashType::Sha512,
            other => HashType::Unknown(other),
        }
    }

    /// Digest length in bytes (0 when not hashed or unknown).
    pub fn digest_len(self) -> usize {
        match self {
            HashType::Sha256 => 32,
            HashType::Sha512 => 64,
            HashType::None | HashType::Unknown(_) => 0,
        }
    }

    /// Digest of `data` padded into the 64-byte field, or `None` when not hashed.
    pub fn digest(self, data: &[u8]) -> Option<[u8; 64]> {
        let mut out = [0u8; 64];
        match self {
            HashType::Sha256 => out[..32].copy_from_slice(&Sha256::digest(data)),
            HashType::Sha512 => out.copy_from_slice(&Sha512::digest(data)),
            HashType::None | HashType::Unknown(_) => return None,
        }
        Some(out)
    }
}

/// One image entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RknsImage {
    pub index: usize,
    /// Offset from the header start, in 512-byte sectors.
    pub offset_sectors: u16,
    /// Size in 512-byte sectors.
    pub size_sectors: u16,
    /// Load address; 0xFFFFFFFF means the SoC default.
    pub address: u32,
    pub flag: u32,
    /// 1-based position.
    pub counter: u32,
    /// Hash field (digest in the first `digest_len` bytes).
    #[serde(serialize_with = "serialize_hex")]
    pub hash: [u8; 64],
}

impl RknsImage {
    /// Byte offset from the header start.
    pub fn offset_bytes(&self) -> usize {
        usize::from(self.offset_sectors) * SECTOR
    }

    /// Size in bytes.
    pub fn size_bytes(&self) -> usize {
        usize::from(self.size_sectors) * SECTOR
    }
}

fn serialize_hex<S: serde::Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

/// A parsed RKNS header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RknsHeader {
    pub size_and_nimage: u32,
    pub boot_flag: u32,
    pub hash_type: HashType,
    pub images: Vec<RknsImage>,
    /// Byte offset of the header hash field.
    pub hash_offset: usize,
    /// True when the stored header hash equals the digest of the bytes before it
    /// (always true for unhashed headers).
    pub header_hash_ok: bool,
}

/// Why bytes are not a usable RKNS header.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RknsError {
    #[error("not an RKNS ID block: it starts with {found:02x?} instead of \"RKNS\"")]
    BadMagic { found: [u8; 4] },
    #[error(
        "RKNS header is truncated: {actual} bytes, but the header needs {needed}; the file \
         was cut short, get a fresh copy"
    )]
    Truncated { needed: usize, actual: usize },
    #[error("RKNS header declares {count} images; at most {max} fit in the header")]
    TooManyImages { count: usize, max: usize },
    #[error("RKNS header puts its hash field at byte {offset}, outside the 2048-byte header")]
    BadHashOffset { offset: usize },
}

impl RknsHeader {
    /// Parses the header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, RknsError> {
        let magic: [u8; 4] = array_at(data, 0).ok_or(RknsError::Truncated {
            needed: 4,
            actual: data.len(),
        })?;
        if magic != RKNS_MAGIC {
            return Err(RknsError::BadMagic { found: magic });
        }
        let size_and_nimage = u32_at(data, 8).ok_or(RknsError::Truncated {
            needed: 16,
            actual: data.len(),
        })?;
        let boot_flag = u32_at(data, 12).ok_or(RknsError::Truncated {
            needed: 16,
            actual: data.len(),
        })?;
        let count = (size_and_nimage >> 16) as usize;
        if count > MAX_IMAGES {
            return Err(RknsError::TooManyImages {
                count,
                max: MAX_IMAGES,
            });
        }
        let hash_offset = (size_and_nimage & 0xffff) as usize * 4;
        if hash_offset < IMAGES_OFFSET + count * IMAGE_ENTRY_LEN
            || hash_offset + 64 > RKNS_HEADER_LEN
        {
            return Err(RknsError::BadHashOffset {
                offset: hash_offset,
            });
        }
        let hash_type = HashType::from_flag(boot_flag);
        let needed = hash_offset + 64;
        let stored_hash: [u8; 64] = array_at(data, hash_offset).ok_or(RknsError::Truncated {
            needed,
            actual: data.len(),
        })?;
        let mut images = Vec::with_capacity(count);
        for index in 0..count {
            let at = IMAGES_OFFSET + index * IMAGE_ENTRY_LEN;
            let word = |off: usize| u32_at(data, at + off).unwrap_or(0);
            let size_and_off = word(0);
            images.push(RknsImage {
                index,
                offset_sectors: (size_and_off & 0xffff) as u16,
                size_sectors: (size_and_off >> 16) as u16,
                address: word(4),
                flag: word(8),
                counter: word(12),
                hash: array_at(data, at + 24).unwrap_or([0; 64]),
            });
        }
        let header_hash_ok = match hash_type.digest(slice_at(data, 0, hash_offset).unwrap_or(&[])) {
            Some(digest) => {
                let n = hash_type.digest_len();
                digest[..n] == stored_hash[..n]
            }
            None => true,
        };
        Ok(RknsHeader {
            size_and_nimage,
            boot_flag,
            hash_type,
            images,
            hash_offset,
            header_hash_ok,
        })
    }

    /// Checks each image's hash against the bytes that follow the header in `block`
    /// (`block` starts at the header). A short file is reported as truncated, never as
    /// a hash mismatch.
    pub fn check_images(&self, block: &[u8]) -> Vec<ImageCheck> {
        self.images
            .iter()
            .map(|image| {
                let start = image.offset_bytes();
                let end = start + image.size_bytes();
                let status = match slice_at(block, start, image.size_bytes()) {
                    None => ImageStatus::Truncated {
                        needed_end: end,
                        file_len: block.len(),
                    },
                    Some(payload) => match self.hash_type.digest(payload) {
                        None => ImageStatus::NotHashed,
                        Some(actual) => {
                            let n = self.hash_type.digest_len();
                            if actual[..n] == image.hash[..n] {
                                ImageStatus::Ok
                            } else {
                                ImageStatus::HashMismatch {
                                    expected: hex(&image.hash[..n]),
                                    actual: hex(&actual[..n]),
                                }
                            }
                        }
                    },
                };
                ImageCheck {
                    index: image.index,
                    offset_bytes: start,
                    size_bytes: image.size_bytes(),
                    status,
                }
            })
            .collect()
    }

    /// End of the last image, in bytes from the header start.
    pub fn declared_end(&self) -> usize {
        self.images
            .iter()
            .map(|i| i.offset_bytes() + i.size_bytes())
            .max()
            .unwrap_or(RKNS_HEADER_LEN)
    }
}

/// Result of checking one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageCheck {
    pub index: usize,
    pub offset_bytes: usize,
    pub size_bytes: usize,
    pub status: ImageStatus,
}

/// How one image fared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ImageStatus {
    Ok,
    NotHashed,
    HashMismatch { expected: String, actual: String },
    Truncated { needed_end: usize, file_len: usize },
}

/// One image to describe in a new header.
pub struct ImageSpec<'a> {
    /// The image bytes exactly as they will follow the header (already padded).
    pub data: &'a [u8],
    /// Load address, or `None` for the default (0xFFFFFFFF).
    pub address: Option<u32>,
    pub flag: u32,
}

/// Boot parameter words copied into a new header (ini `[BOOT0_PARAM]`/`[BOOT1_PARAM]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootParams {
    pub boot0: [u32; 10],
    pub boot1: [u32; 8],
}

/// Builds a SHA-256 RKNS header of `header_len` bytes (2048, or 4096 for SoCs whose
/// entries are 4 KiB aligned) describing `images` placed back to back after it.
pub fn build_header(images: &[ImageSpec<'_>], header_len: usize, params: &BootParams) -> Vec<u8> {
    let mut out = vec![0u8; header_len.max(RKNS_HEADER_LEN)];
    out[0..4].copy_from_slice(&RKNS_MAGIC);
    let size_and_nimage = ((images.len() as u32) << 16) | (HASH_FIELD_OFFSET as u32 / 4);
    out[8..12].copy_from_slice(&size_and_nimage.to_le_bytes());
    out[12..16].copy_from_slice(&1u32.to_le_bytes());
    for (n, word) in params.boot0.iter().enumerate() {
        out[48 + 4 * n..52 + 4 * n].copy_from_slice(&word.to_le_bytes());
    }
    for (n, word) in params.boot1.iter().enumerate() {
        out[88 + 4 * n..92 + 4 * n].copy_from_slice(&word.to_le_bytes());
    }
    let mut offset_sectors = out.len() / SECTOR;
    for (index, image) in images.iter().enumerate().take(MAX_IMAGES) {
        let at = IMAGES_OFFSET + index * IMAGE_ENTRY_LEN;
        let size_sectors = image.data.len().div_ceil(SECTOR);
        let size_and_off = ((size_sectors as u32) << 16) | (offset_sectors as u32 & 0xffff);
        out[at..at + 4].copy_from_slice(&size_and_off.to_le_bytes());
        out[at + 4..at + 8].copy_from_slice(&image.address.unwrap_or(u32::MAX).to_le_bytes());
        out[at + 8..at + 12].copy_from_slice(&image.flag.to_le_bytes());
        out[at + 12..at + 16].copy_from_slice(&(index as u32 + 1).to_le_bytes());
        out[at + 24..at + 56].copy_from_slice(&Sha256::digest(image.data));
        offset_sectors += size_sectors;
    }
    let digest = Sha256::digest(&out[..HASH_FIELD_OFFSET]);
    out[HASH_FIELD_OFFSET..HASH_FIELD_OFFSET + 32].copy_from_slice(&digest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_header_parses_and_verifies() {
        let a = vec![1u8; 4096];
        let b = vec![2u8; 2048];
        let header = build_header(
            &[
                ImageSpec {
                    data: &a,
                    address: None,
                    flag: 0,
                },
                ImageSpec {
                    data: &b,
                    address: Some(0x3ff8_1000),
                    flag: 0,
                },
            ],
            2048,
            &BootParams::default(),
        );
        let mut block = header.clone();
        block.extend_from_slice(&a);
        block.extend_from_slice(&b);
        let parsed = RknsHeader::parse(&block).unwrap();
        assert!(parsed.header_hash_ok);
        assert_eq!(parsed.images.len(), 2);
        assert_eq!(parsed.images[1].offset_sectors, 12);
        assert_eq!(parsed.images[1].address, 0x3ff8_1000);
        let checks = parsed.check_images(&block);
        assert!(checks.iter().all(|c| c.status == ImageStatus::Ok));

        // Cutting the last image short is truncation, not a bad hash.
        let cut = &block[..block.len() - 1];
        let checks = parsed.check_images(cut);
        assert!(matches!(checks[1].status, ImageStatus::Truncated { .. }));

        // Flipping a payload byte is a hash mismatch.
        let mut bad = block.clone();
        bad[2048] ^= 1;
        assert!(matches!(
            parsed.check_images(&bad)[0].status,
            ImageStatus::HashMismatch { .. }
        ));
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        assert!(RknsHeader::parse(b"RKN").is_err());
        assert!(matches!(
            RknsHeader::parse(b"RKNS\0\0\0\0\x80\x01\xff\xff\x01\0\0\0"),
            Err(RknsError::TooManyImages { .. })
        ));
        assert!(matches!(
            RknsHeader::parse(b"RKNS\0\0\0\0\x80\x01\x02\0\x01\0\0\0"),
            Err(RknsError::Truncated { .. })
        ));
    }
}
