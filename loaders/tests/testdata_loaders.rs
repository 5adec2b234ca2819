//! Every loader in the shared test data parses, verifies, matches the collected
//! field values and writes back to identical bytes; the negative vector is rejected.

use std::path::Path;

use rockusb_loaders::{ContainerError, EntryKind, LoaderContainer, RawFileKind};
use rockusb_testkit::{RK3588_LOADER, files_in};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn expected_values(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("expected_values.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn kind_label(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Area471 => "471",
        EntryKind::Area472 => "472",
        EntryKind::Loader => "loader",
    }
}

#[test]
fn every_loader_matches_expected_values() {
    let Some(dir) = rockusb_testkit::testdata("every_loader_matches_expected_values") else {
        return;
    };
    let expected = expected_values(&dir);
    let files = files_in(&dir.join("loaders"));
    assert!(
        files.len() >= 24,
        "expected the 24 loaders, found {}",
        files.len()
    );
    for path in files {
        let key = format!("loaders/{}", path.file_name().unwrap().to_str().unwrap());
        let want = &expected[&key]["analysis"];
        assert!(want.is_object(), "{key} missing from expected_values.json");
        let bytes = std::fs::read(&path).unwrap();
        let c = LoaderContainer::parse(&bytes).unwrap_or_else(|e| panic!("{key}: {e}"));
        let h = c.header();

        assert_eq!(hex(&h.tag.magic()), want["magic_bytes"], "{key} magic");
        assert_eq!(
            format!("{:#x}", h.version),
            want["version"],
            "{key} version"
        );
        assert_eq!(
            format!("{:#x}", h.merger_version),
            want["merge_version"],
            "{key} merge version"
        );
        assert_eq!(
            h.release_time.to_string(),
            want["release_time"],
            "{key} time"
        );
        assert_eq!(hex(&h.chip.file_bytes()), want["chip_bytes"], "{key} chip");
        assert_eq!(
            format!("{:#x}", h.chip.as_u32()),
            want["chip_u32"],
            "{key} chip u32"
        );
        assert_eq!(u64::from(h.sign_flag), want["sign_flag"], "{key} sign flag");
        assert_eq!(u64::from(h.rc4_flag), want["rc4_flag"], "{key} rc4 flag");
        for kind in EntryKind::ALL {
            let field = format!("{}_count", kind_label(kind));
            assert_eq!(
                c.entries(kind).count() as u64,
                want[&field],
                "{key} {field}"
            );
        }

        let want_entries = want["entries"].as_array().unwrap();
        assert_eq!(
            c.all_entries().len(),
            want_entries.len(),
            "{key} entry count"
        );
        for (entry, w) in c.all_entries().iter().zip(want_entries) {
            let what = format!("{key} entry {}", entry.name);
            assert_eq!(kind_label(entry.kind), w["kind"], "{what} kind");
            assert_eq!(entry.name, w["name"], "{what} name");
            assert_eq!(
                u64::from(entry.file_offset.unwrap()),
                w["data_offset"],
                "{what} offset"
            );
            assert_eq!(entry.data.len() as u64, w["data_size"], "{what} size");
            assert_eq!(u64::from(entry.delay_ms), w["delay"], "{what} delay");
            assert_eq!(
                hex(&Sha256::digest(&entry.data)),
                w["data_sha256"],
                "{what} sha256"
            );
            // Decoding per the container's rules yields the plain first bytes the
            // collector recorded for the matching framing.
            let decoded = entry.decoded(c.tag());
            let framing = match entry.encoding(c.tag()) {
                rockusb_loaders::PayloadEncoding::Raw => "raw",
                rockusb_loaders::PayloadEncoding::Rc4Stream => "rc4_stream",
                rockusb_loaders::PayloadEncoding::Rc4PerBlock => "rc4_512",
            };
            assert_eq!(
                hex(&decoded[..8]),
                w["first8"][framing],
                "{what} decoded first bytes"
            );
        }
        assert_eq!(want["crc_ok"], true);
        let stored = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
        assert_eq!(
            format!("{stored:#x}"),
            want["crc_stored_last4"],
            "{key} crc"
        );
    }
}

