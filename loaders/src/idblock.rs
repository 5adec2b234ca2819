//! Inspecting ID block files (`idbloader.img`, `rkspi_loader.img`, a dump of LBA 64…):
//! RKNS v2 headers with their image hashes, and old v1 headers.

use serde::Serialize;
use thiserror::Error;

use crate::bytes::{array_at, u16_at, u32_at};
use crate::rc4::{RC4_BLOCK, rc4_stream};
use crate::rkns::{ImageCheck, ImageStatus, RKNS_MAGIC, RknsError, RknsHeader, SECTOR};

/// Decrypted magic of a v1 sector 0.
pub const V1_MAGIC: u32 = 0x0ff0_aa55;

/// Fields of an old (v1) ID block sector 0, after RC4.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct V1Header {
    /// 1 when the boot code that follows is stored plain.
    pub disable_rc4: u32,
    /// Sector of the first boot stage (4).
    pub init_offset_sectors: u16,
    /// Sectors of the first stage (DDR init / TPL).
    pub init_size_sectors: u16,
    /// Sectors of first + second stage (mkimage writes an upper bound here).
    pub init_boot_size_sectors: u16,
    /// Where the SoC tag ("RK33", …) of the first stage was found, and the tag.
    pub spl_tag: Option<(usize, String)>,
    /// "rksd" (flat) or "rkspi" (only the first 2 KiB of every 4 KiB used).
    pub layout: V1Layout,
}

/// How a v1 ID block is spread over its medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum V1Layout {
    /// SD/eMMC: stages follow the 2 KiB header directly (tag at 0x800).
    Flat,
    /// SPI: each 2 KiB of payload followed by 2 KiB unused (tag at 0x1000).
    Spi,
    /// No tag found where either layout puts it (boot code may be RC4-scrambled).
    Unknown,
}

/// What sits in the sector where a BootROM looks for an ID block (sector 64 on eMMC and
/// SD): the one classification the flasher's checks, the image layouts and the virtual
/// board's BootROM all use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SectorKind {
    /// An `RKNS` (v2) ID block header.
    Rkns,
    /// An RC4-scrambled (v1) ID block header: it decrypts to the magic 0x0FF0AA55.
    Rc4IdBlock,
    /// The sector is all zeros.
    Empty,
    /// Something else (or less than a sector).
    Unknown,
}

impl SectorKind {
    /// Whether a BootROM would find an ID block here.
    pub fn is_present(self) -> bool {
        matches!(self, SectorKind::Rkns | SectorKind::Rc4IdBlock)
    }
}

/// Classifies the first sector (512 bytes; more are ignored) of where an ID block belongs.
pub fn classify_sector(sector: &[u8]) -> SectorKind {
    let Some(sector) = sector.get(..RC4_BLOCK) else {
        return SectorKind::Unknown;
    };
    if sector.starts_with(&RKNS_MAGIC) {
        SectorKind::Rkns
    } else if u32_at(&rc4_stream(sector), 0) == Some(V1_MAGIC) {
        SectorKind::Rc4IdBlock
    } else if sector.iter().all(|&b| b == 0) {
        SectorKind::Empty
    } else {
        SectorKind::Unknown
    }
}

/// What an ID block file contains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum IdBlockReport {
    /// RKNS header v2 (new-IDB SoCs, mainline U-Boot).
    RknsV2 {
        header: RknsHeader,
        images: Vec<ImageCheck>,
        /// Byte offsets of every RKNS header found (vendor images keep backup copies).
        copies_at: Vec<usize>,
        declared_end: usize,
        file_len: usize,
        /// True when the file ends before the last declared image does.
        truncated: bool,
    },
    /// Old v1 header (RK33xx and older).
    V1 { header: V1Header, file_len: usize },
}

impl IdBlockReport {
    /// True when every check passed: header hash, every image hash, not truncated.
    pub fn is_ok(&self) -> bool {
        match self {
            IdBlockReport::RknsV2 {
                header,
                images,
                truncated,
                ..
            } => {
                header.header_hash_ok
                    && !truncated
                    && images
                        .iter()
                        .all(|i| matches!(i.status, ImageStatus::Ok | ImageStatus::NotHashed))
            }
            IdBlockReport::V1 { .. } => true,
        }
    }
}

/// Why a file is not a recognisable ID block.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdBlockError {
    #[error(transparent)]
    Rkns(#[from] RknsError),
    #[error(
        "not an ID block: no RKNS header and no v1 (RC4 0x0FF0AA55) header at the start; \
         if this is a loader container (BOOT/LDR), use it to boot or upgrade instead"
    )]
    Unrecognised,
}

