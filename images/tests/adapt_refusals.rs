//! Every input `adapt` must refuse, each with the error that says why, and the source
//! left untouched.

mod generic;

use generic::*;
use rockusb_images::NANOPI_M6;
use rockusb_images::adapt::{self, AdaptError, AdaptRequest, DtbFile};
use rockusb_images::gpt::GptHeader;
use rockusb_images::read_at::SeekReader;
use std::path::{Path, PathBuf};
use std::process::Command;

fn plan(path: &Path, uboot: &[u8], name: &str) -> Result<adapt::AdaptPlan, AdaptError> {
    let file = std::fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    let dtb = vec![0xD0u8; 4096];
    let request = AdaptRequest {
        layout: &NANOPI_M6,
        uboot,
        dtb: Some(DtbFile { name, bytes: &dtb }),
    };
    adapt::plan(SeekReader(file), len, &request)
}

/// Plans `path` with a small U-Boot and checks the source did not change.
fn refused(path: &Path) -> AdaptError {
    let before = std::fs::read(path).unwrap();
    let result = plan(path, &[0x5A; 4096], "rk3588s-nanopi-m6.dtb");
    assert!(
        std::fs::read(path).unwrap() == before,
        "planning changed the source"
    );
    result.expect_err("this input must be refused")
}

fn fresh(dir: &Path) -> PathBuf {
    generic_image(dir)
}

/// Standard CRC-32 (IEEE), as GPT uses it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Changes the entry array with `edit` in both table copies, keeping every CRC valid.
fn edit_entries(path: &Path, edit: impl Fn(&mut [u8])) {
    let len = std::fs::metadata(path).unwrap().len();
    for header_lba in [1, len / 512 - 1] {
        let sector = read_range(path, header_lba * 512, 512);
        let header = GptHeader::parse(&sector).unwrap();
        let mut array = read_range(path, header.entries_lba * 512, header.entries_len());
        edit(&mut array);
        write_at(path, header.entries_lba * 512, &array);
        let new = GptHeader {
            entries_crc32: crc32(&array),
            ..header
        };
        write_at(path, header_lba * 512, &new.to_bytes());
    }
}

fn set_lbas(array: &mut [u8], slot: usize, first: u64, last: u64) {
    array[slot * 128 + 32..slot * 128 + 40].copy_from_slice(&first.to_le_bytes());
    array[slot * 128 + 40..slot * 128 + 48].copy_from_slice(&last.to_le_bytes());
}

#[test]
fn each_bad_table_is_refused_with_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = fresh(dir.path());
    let copy = |name: &str| {
        let path = dir.path().join(name);
        std::fs::copy(&pristine, &path).unwrap();
        path
    };

    let no_gpt = copy("no-gpt.raw");
    write_at(&no_gpt, 512, &[0; 512]);
    write_at(&no_gpt, IMAGE_LEN - 512, &[0; 512]);
    assert!(matches!(refused(&no_gpt), AdaptError::NoGpt));

    let damaged = copy("damaged.raw");
    write_at(&damaged, 512 + 40, &[0x77]);
    let err = refused(&damaged);
    assert!(matches!(err, AdaptError::DamagedGpt { .. }), "{err}");
    assert!(err.to_string().contains("CRC"), "{err}");

    let no_esp = copy("no-esp.raw");
    run(Command::new("sgdisk").args(["-t", "1:8300"]).arg(&no_esp));
    assert!(matches!(refused(&no_esp), AdaptError::NoEsp));

    let not_fat = copy("not-fat.raw");
    write_at(&not_fat, ESP_LBA * 512, &[0; 512]);
    let err = refused(&not_fat);
    assert!(
        matches!(err, AdaptError::EspNotFat { number: 1, .. }),
        "{err}"
    );

    let overlap = copy("overlap.raw");
    edit_entries(&overlap, |array| {
        set_lbas(array, 1, META_LBA - 8, META_LBA + 2047)
    });
    let err = refused(&overlap);
    assert!(
        matches!(&err, AdaptError::PartitionCannotMove { number: 2, .. })
            && err.to_string().contains("overlaps"),
        "{err}"
    );

    let reversed = copy("reversed.raw");
    edit_entries(&reversed, |array| {
        set_lbas(array, 2, STATE_LBA + 10, STATE_LBA)
    });
    let err = refused(&reversed);
    assert!(err.to_string().contains("reversed"), "{err}");

    // Cut short (a broken download): STATE runs past the end; the backup table is gone.
    let truncated = copy("truncated.raw");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(IMAGE_LEN - 4 * MIB)
        .unwrap();
    let err = refused(&truncated);
    assert!(
        matches!(&err, AdaptError::PartitionCannotMove { number: 3, .. })
            && err.to_string().contains("truncated"),
        "{err}"
    );
}

#[test]
fn u_boot_and_dtb_name_limits() {
    let dir = tempfile::tempdir().unwrap();
    let image = fresh(dir.path());
    let max = NANOPI_M6.bootloader_max_len() as usize;
    assert!(
        plan(&image, &vec![1; max], "x.dtb").is_ok(),
        "U-Boot of exactly the maximum fits"
    );
    match plan(&image, &vec![1; max + 1], "x.dtb") {
        Err(AdaptError::UbootTooLarge {
            len,
            max: m,
            start,
            end,
            ..
        }) => {
            assert_eq!(
                (len, m, start, end),
                (max as u64 + 1, max as u64, 32768, 10_486_784)
            );
        }
        other => panic!("expected UbootTooLarge, got {other:?}"),
    }
    assert!(matches!(
        plan(&image, &[], "x.dtb"),
        Err(AdaptError::UbootEmpty)
    ));
    assert!(matches!(
        plan(&image, &[1], "dtb/x.dtb"),
        Err(AdaptError::DtbName { .. })
    ));
}

#[test]
fn a_full_esp_is_refused_when_the_dtb_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let image = fresh(dir.path());
    let esp = format!("{}@@{}", image.display(), ESP_LBA * 512);
    let listing = String::from_utf8(run(Command::new("mdir").args(["-i", &esp, "::"]))).unwrap();
    let free: u64 = listing
        .lines()
        .find_map(|l| l.trim().strip_suffix(" bytes free"))
        .map(|n| n.replace([' ', ','], "").parse().unwrap())
        .expect("mdir reports the free space");
    let filler = dir.path().join("fill.bin");
    rockusb_testkit::fs::sized_file(&filler, free);
    run(Command::new("mcopy")
        .args(["-i", &esp])
        .arg(&filler)
        .arg("::fill.bin"));
    let err = refused(&image);
    assert!(matches!(err, AdaptError::DtbInsert { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("/dtb/rockchip/rk3588s-nanopi-m6.dtb"),
        "{err}"
    );
}