#[test]
fn every_loader_writes_back_identically() {
    let Some(dir) = rockusb_testkit::testdata("every_loader_writes_back_identically") else {
        return;
    };
    for path in files_in(&dir.join("loaders")) {
        let bytes = std::fs::read(&path).unwrap();
        let c = LoaderContainer::parse(&bytes).unwrap();
        assert!(c.has_canonical_layout(), "{}", path.display());
        let written = c.to_bytes().unwrap();
        assert!(written == bytes, "{}: rewrite differs", path.display());
    }
}

#[test]
fn negative_vector_is_rejected_as_raw_spl() {
    let Some(dir) = rockusb_testkit::testdata("negative_vector_is_rejected_as_raw_spl") else {
        return;
    };
    let mut seen = 0;
    for path in files_in(&dir.join("loaders/negative")) {
        let bytes = std::fs::read(path).unwrap();
        let err = LoaderContainer::parse(&bytes).unwrap_err();
        assert_eq!(
            err,
            ContainerError::RawFile {
                kind: RawFileKind::RawSpl
            }
        );
        let message = err.to_string();
        assert!(message.contains("raw SPL"), "{message}");
        assert!(message.contains("not a loader container"), "{message}");
        seen += 1;
    }
    assert!(seen >= 1);
}

#[test]
fn damaged_copies_name_the_failed_check() {
    let test = "damaged_copies_name_the_failed_check";
    let Some(bytes) = rockusb_testkit::testdata_bytes(test, RK3588_LOADER) else {
        return;
    };

    let cut = &bytes[..bytes.len() - 1000];
    assert!(matches!(
        LoaderContainer::parse(cut),
        Err(ContainerError::Truncated { actual, .. }) if actual == cut.len() as u64
    ));

    let mut flipped = bytes.clone();
    flipped[100_000] ^= 0x40;
    let err = LoaderContainer::parse(&flipped).unwrap_err();
    assert_eq!(
        err,
        ContainerError::CrcMismatch {
            expected: 0x8694_1314,
            actual: rockusb_loaders::crc32::rockchip_crc32(&flipped[..flipped.len() - 4]),
        }
    );
    assert!(err.to_string().contains("0x86941314"));

    let mut bad_magic = bytes.clone();
    bad_magic[..4].copy_from_slice(b"ZZZZ");
    let err = LoaderContainer::parse(&bad_magic).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("this is not a Rockchip loader container")
    );

    // Entry #1 (the DDR blob) pointing into the header.
    let mut bad_offset = bytes.clone();
    bad_offset[159 + 45..159 + 49].copy_from_slice(&10u32.to_le_bytes());
    let crc = rockusb_loaders::crc32::rockchip_crc32(&bad_offset[..bad_offset.len() - 4]);
    let n = bad_offset.len();
    bad_offset[n - 4..].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        LoaderContainer::parse(&bad_offset),
        Err(ContainerError::EntryOutOfBounds { ref name, .. }) if name == "rk3588_ddr_lp4_2112M"
    ));
}

#[test]
fn rk3588_v1_16_113_is_rebuilt_byte_for_byte() {
    let Some(dir) = rockusb_testkit::testdata("rk3588_v1_16_113_is_rebuilt_byte_for_byte") else {
        return;
    };
    let ini = std::fs::read_to_string(dir.join("rkboot_ini/RK3588MINIALL@f02d10e4.ini")).unwrap();
    let components = rockusb_loaders::ini::ComponentDirs::new([dir.join("rkbin_components")]);
    // The original's header says 2024-06-28 18:54:12.
    let release = rockusb_loaders::ReleaseTime::from_unix_seconds(1_719_600_852);
    let built = rockusb_loaders::ini::build_from_ini(&ini, release, &components).unwrap();
    let bytes = built.to_bytes().unwrap();
    let original = std::fs::read(dir.join(RK3588_LOADER)).unwrap();
    assert_eq!(bytes.len(), original.len());
    let first_difference = bytes.iter().zip(&original).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "rebuild differs from the original");
}

