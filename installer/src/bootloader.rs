//! Checks on `u-boot-rockchip.bin` before it goes anywhere near a disk, and on the optional
//! `u-boot-rockchip-spi.bin` before it is packed.

use crate::board::{SPI_IDBLOCK_OFFSET, SPI_NOR_LEN};
use rockusb_images::BoardLayout;
use thiserror::Error;

/// The RK3588 BootROM accepts only an ID block with the v2 "RKNS" header at the start
/// of the image; anything else written at sector 64 leaves the board unbootable.
pub const IDBLOCK_V2_MAGIC: &[u8; 4] = b"RKNS";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BootloaderError {
    #[error("the bootloader image is empty")]
    Empty,
    #[error(
        "the bootloader image is {len} bytes, more than the {max} bytes between byte {offset} and the GPT entry array; it would overwrite the partition table. Rebuild U-Boot with a smaller u-boot.itb"
    )]
    TooLarge { len: u64, max: u64, offset: u64 },
    #[error(
        "the bootloader image does not start with a Rockchip ID block (magic RKNS, found {found:02x?}); use the u-boot-rockchip.bin that U-Boot's build writes, not u-boot.bin or u-boot.itb"
    )]
    NotAnIdBlock { found: Vec<u8> },
    #[error("the SPI image is empty")]
    SpiEmpty,
    #[error(
        "the SPI image is {len} bytes, more than the {max}-byte SPI-NOR; use the u-boot-rockchip-spi.bin that U-Boot's build writes with CONFIG_ROCKCHIP_SPI_IMAGE=y"
    )]
    SpiTooLarge { len: u64, max: u64 },
    #[error(
        "the SPI image has no Rockchip ID block at byte {at:#x} (magic RKNS, found {found:02x?}); the BootROM would not boot it from the SPI-NOR. Use U-Boot's u-boot-rockchip-spi.bin, not u-boot-rockchip.bin or idbloader.img"
    )]
    SpiNoIdBlock { at: u64, found: Vec<u8> },
}

/// Validates `image` as the combined bootloader for `layout`.
pub fn validate(image: &[u8], layout: &BoardLayout) -> Result<(), BootloaderError> {
    if image.is_empty() {
        return Err(BootloaderError::Empty);
    }
    let len = image.len() as u64;
    if len > layout.bootloader_max_len() {
        return Err(BootloaderError::TooLarge {
            len,
            max: layout.bootloader_max_len(),
            offset: layout.bootloader_offset(),
        });
    }
    let head = image.get(..IDBLOCK_V2_MAGIC.len()).unwrap_or(image);
    if head != IDBLOCK_V2_MAGIC {
        return Err(BootloaderError::NotAnIdBlock {
            found: head.to_vec(),
        });
    }
    Ok(())
}

/// Validates `image` as `u-boot-rockchip-spi.bin`: it fits the SPI-NOR and carries the
/// RKNS ID block where mainline U-Boot's SPI image puts it ([`SPI_IDBLOCK_OFFSET`]).
pub fn validate_spi(image: &[u8]) -> Result<(), BootloaderError> {
    if image.is_empty() {
        return Err(BootloaderError::SpiEmpty);
    }
    let len = image.len() as u64;
    if len > SPI_NOR_LEN {
        return Err(BootloaderError::SpiTooLarge {
            len,
            max: SPI_NOR_LEN,
        });
    }
    let at = SPI_IDBLOCK_OFFSET as usize;
    let head = image.get(at..).unwrap_or_default();
    let head = head.get(..IDBLOCK_V2_MAGIC.len()).unwrap_or(head);
    if head != IDBLOCK_V2_MAGIC {
        return Err(BootloaderError::SpiNoIdBlock {
            at: SPI_IDBLOCK_OFFSET,
            found: head.to_vec(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rockusb_images::NANOPI_M6;

    #[test]
    fn spi_images_need_the_id_block_at_0x8000_and_must_fit_16_mib() {
        let mut image = vec![0xFFu8; 0x60000];
        assert!(matches!(
            validate_spi(&image),
            Err(BootloaderError::SpiNoIdBlock { at: 0x8000, .. })
        ));
        image[0x8000..0x8004].copy_from_slice(IDBLOCK_V2_MAGIC);
        assert_eq!(validate_spi(&image), Ok(()));
        image.resize(16 * 1024 * 1024 + 1, 0xFF);
        assert!(matches!(
            validate_spi(&image),
            Err(BootloaderError::SpiTooLarge { .. })
        ));
        assert_eq!(validate_spi(&[]), Err(BootloaderError::SpiEmpty));
        // The eMMC image (ID block at 0) is not an SPI image.
        let mut emmc = vec![0xFFu8; 0x10000];
        emmc[..4].copy_from_slice(IDBLOCK_V2_MAGIC);
        assert!(validate_spi(&emmc).is_err());
        assert!(validate_spi(&emmc[..0x8002]).is_err());
    }

    #[test]
    fn the_largest_fitting_image_is_accepted_and_one_more_byte_is_not() {
        let mut image = vec![0xFFu8; NANOPI_M6.bootloader_max_len() as usize];
        image[..4].copy_from_slice(IDBLOCK_V2_MAGIC);
        assert_eq!(validate(&image, &NANOPI_M6), Ok(()));
        image.push(0xFF);
        assert!(matches!(
            validate(&image, &NANOPI_M6),
            Err(BootloaderError::TooLarge {
                len: 10_454_017,
                max: 10_454_016,
                ..
            })
        ));
    }

    #[test]
    fn empty_and_foreign_images_are_refused() {
        assert_eq!(validate(&[], &NANOPI_M6), Err(BootloaderError::Empty));
        assert!(matches!(
            validate(&[0xd0, 0x0d, 0xfe, 0xed, 0], &NANOPI_M6),
            Err(BootloaderError::NotAnIdBlock { .. })
        ));
        assert!(matches!(
            validate(b"RK", &NANOPI_M6),
            Err(BootloaderError::NotAnIdBlock { .. })
        ));
    }
}
