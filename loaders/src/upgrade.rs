//! The ID block written at LBA 64 from a loader container ("upgrade loader", like
//! `rkdeveloptool ul`).
//!
//! * "LDR " containers: the decoded FlashHead followed by the decoded loader entries
//!   at the offsets FlashHead declares. Entries are matched to FlashHead's images by
//!   hash, so FlashBoost (RK3576) lands where the header says, which rkdeveloptool gets
//!   wrong by only knowing FlashHead/FlashData/FlashBoot.
//! * "BOOT" containers: the old four-sector header (sector 0, 2 and 3 RC4-scrambled,
//!   CRC-16 of sectors 0/1/3 and a CRC-32 of the boot code in sector 2), then
//!   FlashData and FlashBoot. They are stored plain when the header's rc4 flag says RC4
//!   is disabled, scrambled per 512-byte block otherwise.

use crc::{CRC_16_XMODEM, Crc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::bytes::{align_up, slice_at};
use crate::container::{ContainerTag, EntryKind, LoaderContainer};
use crate::crc32::rockchip_crc32;
use crate::idblock::V1_MAGIC;
use crate::rc4::{RC4_BLOCK, rc4_stream_in_place};
use crate::rkns::{RknsError, RknsHeader, SECTOR};

/// Chip tag rkdeveloptool writes in sector 1 ("RK28").
const SECTOR1_CHIP_TAG: u32 = 0x3832_4b52;

/// One part placed in the ID block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdBlockPart {
    pub name: String,
    pub offset: usize,
    pub size: usize,
}

/// An ID block ready to be written at [`IdBlock::lba`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdBlock {
    /// Sector to write it at (64 on eMMC/SD).
    pub lba: u32,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub parts: Vec<IdBlockPart>,
}

/// Why no ID block can be made from a container.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum UpgradeError {
    #[error("the loader has no {0} entry, which the ID block needs")]
    MissingEntry(&'static str),
    #[error("the loader's FlashHead is not a valid RKNS header: {0}")]
    BadFlashHead(RknsError),
    #[error(
        "FlashHead image #{index} ({size} bytes at byte {offset}) matches no loader entry by \
         hash; the loader is inconsistent, get a fresh copy"
    )]
    UnmatchedImage {
        index: usize,
        offset: usize,
        size: usize,
    },
    #[error(
        "this LDR loader says RC4 is enabled for the ID block, a combination no known loader \
         uses; refusing to guess how to write it"
    )]
    LdrWithRc4,
    #[error("{name} is {sectors} sectors, more than the old ID block header can describe")]
    TooLarge { name: &'static str, sectors: usize },
}

/// Builds the ID block for `container`.
pub fn build_id_block(container: &LoaderContainer) -> Result<IdBlock, UpgradeError> {
    match container.tag() {
        ContainerTag::Ldr => build_new(container),
        ContainerTag::Boot => build_old(container),
    }
}

fn build_new(c: &LoaderContainer) -> Result<IdBlock, UpgradeError> {
    if !c.header().rc4_disabled() {
        return Err(UpgradeError::LdrWithRc4);
    }
    let head_entry = c
        .loader_entry("FlashHead")
        .ok_or(UpgradeError::MissingEntry("FlashHead"))?;
    let head = head_entry.decoded(c.tag());
    let header = RknsHeader::parse(&head).map_err(UpgradeError::BadFlashHead)?;
    let decoded: Vec<(String, Vec<u8>)> = c
        .entries(EntryKind::Loader)
        .filter(|e| e.name != "FlashHead")
        .map(|e| (e.name.clone(), e.decoded(c.tag())))
        .collect();

    let first_image = header
        .images
        .iter()
        .map(|i| i.offset_bytes())
        .min()
        .unwrap_or(head.len());
    let mut bytes = head
        .get(..first_image.min(head.len()))
        .unwrap_or(&head)
        .to_vec();
    let mut parts = vec![IdBlockPart {
        name: "FlashHead".into(),
        offset: 0,
        size: bytes.len(),
    }];
    for image in &header.images {
        let (offset, size) = (image.offset_bytes(), image.size_bytes());
        let digest_len = header.hash_type.digest_len().min(32);
        let found = decoded.iter().find(|(_, data)| {
            slice_at(data, 0, size).is_some_and(|d| {
                digest_len == 0 || Sha256::digest(d)[..digest_len] == image.hash[..digest_len]
            })
        });
        let Some((name, data)) = found else {
            return Err(UpgradeError::UnmatchedImage {
                index: image.index,
                offset,
                size,
            });
        };
        if bytes.len() < offset + size {
            bytes.resize(offset + size, 0);
        }
        bytes[offset..offset + size].copy_from_slice(&data[..size]);
        parts.push(IdBlockPart {
            name: name.clone(),
            offset,
            size,
        });
    }
    Ok(IdBlock {
        lba: 64,
        bytes,
        parts,
    })
}