#[test]
fn rk3399_v1_30_130_is_rebuilt_byte_for_byte() {
    let Some(dir) = rockusb_testkit::testdata("rk3399_v1_30_130_is_rebuilt_byte_for_byte") else {
        return;
    };
    let ini = std::fs::read_to_string(dir.join("rkboot_ini/RK3399MINIALL.ini")).unwrap();
    let components = rockusb_loaders::ini::ComponentDirs::new([dir.join("rkbin_components")]);
    let original =
        std::fs::read(dir.join("loaders/armbian-rkbin__rk3399_loader_v1.30.130.bin")).unwrap();
    let release = LoaderContainer::parse(&original)
        .unwrap()
        .header()
        .release_time;
    let built = rockusb_loaders::ini::build_from_ini(&ini, release, &components).unwrap();
    let bytes = built.to_bytes().unwrap();
    assert_eq!(bytes.len(), original.len());
    let first_difference = bytes.iter().zip(&original).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "rebuild differs from the original");
}

#[test]
fn loaders_built_from_parts_match_rkbin() {
    let Some(dir) = rockusb_testkit::testdata("loaders_built_from_parts_match_rkbin") else {
        return;
    };
    use rockusb_loaders::merge::{LoaderParts, NamedBlob, merge, spec_from_parts};
    let blob = |name: &str| NamedBlob {
        file_name: name.to_string(),
        data: std::fs::read(dir.join("rkbin_components").join(name)).unwrap(),
    };
    let cases = [
        (
            "rk3588",
            "rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v1.16.bin",
            "rk3588_usbplug_v1.11.bin",
            "rk3588_spl_v1.13.bin",
            (1, 11),
            "armbian-rkbin__rk3588_spl_loader_v1.16.113.bin",
        ),
        (
            "rk3399",
            "rk3399_ddr_800MHz_v1.30.bin",
            "rk3399_usbplug_v1.30.bin",
            "rk3399_miniloader_v1.30.bin",
            (1, 30),
            "armbian-rkbin__rk3399_loader_v1.30.130.bin",
        ),
    ];
    for (soc, ddr, usbplug, spl, version, original) in cases {
        let original = std::fs::read(dir.join("loaders").join(original)).unwrap();
        let release = LoaderContainer::parse(&original)
            .unwrap()
            .header()
            .release_time;
        let parts = LoaderParts {
            ddr: blob(ddr),
            usbplug: blob(usbplug),
            spl: blob(spl),
            boost: None,
        };
        let soc = rockusb_loaders::soc::by_name(soc).unwrap();
        let spec = spec_from_parts(soc, parts, version, release);
        let bytes = merge(&spec).unwrap().to_bytes().unwrap();
        assert!(bytes == original, "{}: built from parts differs", soc.name);
    }
}

#[test]
fn reading_a_file_names_it_in_errors() {
    let Some(dir) = rockusb_testkit::testdata("reading_a_file_names_it_in_errors") else {
        return;
    };
    let good = dir.join(RK3588_LOADER);
    assert_eq!(
        LoaderContainer::read(&good)
            .unwrap()
            .chip_code()
            .to_string(),
        "RK3588"
    );
    let bad = dir.join("loaders/negative/armbian-rkbin__rk3588_spl_loader_v1.12.bin");
    let message = LoaderContainer::read(&bad).unwrap_err().to_string();
    assert!(message.starts_with(&bad.display().to_string()), "{message}");
    assert!(message.contains("raw SPL"), "{message}");
    let missing = dir.join("loaders/no-such-file.bin");
    let message = LoaderContainer::read(&missing).unwrap_err().to_string();
    assert!(message.starts_with("cannot read"), "{message}");
}

