//! A damaged image file is refused before the first write when the whole image is decoded
//! first (`--check`; by default only where that is cheap), and the board keeps every byte
//! it had.

mod flash_support;

use flash_support::*;
use rockusb::protocol::StorageKind;
use std::path::{Path, PathBuf};

/// A copy of `file` with bytes flipped in the middle of its compressed data.
fn damaged(file: &Path) -> PathBuf {
    let mut bytes = std::fs::read(file).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5A;
    }
    let name = format!("damaged-{}", file.file_name().unwrap().to_string_lossy());
    let out = file.with_file_name(name);
    std::fs::write(&out, bytes).unwrap();
    out
}

/// The board as a used one: an old system's bytes all over the first 40 MiB.
fn used_board(root: &Path) -> Vec<u8> {
    board(root, false);
    let old = rockusb_testkit::talos::pseudo_random(40 << 20, 77);
    open_board(root)
        .write_storage(StorageKind::Emmc, 0, &old)
        .unwrap();
    emmc(root)
}

#[test]
fn a_damaged_xz_gz_or_zst_image_is_refused_before_any_write() {
    with_talos_image("damaged_image", damaged_images_are_refused);
}

fn damaged_images_are_refused(root: &Path, raw: &Path) {
    let loader = standin(root);
    let before = used_board(root);
    let images = [
        xz(raw),
        compress(raw, "gzip", &["-1"], "gz"),
        compress(raw, "zstd", &["-1", "-q"], "zst"),
    ];
    for image in &images {
        let bad = damaged(image);
        let out = flash(root, &bad, &loader, &["--check"]);
        assert!(!out.status.success(), "{} was flashed", bad.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("is damaged") && stderr.contains("Nothing was written"),
            "{stderr}"
        );
        assert!(
            emmc(root) == before,
            "{}: the board changed before the damage was found",
            bad.display()
        );
    }

    // Without the check the damage is found only midway, after writes: what the check
    // prevents.
    let bad = damaged(&images[0]);
    let out = flash(root, &bad, &loader, &["--no-check"]);
    assert!(!out.status.success());
    assert!(
        emmc(root) != before,
        "nothing was written before the damage"
    );

    // By default this small, mostly empty image is not decoded first (the check would
    // cost more than a tenth of the flash), and the output says so.
    let out = flash(root, &images[0], &loader, &["--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let events = json_events(&out);
    assert!(
        events.iter().any(|e| e["event"] == "note"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("--check to do it anyway")),
        "{}",
        text(&out)
    );
    assert!(!events.iter().any(|e| e["event"] == "image-checked"));

    // A sound image passes the check and says so.
    let out = flash(root, &images[0], &loader, &["--json", "--check"]);
    assert!(out.status.success(), "{}", text(&out));
    let checked = json_events(&out)
        .into_iter()
        .find(|e| e["event"] == "image-checked")
        .unwrap_or_else(|| panic!("no image-checked event:\n{}", text(&out)));
    assert_eq!(checked["bytes"], std::fs::metadata(raw).unwrap().len());
}
