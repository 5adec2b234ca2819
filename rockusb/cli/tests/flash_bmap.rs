//! `rockusb flash --bmap`: bmaptool's own fixture in every format version, a bmap that
//! bmaptool makes for a Talos-shaped image, and bmaps with one wrong range checksum.

mod flash_support;

use flash_support::*;
use rockusb_images::bmap::{Bmap, ChecksumType, hex};
use std::path::Path;

fn fixture(test: &str) -> Option<std::path::PathBuf> {
    let dir = rockusb_testkit::testdata(test)?;
    Some(dir.join("bmap"))
}

fn gunzip(path: &Path) -> Vec<u8> {
    rockusb_testkit::run(std::process::Command::new("gzip").arg("-dc").arg(path))
}

/// Replaces range `index`'s checksum with another valid-looking one and, when the file
/// has its own checksum, recomputes it so only the range is wrong.
fn with_wrong_range_checksum(bmap_text: &str, index: usize) -> String {
    let bmap = Bmap::parse(bmap_text.as_bytes()).unwrap();
    let kind = bmap.checksum_type.expect("a bmap with checksums");
    let old = hex::encode(bmap.ranges[index].checksum.as_ref().unwrap());
    let new: String = old
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    let mut text = bmap_text.replacen(&old, &new, 1);
    if let Some(stored) = &bmap.file_checksum {
        let zeros = "0".repeat(stored.len());
        let template = text.replacen(stored.as_str(), &zeros, 1);
        let fresh = hex::encode(&kind.digest(template.as_bytes()));
        text = template.replacen(&zeros, &fresh, 1);
    }
    assert!(
        Bmap::parse(text.as_bytes()).is_ok(),
        "the edited bmap must still parse"
    );
    text
}

#[test]
fn bmaptool_fixture_flashes_and_verifies_in_every_format_version() {
    let Some(bmap_dir) = fixture("bmap_fixture_versions") else {
        return;
    };
    if !rockusb_testkit::tool("bmap_fixture_versions", "gzip", "gzip") {
        return;
    }
    let image = gunzip(&bmap_dir.join("bmaptool__test.image.gz"));
    assert_eq!(image.len(), 821_752);
    for version in ["1.2", "1.3", "1.4", "2.0"] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        board(root, false);
        let loader = standin(root);
        open_board(root)
            .write_storage(
                rockusb::protocol::StorageKind::Emmc,
                0,
                &pseudo_random(MIB as usize, 3),
            )
            .unwrap();
        let bmap = bmap_dir.join(format!("bmaptool__test.image.bmap.v{version}"));
        let out = flash(
            root,
            &bmap_dir.join("bmaptool__test.image.gz"),
            &loader,
            &["--json", "--bmap", bmap.to_str().unwrap()],
        );
        assert!(out.status.success(), "bmap v{version}: {}", text(&out));
        let result = json_result(&out);
        assert_eq!(result["verify"]["verify"], "verified", "v{version}");
        assert_eq!(result["image_len"], 821_752);
        let emmc = emmc(root);
        // The image lies inside the 11 MiB written in full; its partial last sector is
        // padded with zeros.
        assert!(
            emmc[..image.len()] == image[..],
            "v{version}: the eMMC differs"
        );
        assert!(emmc[image.len()..821_760].iter().all(|&b| b == 0));
    }
}

#[test]
fn a_wrong_range_checksum_in_the_fixture_is_refused_before_any_write() {
    let Some(bmap_dir) = fixture("bmap_wrong_checksum_fixture") else {
        return;
    };
    for version in ["1.3", "2.0"] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        board(root, false);
        boot_standin(root);
        open_board(root)
            .write_storage(
                rockusb::protocol::StorageKind::Emmc,
                0,
                &pseudo_random(MIB as usize, 4),
            )
            .unwrap();
        let before = emmc(root);
        let original =
            std::fs::read_to_string(bmap_dir.join(format!("bmaptool__test.image.bmap.v{version}")))
                .unwrap();
        let bad = root.join("bad.bmap");
        std::fs::write(&bad, with_wrong_range_checksum(&original, 5)).unwrap();
        let out = rockusb(
            root,
            &[
                "flash",
                bmap_dir.join("bmaptool__test.image.gz").to_str().unwrap(),
                "--bmap",
                bad.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success(), "v{version}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("bmap range 5"), "v{version}: {stderr}");
        assert!(stderr.contains("does not match"), "v{version}: {stderr}");
        assert!(emmc(root) == before, "v{version}: the storage changed");
    }
}

#[test]
fn a_bmaptool_bmap_of_a_talos_image_writes_its_ranges_and_stops_at_a_wrong_one() {
    if !rockusb_testkit::tool("bmap_talos", "bmaptool", "bmap-tools") {
        return;
    }
    with_talos_image("bmap_talos", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let bmap_path = root.join("talos.bmap");
        rockusb_testkit::run(
            std::process::Command::new("bmaptool")
                .arg("create")
                .arg(raw)
                .arg("-o")
                .arg(&bmap_path),
        );
        let xz = xz(raw);
        board(root, false);
        let stale = plant_stale(root);
        let loader = standin(root);
        let out = flash(
            root,
            &xz,
            &loader,
            &["--json", "--bmap", bmap_path.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", text(&out));
        let emmc_after = emmc(root);
        assert_flashed(&emmc_after, &image);
        assert_eq!(range(&emmc_after, &stale.meta), range(&image, &stale.meta));
        assert!(
            range(&emmc_after, &stale.old_backup_gpt)
                .iter()
                .all(|&b| b == 0)
        );
        assert_eq!(json_result(&out)["verify"]["verify"], "verified");

        // A wrong checksum on a range past the first 11 MiB: refused at that range, saying
        // what was written.
        let text_bmap = std::fs::read_to_string(&bmap_path).unwrap();
        let bmap = Bmap::parse(text_bmap.as_bytes()).unwrap();
        let index = bmap
            .ranges
            .iter()
            .position(|r| r.first_block * bmap.block_size >= BOOT_LBA * 512)
            .expect("a range inside BOOT");
        let bad = root.join("bad.bmap");
        std::fs::write(&bad, with_wrong_range_checksum(&text_bmap, index)).unwrap();
        let out = rockusb(
            root,
            &[
                "flash",
                xz.to_str().unwrap(),
                "--bmap",
                bad.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("bmap range {index}")), "{stderr}");
        assert!(
            stderr.contains("The flash stopped after writing"),
            "{stderr}"
        );
        assert!(stderr.contains("not bootable"), "{stderr}");
        assert_eq!(ChecksumType::Sha256, bmap.checksum_type.unwrap());
    });
}