#[test]
fn loaders_are_rebuilt_from_their_own_parts() {
    let Some(dir) = rockusb_testkit::testdata("loaders_are_rebuilt_from_their_own_parts") else {
        return;
    };
    use rockusb_loaders::merge::{RebuildError, merge, spec_from_container};
    let mut identical = 0;
    for path in files_in(&dir.join("loaders")) {
        let bytes = std::fs::read(&path).unwrap();
        let c = LoaderContainer::parse(&bytes).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match spec_from_container(&c) {
            // FlashHead placed last: not a layout boot_merger writes.
            Err(RebuildError::Layout(_)) if name.contains("h66k") => {}
            Err(RebuildError::Signed) if name.contains("rk1806") => {}
            Err(e) => panic!("{name}: {e}"),
            Ok(spec) => {
                let rebuilt = merge(&spec).unwrap().to_bytes().unwrap();
                assert!(rebuilt == bytes, "{name}: rebuild differs");
                identical += 1;
            }
        }
    }
    // Every BOOT and LDR file boot_merger made, RK3576 (4 KiB, FlashBoost) included.
    assert_eq!(identical, 22);
}

#[test]
fn swapping_the_ddr_blob_gives_a_consistent_loader() {
    let Some(dir) = rockusb_testkit::testdata("swapping_the_ddr_blob_gives_a_consistent_loader")
    else {
        return;
    };
    use rockusb_loaders::merge::{merge, spec_from_container};
    let original = LoaderContainer::read(&dir.join(RK3588_LOADER)).unwrap();
    let ddr_name = "rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v1.18.bin";
    let ddr = std::fs::read(dir.join("rkbin_components").join(ddr_name)).unwrap();
    let mut spec = spec_from_container(&original).unwrap();
    spec.code471[0].name = rockusb_loaders::merge::entry_name_from_path(ddr_name);
    spec.code471[0].data = ddr.clone();
    spec.loaders[0].data = ddr.clone();
    let bytes = merge(&spec).unwrap().to_bytes().unwrap();
    let report = rockusb_loaders::report::verify(&bytes);
    assert!(report.ok, "{:#?}", report.checks);
    let rebuilt = LoaderContainer::parse(&bytes).unwrap();
    let stored_ddr = &rebuilt.entries(EntryKind::Area471).nth(1).unwrap().data;
    assert_eq!(&stored_ddr[..ddr.len()], &ddr[..]);
    assert!(stored_ddr[ddr.len()..].iter().all(|&b| b == 0));
    assert_eq!(stored_ddr.len() % 2048, 0);
}

#[test]
fn raw_pairs_go_on_the_wire_like_the_container_payloads() {
    let Some(dir) =
        rockusb_testkit::testdata("raw_pairs_go_on_the_wire_like_the_container_payloads")
    else {
        return;
    };
    use rockusb_loaders::raw::{MaskromStages, RawLoader, RawStage};
    let stage = |name: &str| RawStage {
        name: name.to_string(),
        data: std::fs::read(dir.join("rkbin_components").join(name)).unwrap(),
    };
    let cases = [
        (
            "rk3399",
            "rk3399_ddr_800MHz_v1.30.bin",
            "rk3399_usbplug_v1.30.bin",
            "armbian-rkbin__rk3399_loader_v1.30.130.bin",
        ),
        (
            "rk3588",
            "rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v1.16.bin",
            "rk3588_usbplug_v1.11.bin",
            "armbian-rkbin__rk3588_spl_loader_v1.16.113.bin",
        ),
    ];
    for (soc, ddr, usbplug, loader) in cases {
        let soc = rockusb_loaders::soc::by_name(soc).unwrap();
        let raw = RawLoader::from_pair(soc, stage(ddr), stage(usbplug)).unwrap();
        let container = LoaderContainer::read(&dir.join("loaders").join(loader)).unwrap();
        for kind in [EntryKind::Area471, EntryKind::Area472] {
            let sent = &raw.stage_entries(kind)[0].data;
            // The container's last entry of the area is the component, padded; a
            // continuous RC4 stream makes the raw upload a prefix of it.
            let stored = &container.stage_entries(kind).last().unwrap().data;
            assert_eq!(&stored[..sent.len()], &sent[..], "{} {kind}", soc.name);
        }
    }
}
