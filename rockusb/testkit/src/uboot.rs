//! U-Boot images assembled from the shared test data's RK3588 pieces (the Rock 5B
//! idbloader and `u-boot.itb`), laid out as U-Boot's binman writes them.

use std::path::Path;

pub const IDBLOADER: &str = "idbloader/stvhay-uboot-rk3588__rock5b__idbloader.img";
pub const UBOOT_ITB: &str = "uboot/stvhay-uboot-rk3588__rock5b__u-boot.itb";

/// Where mainline U-Boot's `u-boot-rockchip-spi.bin` puts the FIT: the M6 defconfig's
/// `CONFIG_SYS_SPI_U_BOOT_OFFS`.
pub const SPI_ITB_OFFSET: usize = 0x60000;

fn read(testdata: &Path, relative: &str) -> Vec<u8> {
    std::fs::read(testdata.join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// A `u-boot-rockchip-spi.bin` laid out like the real RK3566 one in the shared test data
/// (`uboot/ophub-u-boot__orangepi-3b__u-boot-rockchip-spi.bin`): 0xFF fill, the RKNS
/// idbloader at 0x8000, `u-boot.itb` at 0x60000, here with the RK3588 pieces.
pub fn spi_image(testdata: &Path) -> Vec<u8> {
    let idbloader = read(testdata, IDBLOADER);
    let itb = read(testdata, UBOOT_ITB);
    let mut image = vec![0xFFu8; 0x8000];
    image.extend_from_slice(&idbloader);
    assert!(
        image.len() <= SPI_ITB_OFFSET,
        "idbloader overlaps the SPI itb slot"
    );
    image.resize(SPI_ITB_OFFSET, 0xFF);
    image.extend_from_slice(&itb);
    image
}
