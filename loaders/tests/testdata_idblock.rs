//! ID block files from the shared test data: headers parsed, hashes verified, the
//! truncated file reported as truncated; ID blocks built from every loader verify.

use std::path::Path;

use rockusb_loaders::idblock::{IdBlockReport, V1Layout, inspect};
use rockusb_loaders::rkns::ImageStatus;
use rockusb_loaders::upgrade::build_id_block;
use rockusb_loaders::{ContainerTag, LoaderContainer};
use rockusb_testkit::{RK3588_LOADER, files_in};
use serde_json::Value;

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn expected_values(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("expected_values.json")).unwrap())
        .unwrap()
}

fn parse_hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn every_idbloader_matches_expected_values() {
    let Some(dir) = rockusb_testkit::testdata("every_idbloader_matches_expected_values") else {
        return;
    };
    let expected = expected_values(&dir);
    let mut checked = 0;
    for path in files_in(&dir.join("idbloader")) {
        let key = format!("idbloader/{}", path.file_name().unwrap().to_str().unwrap());
        let want = &expected[&key]["analysis"];
        let bytes = std::fs::read(&path).unwrap();
        let report = inspect(&bytes).unwrap_or_else(|e| panic!("{key}: {e}"));
        match report {
            IdBlockReport::RknsV2 {
                ref header,
                ref images,
                ref copies_at,
                declared_end,
                file_len,
                truncated,
            } => {
                let w = &want["rkns"];
                assert!(
                    want["format"].as_str().unwrap().starts_with("RKNS"),
                    "{key}"
                );
                assert_eq!(
                    u64::from(header.size_and_nimage),
                    parse_hex_u64(&w["size_and_nimage"])
                );
                assert_eq!(header.hash_offset as u64, w["hash_field_offset_bytes"]);
                assert_eq!(header.images.len() as u64, w["num_images"]);
                assert_eq!(header.header_hash_ok, w["header_hash_ok"] == true, "{key}");
                assert!(header.header_hash_ok, "{key}");
                for (image, wi) in header.images.iter().zip(w["images"].as_array().unwrap()) {
                    assert_eq!(
                        u64::from(image.offset_sectors),
                        wi["offset_sectors"],
                        "{key}"
                    );
                    assert_eq!(u64::from(image.size_sectors), wi["size_sectors"], "{key}");
                    assert_eq!(
                        u64::from(image.address),
                        parse_hex_u64(&wi["address"]),
                        "{key}"
                    );
                    assert_eq!(u64::from(image.counter), wi["counter"], "{key}");
                    assert_eq!(hex(&image.hash[..32]), wi["hash"], "{key}");
                }
                assert_eq!(declared_end as u64, want["declared_end_bytes"], "{key}");
                assert_eq!(file_len as u64, want["file_size"], "{key}");
                assert_eq!(truncated, want["truncated"] == true, "{key}");
                let want_copies: Vec<u64> = want["rkns_copies_at"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(parse_hex_u64)
                    .collect();
                let copies: Vec<u64> = copies_at.iter().map(|&c| c as u64).collect();
                assert_eq!(copies, want_copies, "{key}");
                for (check, wi) in images.iter().zip(w["images"].as_array().unwrap()) {
                    match wi.get("hash_ok") {
                        Some(Value::Bool(true)) => {
                            assert_eq!(check.status, ImageStatus::Ok, "{key} image {}", check.index)
                        }
                        // The oracle leaves hash_ok out where the image is cut off.
                        _ => assert!(
                            matches!(check.status, ImageStatus::Truncated { .. }),
                            "{key} image {} should be truncated, got {:?}",
                            check.index,
                            check.status
                        ),
                    }
                }
                assert_eq!(report.is_ok(), !truncated, "{key}");
            }
            IdBlockReport::V1 { ref header, .. } => {
                assert!(want["format"].as_str().unwrap().starts_with("v1"), "{key}");
                let w = &want["header0"];
                assert_eq!(u64::from(header.disable_rc4), w["disable_rc4"], "{key}");
                assert_eq!(
                    u64::from(header.init_offset_sectors),
                    w["init_offset_sectors"]
                );
                assert_eq!(u64::from(header.init_size_sectors), w["init_size_sectors"]);
                assert_eq!(
                    u64::from(header.init_boot_size_sectors),
                    w["init_boot_size_sectors"]
                );
                let layout = want["layout"].as_str().unwrap();
                let (offset, tag) = header.spl_tag.clone().unwrap();
                if layout.starts_with("rkspi") {
                    assert_eq!(header.layout, V1Layout::Spi, "{key}");
                    assert_eq!(tag, want["hdr1_spi_at_0x1000"], "{key}");
                    assert_eq!(offset, 0x1000);
                } else {
                    assert_eq!(header.layout, V1Layout::Flat, "{key}");
                    assert_eq!(tag, want["hdr1_sdmmc_at_0x800"], "{key}");
                    assert_eq!(offset, 0x800);
                }
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 11);
}

#[test]
fn truncated_idbloader_is_reported_as_truncated() {
    let test = "truncated_idbloader_is_reported_as_truncated";
    let file = "idbloader/ophub-u-boot__orangepi-5-pro__idbloader.img";
    let Some(bytes) = rockusb_testkit::testdata_bytes(test, file) else {
        return;
    };
    let report = inspect(&bytes).unwrap();
    let IdBlockReport::RknsV2 {
        images, truncated, ..
    } = &report
    else {
        panic!("not RKNS: {report:?}");
    };
    assert!(*truncated);
    assert_eq!(images[0].status, ImageStatus::Ok);
    assert_eq!(
        images[1].status,
        ImageStatus::Truncated {
            needed_end: 303_104,
            file_len: 302_080
        }
    );
    assert!(!report.is_ok());
}

#[test]
fn id_blocks_built_from_every_ldr_loader_verify() {
    let Some(dir) = rockusb_testkit::testdata("id_blocks_built_from_every_ldr_loader_verify")
    else {
        return;
    };
    let mut built = 0;
    for path in files_in(&dir.join("loaders")) {
        let c = LoaderContainer::parse(&std::fs::read(&path).unwrap()).unwrap();
        let idb = build_id_block(&c).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if c.tag() == ContainerTag::Ldr {
            let report = inspect(&idb.bytes).unwrap();
            assert!(report.is_ok(), "{}: {report:?}", path.display());
            let loader_count = c.entries(rockusb_loaders::EntryKind::Loader).count();
            assert_eq!(idb.parts.len(), loader_count, "{}", path.display());
            built += 1;
        }
    }
    assert_eq!(built, 12);
}

#[test]
fn rk3576_id_block_places_flashboost_where_flashhead_says() {
    let Some(dir) = rockusb_testkit::testdata("rk3576_id_block_places_flashboost") else {
        return;
    };
    let path = dir.join("loaders/ophub-u-boot__lubancat-3__rk3576_spl_loader_v1.08.106.bin");
    let c = LoaderContainer::parse(&std::fs::read(path).unwrap()).unwrap();
    let idb = build_id_block(&c).unwrap();
    let placed: Vec<(&str, usize)> = idb
        .parts
        .iter()
        .map(|p| (p.name.as_str(), p.offset))
        .collect();
    assert_eq!(placed[0], ("FlashHead", 0));
    assert_eq!(placed[1], ("FlashBoost", 8 * 512));
    assert_eq!(placed[2].0, "FlashData");
    assert_eq!(placed[3].0, "FlashBoot");
}

#[test]
fn rk3588_id_block_matches_the_nanopc_t6_ddr_image() {
    let Some(dir) = rockusb_testkit::testdata("rk3588_id_block_matches_the_nanopc_t6_ddr_image")
    else {
        return;
    };
    // Both carry DDR init v1.16 as image 0 at sector 4.
    let loader = std::fs::read(dir.join(RK3588_LOADER)).unwrap();
    let idb = build_id_block(&LoaderContainer::parse(&loader).unwrap()).unwrap();
    let t6 = std::fs::read(dir.join("idbloader/ophub-u-boot__nanopc-t6__idbloader.img")).unwrap();
    assert_eq!(idb.bytes[2048..2048 + 75_776], t6[2048..2048 + 75_776]);
}
