//! `verify`, `info` and the automatic loader choice on the shared test data.

use rockusb_loaders::choose::{ChooseOptions, choose_loader};
use rockusb_loaders::report::{CheckStatus, info, verify};
use rockusb_loaders::soc::by_name;
use rockusb_loaders::{ContainerTag, LoaderContainer};
use rockusb_testkit::{RK3588_LOADER, files_in};

fn status(report: &rockusb_loaders::report::VerifyReport, name: &str) -> CheckStatus {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {report:?}"))
        .status
}

#[test]
fn every_loader_verifies_including_its_rkns_heads() {
    let Some(dir) = rockusb_testkit::testdata("every_loader_verifies_including_its_rkns_heads")
    else {
        return;
    };
    for path in files_in(&dir.join("loaders")) {
        let bytes = std::fs::read(&path).unwrap();
        let report = verify(&bytes);
        assert!(report.ok, "{}: {:#?}", path.display(), report.checks);
        let tag = report.info.as_ref().unwrap().tag;
        match tag {
            ContainerTag::Ldr => {
                assert_eq!(
                    status(&report, "usb_head"),
                    CheckStatus::Pass,
                    "{}",
                    path.display()
                );
                assert_eq!(
                    status(&report, "flash_head"),
                    CheckStatus::Pass,
                    "{}",
                    path.display()
                );
            }
            // The signed RK1806 loader carries an extra 471 blob (UsbDataVRL) that is
            // not code; it is reported, not failed.
            ContainerTag::Boot if report.info.as_ref().unwrap().signed => {
                assert_eq!(status(&report, "stage_encoding"), CheckStatus::Warn);
                let check = report
                    .checks
                    .iter()
                    .find(|c| c.name == "stage_encoding")
                    .unwrap();
                assert!(check.detail.contains("UsbDataVRL"), "{}", check.detail);
            }
            ContainerTag::Boot => {
                assert_eq!(
                    status(&report, "stage_encoding"),
                    CheckStatus::Pass,
                    "{}",
                    path.display()
                );
            }
        }
        assert_eq!(
            status(&report, "id_block"),
            CheckStatus::Pass,
            "{}",
            path.display()
        );
        // The JSON form carries the entry table.
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["info"]["entries"].as_array().unwrap().len() >= 4);
    }
}

#[test]
fn negative_vector_fails_verification_naming_raw_spl() {
    let Some(dir) = rockusb_testkit::testdata("negative_vector_fails_verification") else {
        return;
    };
    let bytes =
        std::fs::read(dir.join("loaders/negative/armbian-rkbin__rk3588_spl_loader_v1.12.bin"))
            .unwrap();
    let report = verify(&bytes);
    assert!(!report.ok);
    assert_eq!(status(&report, "container"), CheckStatus::Fail);
    assert!(report.checks[0].detail.contains("raw SPL"));
}

#[test]
fn a_usbhead_that_does_not_match_its_payloads_fails() {
    let test = "a_usbhead_that_does_not_match_its_payloads_fails";
    let Some(original) = rockusb_testkit::testdata_bytes(test, RK3588_LOADER) else {
        return;
    };
    // Change one byte of the DDR payload and fix the CRC: the container is valid, but
    // the UsbHead hash no longer matches (a hand-edited loader).
    let mut edited = original.clone();
    edited[2492 + 5000] ^= 0xff;
    let n = edited.len();
    let crc = rockusb_loaders::crc32::rockchip_crc32(&edited[..n - 4]);
    edited[n - 4..].copy_from_slice(&crc.to_le_bytes());
    assert!(LoaderContainer::parse(&edited).is_ok());
    let report = verify(&edited);
    assert!(!report.ok);
    assert_eq!(status(&report, "usb_head"), CheckStatus::Fail);
    assert_eq!(status(&report, "flash_head"), CheckStatus::Pass);
}

#[test]
fn info_describes_the_rk3588_loader() {
    let test = "info_describes_the_rk3588_loader";
    let Some(bytes) = rockusb_testkit::testdata_bytes(test, RK3588_LOADER) else {
        return;
    };
    let i = info(&LoaderContainer::parse(&bytes).unwrap());
    assert_eq!(i.magic, "LDR ");
    assert_eq!(i.version, "1.11");
    assert_eq!(i.soc, Some("RK3588"));
    assert_eq!(i.usb_pid, Some(0x350b));
    assert_eq!(i.chip.to_string(), "RK3588");
    assert!(i.rc4_disabled && !i.standin && !i.signed);
    let json = serde_json::to_value(&i).unwrap();
    assert_eq!(json["chip"], "RK3588");
    assert_eq!(json["release_time"], "2024-06-28 18:54:12");
    assert_eq!(json["entries"][1]["name"], "rk3588_ddr_lp4_2112M");
    assert_eq!(json["entries"][4]["encoding"], "Rc4PerBlock");
    // The decoded FlashData is the DDR blob stored raw in the 471 entry.
    assert_eq!(
        json["entries"][4]["decoded_sha256"],
        json["entries"][1]["sha256"]
    );
}

#[test]
fn automatic_choice_over_the_shared_loaders() {
    let Some(dir) = rockusb_testkit::testdata("automatic_choice_over_the_shared_loaders") else {
        return;
    };
    let rk3588 = by_name("rk3588").unwrap();
    let choice = choose_loader(&[dir.join("loaders")], rk3588, ChooseOptions::default()).unwrap();
    // Five RK3588 loaders; the newest release is the elfboard MiniLoaderAll (2024-11-23).
    assert_eq!(
        choice.chosen.path.file_name().unwrap(),
        "ophub-u-boot__elfboard-elf2__MiniLoaderAll.bin"
    );
    assert_eq!(choice.other_candidates.len(), 4);
    assert!(choice.why.contains("newest of 5"), "{}", choice.why);
    // Every other loader in the folder is rejected with its chip named.
    assert_eq!(
        choice.rejected.len(),
        files_in(&dir.join("loaders")).len() - 5
    );
    assert!(
        choice
            .rejected
            .iter()
            .any(|r| r.reason.contains("RK3399, not RK3588"))
    );
    assert!(choice.rejected.iter().any(|r| {
        r.reason
            .contains("a loader for chip RK3528, which is not RK3588")
    }));

    // The negative folder only holds the raw SPL, which is rejected as such.
    let err = choose_loader(
        &[dir.join("loaders/negative")],
        rk3588,
        ChooseOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.rejected.len(), 1);
    assert!(err.rejected[0].reason.contains("raw SPL"));
}
