//! Checks on `u-boot-rockchip.bin` before it goes anywhere near a disk.

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

#[cfg(test)]
mod tests {
    use super::*;
    use rockusb_images::NANOPI_M6;

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
