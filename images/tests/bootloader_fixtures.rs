//! Bootloader recognition on real ID blocks from `../shared/testdata/idbloader`.

use rockusb_images::NANOPI_M6;
use rockusb_images::bootloader::{BootloaderKind, detect};
use rockusb_images::preflight::{Finding, PreflightInput, preflight};

#[test]
fn real_idbloaders_are_recognised_by_generation() {
    let Some(dir) = rockusb_testkit::testdata("real_idbloaders_are_recognised_by_generation")
    else {
        return;
    };
    let cases = [
        (
            "nanopi-m6__friendlyelec-vendor__idbloader.img",
            BootloaderKind::Rkns,
        ),
        (
            "stvhay-uboot-rk3588__rock5b__idbloader.img",
            BootloaderKind::Rkns,
        ),
        (
            "ophub-u-boot__fine3399__idbloader.bin",
            BootloaderKind::Rc4IdBlock,
        ),
        (
            "ophub-u-boot__beikeyun__idbloader.bin",
            BootloaderKind::Rc4IdBlock,
        ),
    ];
    for (name, expected) in cases {
        let data = std::fs::read(dir.join("idbloader").join(name)).unwrap();
        let sector: [u8; 512] = data[..512].try_into().unwrap();
        assert_eq!(detect(&sector), expected, "{name}");
    }
}

#[test]
fn an_image_carrying_the_vendor_idbloader_at_sector_64_has_no_bootloader_warning() {
    let Some(dir) = rockusb_testkit::testdata(
        "an_image_carrying_the_vendor_idbloader_at_sector_64_has_no_bootloader_warning",
    ) else {
        return;
    };
    let idb =
        std::fs::read(dir.join("idbloader/nanopi-m6__friendlyelec-vendor__idbloader.img")).unwrap();
    let offset = NANOPI_M6.bootloader_offset() as usize;
    let mut image = vec![0u8; offset + idb.len()];
    image[offset..].copy_from_slice(&idb);
    let input = PreflightInput {
        layout: &NANOPI_M6,
        image_len: Some(image.len() as u64),
        storage_len: None,
        check_backup_gpt: true,
    };
    let pf = preflight(image.as_slice(), input).unwrap();
    assert_eq!(pf.bootloader, Some(BootloaderKind::Rkns));
    assert!(!pf.findings.iter().any(|f| matches!(
        f,
        Finding::BootloaderMissing { .. } | Finding::BootloaderBeyondImage { .. }
    )));

    // The same idbloader one sector off is not where the BootROM looks.
    let mut shifted = vec![0u8; offset + 512 + idb.len()];
    shifted[offset + 512..].copy_from_slice(&idb);
    let pf = preflight(shifted.as_slice(), input).unwrap();
    assert!(pf.findings.contains(&Finding::BootloaderMissing {
        layout: "nanopi-m6",
        lba: 64,
        found: BootloaderKind::Empty
    }));
}