/// Reads an ID block file and checks whatever it can.
pub fn inspect(data: &[u8]) -> Result<IdBlockReport, IdBlockError> {
    if data.starts_with(&RKNS_MAGIC) {
        let header = RknsHeader::parse(data)?;
        let images = header.check_images(data);
        let declared_end = header.declared_end();
        let copies_at = (0..data.len())
            .step_by(SECTOR)
            .filter(|&at| {
                data.get(at..).is_some_and(|rest| {
                    rest.starts_with(&RKNS_MAGIC)
                        && RknsHeader::parse(rest).is_ok_and(|h| h.header_hash_ok)
                })
            })
            .collect();
        return Ok(IdBlockReport::RknsV2 {
            truncated: declared_end > data.len(),
            header,
            images,
            copies_at,
            declared_end,
            file_len: data.len(),
        });
    }
    match parse_v1(data) {
        Some(header) => Ok(IdBlockReport::V1 {
            header,
            file_len: data.len(),
        }),
        None => Err(IdBlockError::Unrecognised),
    }
}

/// Parses a v1 sector 0 (RC4-scrambled) and looks for the first stage's tag.
pub fn parse_v1(data: &[u8]) -> Option<V1Header> {
    let sector0 = rc4_stream(data.get(..RC4_BLOCK)?);
    if u32_at(&sector0, 0)? != V1_MAGIC {
        return None;
    }
    let tag_at = |offset: usize| -> Option<String> {
        let tag: [u8; 4] = array_at(data, offset)?;
        (tag.starts_with(b"RK") && tag.iter().all(u8::is_ascii_alphanumeric))
            .then(|| String::from_utf8_lossy(&tag).into_owned())
    };
    let (spl_tag, layout) = if let Some(tag) = tag_at(0x800) {
        (Some((0x800, tag)), V1Layout::Flat)
    } else if let Some(tag) = tag_at(0x1000) {
        (Some((0x1000, tag)), V1Layout::Spi)
    } else {
        (None, V1Layout::Unknown)
    };
    Some(V1Header {
        disable_rc4: u32_at(&sector0, 8)?,
        init_offset_sectors: u16_at(&sector0, 12)?,
        init_size_sectors: u16_at(&sector0, 506)?,
        init_boot_size_sectors: u16_at(&sector0, 508)?,
        spl_tag,
        layout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sector_is_classified_as_either_header_generation_or_neither() {
        let mut v2 = [0u8; 512];
        v2[..4].copy_from_slice(b"RKNS");
        assert_eq!(classify_sector(&v2), SectorKind::Rkns);

        let mut v1 = [0u8; 512];
        v1[..4].copy_from_slice(&V1_MAGIC.to_le_bytes());
        let v1 = rc4_stream(&v1);
        // The scrambled magic as it sits on the medium.
        assert_eq!(v1[..4], [0x3b, 0x8c, 0xdc, 0xfc]);
        assert_eq!(classify_sector(&v1), SectorKind::Rc4IdBlock);

        assert_eq!(classify_sector(&[0u8; 512]), SectorKind::Empty);
        assert_eq!(classify_sector(&[0xFFu8; 512]), SectorKind::Unknown);
        assert_eq!(classify_sector(b"RKNS"), SectorKind::Unknown);
        assert!(SectorKind::Rkns.is_present() && !SectorKind::Empty.is_present());
    }

    #[test]
    fn v1_sector0_is_decoded() {
        let mut sector0 = vec![0u8; 512];
        sector0[0..4].copy_from_slice(&V1_MAGIC.to_le_bytes());
        sector0[8] = 1;
        sector0[12] = 4;
        sector0[506..508].copy_from_slice(&256u16.to_le_bytes());
        sector0[508..510].copy_from_slice(&1280u16.to_le_bytes());
        let mut file = rc4_stream(&sector0);
        file.resize(0x800, 0);
        file.extend_from_slice(b"RK33");
        let header = parse_v1(&file).unwrap();
        assert_eq!(header.init_size_sectors, 256);
        assert_eq!(header.init_boot_size_sectors, 1280);
        assert_eq!(header.spl_tag, Some((0x800, "RK33".to_string())));
        assert_eq!(header.layout, V1Layout::Flat);
    }

    #[test]
    fn other_files_are_not_id_blocks() {
        assert_eq!(inspect(b"BOOT"), Err(IdBlockError::Unrecognised));
        assert_eq!(inspect(&[0u8; 600]), Err(IdBlockError::Unrecognised));
    }
}
