//! `rockusb flash IMAGE --to DEVICE` onto a loop device and a file, the way an SD card in a
//! reader is written: the board's pipeline (sparse, old backup GPT wiped, verified), a
//! mounted device refused and left alone, and read-backs that come from the medium rather
//! than the page cache. Loop devices need root and a free `/dev/loopN`; without them the
//! tests that use one say SKIPPED (and fail under CI).

mod flash_support;

use flash_support::*;
use rockusb::local::{Host, LocalDisk};
use rockusb::ops::flash::verify::{Verifier, VerifyError, Written};
use rockusb::ops::sectors::Sectors;
use rockusb_images::ByteRange;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop device over a file, detached when dropped.
struct Loop {
    dev: String,
}

impl Loop {
    /// Attaches `file`; `None` (the test skipped, or failed under CI) when loop devices
    /// cannot be used here.
    fn attach(test: &str, file: &Path) -> Option<Loop> {
        if !rockusb_testkit::tool(test, "losetup", "mount") {
            return None;
        }
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file)
            .output()
            .unwrap();
        if !out.status.success() {
            rockusb_testkit::missing(
                test,
                "a free loop device",
                &format!(
                    "`losetup -f` failed ({}); run as root where /dev/loop-control exists",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            );
            return None;
        }
        let dev = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Some(Loop { dev })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// A file system mounted at a folder, unmounted when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A used 64 MiB card: random bytes everywhere, an old backup GPT in its last sectors.
fn used_card(path: &Path) -> Vec<u8> {
    let mut card = pseudo_random(EMMC_LEN as usize, 41);
    let gpt_header = (EMMC_LEN - 512) as usize;
    card[gpt_header..gpt_header + 8].copy_from_slice(b"EFI PART");
    std::fs::write(path, &card).unwrap();
    card
}

/// Checks what a flash of `image` left on a used card (`before`, now `after`): the image
/// over every must-write region and non-zero block, the old backup GPT zeroed, and stale
/// bytes left where the image's free space was skipped.
fn assert_card_flashed(before: &[u8], after: &[u8], image: &[u8]) {
    assert_eq!(after.len(), before.len(), "the card changed size");
    assert_flashed(after, image);
    let meta = (META_LBA * 512) as usize..(META_LBA * 512 + META_LEN) as usize;
    assert_eq!(after[meta.clone()], image[meta], "META is the image's");
    let old_gpt = (EMMC_LEN - 33 * 512) as usize..EMMC_LEN as usize;
    assert!(
        after[old_gpt].iter().all(|&b| b == 0),
        "the old backup GPT at the card's end was not wiped"
    );
    let untouched = after
        .chunks(4096)
        .zip(before.chunks(4096))
        .filter(|(a, b)| a == b)
        .count();
    assert!(untouched > 0, "a sparse flash skips the free space of BOOT");
}

/// The `result` of a successful `flash --json --to`, checked for a verified flash.
fn verified_result(out: &std::process::Output, to: &str) -> serde_json::Value {
    assert!(out.status.success(), "{}", text(out));
    let result = json_result(out);
    assert_eq!(result["to"], to);
    assert_eq!(result["verify"]["verify"], "verified", "{result}");
    assert!(result["bytes_skipped"].as_u64().unwrap() > 0, "{result}");
    let events = json_events(out);
    for phase in ["write", "verify"] {
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "phase-done" && e["phase"] == phase),
            "no {phase} phase in the events:\n{}",
            text(out)
        );
    }
    assert!(
        events.iter().any(|e| e["event"] == "progress"),
        "no progress events"
    );
    result
}

#[test]
fn flash_to_a_loop_device_writes_the_image_wipes_the_old_backup_gpt_and_verifies() {
    with_talos_image("flash_to_loop", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let card_file = root.join("card.img");
        let before = used_card(&card_file);
        let Some(card) = Loop::attach("flash_to_loop", &card_file) else {
            return;
        };
        let xz = xz(raw);
        let out = rockusb(
            root,
            &["--json", "flash", xz.to_str().unwrap(), "--to", &card.dev],
        );
        let result = verified_result(&out, &card.dev);
        assert_eq!(result["direct_io"], true, "{result}");
        assert_eq!(result["target"]["kind"], "block-device");
        assert_eq!(result["target"]["disk"]["bus"], "loop");
        let wiped = (result["wiped"][0].as_u64(), result["wiped"][1].as_u64());
        assert!(
            matches!(wiped, (Some(start), Some(len)) if start + len == EMMC_LEN && len >= 33 * 512),
            "the old backup GPT at the card's end: {result}"
        );
        drop(card);
        let after = std::fs::read(&card_file).unwrap();
        assert_card_flashed(&before, &after, &image);
    });
}