fn build_old(c: &LoaderContainer) -> Result<IdBlock, UpgradeError> {
    let entry = |name: &'static str| c.loader_entry(name).ok_or(UpgradeError::MissingEntry(name));
    let (data_entry, boot_entry) = (entry("FlashData")?, entry("FlashBoot")?);
    let plain = c.header().rc4_disabled();
    // Stored entries are RC4 per block; the ID block keeps them that way unless the
    // header says RC4 is disabled.
    let payload = |e: &crate::container::Entry| {
        if plain {
            e.decoded(c.tag())
        } else {
            e.data.clone()
        }
    };
    let (flash_data, flash_boot) = (payload(data_entry), payload(boot_entry));
    let data_sectors = align_up(flash_data.len(), 2048) / SECTOR;
    let boot_sectors = align_up(flash_boot.len(), 2048) / SECTOR;
    for (name, sectors) in [
        ("FlashData", data_sectors),
        ("FlashData+FlashBoot", data_sectors + boot_sectors),
    ] {
        if sectors > usize::from(u16::MAX) {
            return Err(UpgradeError::TooLarge { name, sectors });
        }
    }

    let mut sector0 = [0u8; SECTOR];
    sector0[0..4].copy_from_slice(&V1_MAGIC.to_le_bytes());
    sector0[8..12].copy_from_slice(&u32::from(plain).to_le_bytes());
    sector0[12..14].copy_from_slice(&4u16.to_le_bytes());
    sector0[14..16].copy_from_slice(&4u16.to_le_bytes());
    sector0[506..508].copy_from_slice(&(data_sectors as u16).to_le_bytes());
    sector0[508..510].copy_from_slice(&((data_sectors + boot_sectors) as u16).to_le_bytes());

    let mut sector1 = [0u8; SECTOR];
    sector1[0..2].copy_from_slice(&0xcu16.to_le_bytes());
    sector1[2..4].copy_from_slice(&0xffffu16.to_le_bytes());
    sector1[10..14].copy_from_slice(&SECTOR1_CHIP_TAG.to_le_bytes());

    let sector3 = [0u8; SECTOR];
    let total = (4 + data_sectors + boot_sectors) * SECTOR;
    let mut bytes = vec![0u8; total];
    let data_at = 4 * SECTOR;
    let boot_at = data_at + data_sectors * SECTOR;
    bytes[data_at..data_at + flash_data.len()].copy_from_slice(&flash_data);
    bytes[boot_at..boot_at + flash_boot.len()].copy_from_slice(&flash_boot);

    let crc16 = Crc::<u16>::new(&CRC_16_XMODEM);
    let mut sector2 = [0u8; SECTOR];
    sector2[491..493].copy_from_slice(b"VC");
    sector2[494..496].copy_from_slice(&crc16.checksum(&sector0).to_le_bytes());
    sector2[496..498].copy_from_slice(&crc16.checksum(&sector1).to_le_bytes());
    sector2[498..502].copy_from_slice(&rockchip_crc32(&bytes[data_at..]).to_le_bytes());
    sector2[506..509].copy_from_slice(b"CRC");
    sector2[510..512].copy_from_slice(&crc16.checksum(&sector3).to_le_bytes());

    for (n, sector) in [sector0, sector1, sector2, sector3].iter().enumerate() {
        let at = n * SECTOR;
        bytes[at..at + SECTOR].copy_from_slice(sector);
        // Sector 1 stays plain; the others are scrambled like the BootROM expects.
        if n != 1 {
            rc4_stream_in_place(&mut bytes[at..at + RC4_BLOCK]);
        }
    }
    Ok(IdBlock {
        lba: 64,
        bytes,
        parts: vec![
            IdBlockPart {
                name: "header".into(),
                offset: 0,
                size: data_at,
            },
            IdBlockPart {
                name: "FlashData".into(),
                offset: data_at,
                size: data_sectors * SECTOR,
            },
            IdBlockPart {
                name: "FlashBoot".into(),
                offset: boot_at,
                size: boot_sectors * SECTOR,
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idblock::{IdBlockReport, inspect, parse_v1};
    use crate::soc::by_name;
    use crate::standin::build_container;

    #[test]
    fn standin_ldr_gives_a_verifying_rkns_block() {
        let c = build_container(by_name("rk3588").unwrap());
        let idb = build_id_block(&c).unwrap();
        assert_eq!(idb.lba, 64);
        let names: Vec<_> = idb.parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["FlashHead", "FlashData", "FlashBoot"]);
        let report = inspect(&idb.bytes).unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert!(idb.bytes[2048..].starts_with(crate::standin::STANDIN_MARKER.as_bytes()));
    }

    #[test]
    fn standin_boot_gives_an_old_header() {
        let c = build_container(by_name("rk3399").unwrap());
        let idb = build_id_block(&c).unwrap();
        let header = parse_v1(&idb.bytes).unwrap();
        assert_eq!(header.init_offset_sectors, 4);
        assert_eq!(header.init_size_sectors, 4);
        assert_eq!(header.init_boot_size_sectors, 8);
        // The stand-in's BOOT header has RC4 enabled, so the boot code stays scrambled.
        assert_eq!(header.disable_rc4, 0);
        assert!(matches!(inspect(&idb.bytes), Ok(IdBlockReport::V1 { .. })));
        let mut data = idb.bytes[2048..2560].to_vec();
        rc4_stream_in_place(&mut data);
        assert!(data.starts_with(crate::standin::STANDIN_MARKER.as_bytes()));
    }
}
