//! Recognising a Rockchip bootloader (an ID block) where the BootROM looks for it.
//!
//! Two header formats exist (u-boot `tools/rkcommon.c`): v2 (RK35xx), a plain 2 KiB
//! header starting with the magic `RKNS`, and v1 (RK33xx and older), whose first 512
//! bytes are RC4-scrambled with Rockchip's fixed key and decrypt to 0x0FF0AA55. The
//! loader crate owns both formats and the RC4 key; this is the layouts' name for its
//! classification.

pub use rockusb_loaders::idblock::SectorKind as BootloaderKind;

/// Classifies the first sector of the bootloader region.
pub fn detect(sector: &[u8; 512]) -> BootloaderKind {
    rockusb_loaders::idblock::classify_sector(sector)
}