#[test]
fn flash_to_a_file_writes_the_image_into_it_or_creates_it() {
    with_talos_image("flash_to_file", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let xz = xz(raw);

        // A file holding a used card.
        let card_file = root.join("card.img");
        let before = used_card(&card_file);
        let to = card_file.to_str().unwrap();
        let out = rockusb(root, &["--json", "flash", xz.to_str().unwrap(), "--to", to]);
        let result = verified_result(&out, to);
        assert_eq!(result["direct_io"], false);
        assert_eq!(result["target"]["existed"], true);
        let after = std::fs::read(&card_file).unwrap();
        assert_card_flashed(&before, &after, &image);

        // A new file: the image itself, zeros skipped as holes.
        let new = root.join("new.img");
        let to = new.to_str().unwrap();
        let out = rockusb(root, &["--json", "flash", xz.to_str().unwrap(), "--to", to]);
        let result = verified_result(&out, to);
        assert_eq!(result["target"]["existed"], false);
        assert!(
            std::fs::read(&new).unwrap() == image,
            "the new file is not the image"
        );

        // The image itself is not a target.
        let out = rockusb(
            root,
            &[
                "flash",
                raw.to_str().unwrap(),
                "--to",
                raw.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success());
        assert!(text(&out).contains("is the image itself"), "{}", text(&out));
        assert!(std::fs::read(raw).unwrap() == image);
    });
}

#[test]
fn a_mounted_loop_device_is_refused_even_with_force_and_left_unchanged() {
    let test = "flash_to_mounted";
    if !rockusb_testkit::tool(test, "mkfs.ext4", "e2fsprogs") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let card_file = root.join("card.img");
    rockusb_testkit::fs::sized_file(&card_file, 32 * MIB);
    rockusb_testkit::run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&card_file));
    let before = std::fs::read(&card_file).unwrap();
    let image = root.join("image.raw");
    std::fs::write(&image, pseudo_random(4 * MIB as usize, 5)).unwrap();
    let Some(card) = Loop::attach(test, &card_file) else {
        return;
    };
    let point = root.join("mnt");
    std::fs::create_dir(&point).unwrap();
    // Read-only, so the mount itself writes nothing and the bytes can be compared after.
    let mount = Command::new("mount")
        .args(["-o", "ro"])
        .arg(&card.dev)
        .arg(&point)
        .output()
        .unwrap();
    assert!(
        mount.status.success(),
        "mount {}: {}",
        card.dev,
        String::from_utf8_lossy(&mount.stderr)
    );
    let mounted = Mounted(point.clone());

    let listed = rockusb(root, &["--json", "disks"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let disks = json_result(&listed);
    let entry = disks
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == card.dev.as_str())
        .unwrap_or_else(|| panic!("{} not listed: {disks}", card.dev))
        .clone();
    assert_eq!(entry["candidate"], false, "{entry}");
    let shown = entry["mounted"][0].as_str().unwrap();
    assert!(shown.contains(point.to_str().unwrap()), "{entry}");

    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["flash", image.to_str().unwrap(), "--to", &card.dev];
        args.extend_from_slice(extra);
        let out = rockusb(root, &args);
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is in use")
                && err.contains(point.to_str().unwrap())
                && err.contains("Unmount"),
            "{err}"
        );
    }
    drop(mounted);
    drop(card);
    assert!(
        std::fs::read(&card_file).unwrap() == before,
        "the refused device was changed"
    );
}

#[test]
fn read_back_comes_from_the_medium_not_the_page_cache() {
    let test = "flash_to_page_cache";
    let root = tempfile::tempdir().unwrap();
    let medium = root.path().join("medium.img");
    rockusb_testkit::fs::sized_file(&medium, 8 * MIB);
    let Some(card) = Loop::attach(test, &medium) else {
        return;
    };
    let mut disk = LocalDisk::open(Path::new(&card.dev), false, None, &Host::system()).unwrap();
    assert!(disk.is_direct());
    let len = MIB as usize;
    let written = pseudo_random(len, 1);
    disk.write(0, &written).unwrap();

    // An ordinary (buffered) reader of the device fills the page cache with what was written.
    let cached_reader = std::fs::File::open(&card.dev).unwrap();
    let mut seen = vec![0u8; len];
    std::os::unix::fs::FileExt::read_exact_at(&cached_reader, &mut seen, 0).unwrap();
    assert!(seen == written);

    // The medium changes underneath (the loop device's file: a card that lost the write).
    let changed = pseudo_random(len, 2);
    write_at(&medium, 0, &changed);
    std::fs::File::open(&medium).unwrap().sync_all().unwrap();

    // A buffered read-back would still see the written bytes in the page cache ...
    std::os::unix::fs::FileExt::read_exact_at(&cached_reader, &mut seen, 0).unwrap();
    assert!(
        seen == written,
        "the page cache was dropped on its own, so this test shows nothing"
    );
    // ... the flash's read-back sees the medium,
    let mut read = vec![0u8; len];
    disk.read(0, &mut read).unwrap();
    assert!(read == changed, "the read-back came from the page cache");
    // and the verifier reports the mismatch.
    let records = [Written {
        range: ByteRange::new(0, len as u64),
        hash: xxhash_rust::xxh3::xxh3_128(&written),
        verified: false,
    }];
    let mut verifier = Verifier::new();
    let result = verifier.step(&mut disk, &records);
    assert!(
        matches!(result, Err(VerifyError::Mismatch { .. })),
        "{result:?}"
    );
}
