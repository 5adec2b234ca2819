//! Flashing Talos-shaped images onto the virtual NanoPi M6: every input format, sparse
//! and full writing, stale META and backup GPT removal, the read wall, and a stream that
//! turns out corrupt half-way.

mod flash_support;

use flash_support::*;
use rockusb::protocol::StorageKind;
use rockusb_virtual::Mode;
use std::path::{Path, PathBuf};

/// What [`on_stale_board`] gives a test besides its folder.
struct Ready {
    /// The raw Talos image.
    raw: PathBuf,
    /// Its bytes.
    image: Vec<u8>,
    /// The stand-in loader.
    loader: PathBuf,
    /// Where the board holds stale contents.
    stale: StaleRegions,
}

/// Runs `body` with the Talos image and a board (with or without the read wall) holding
/// stale contents; skipped like [`with_talos_image`].
fn on_stale_board(test: &str, read_wall: bool, body: impl FnOnce(&Path, Ready)) {
    with_talos_image(test, |root, raw| {
        let image = std::fs::read(raw).unwrap();
        board(root, read_wall);
        let stale = plant_stale(root);
        let loader = standin(root);
        let raw = raw.to_path_buf();
        body(
            root,
            Ready {
                raw,
                image,
                loader,
                stale,
            },
        )
    })
}

#[test]
fn sparse_xz_flash_writes_every_must_write_region_and_non_zero_block_and_removes_stale_data() {
    on_stale_board("sparse_xz_flash", false, |root, t| {
        let xz = xz(&t.raw);
        let before = emmc(root);
        let out = flash(root, &xz, &t.loader, &["--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let after = emmc(root);
        assert_flashed(&after, &t.image);

        // META holds exactly the image's META: the stale ADV copies are gone.
        assert_ne!(
            range(&before, &t.stale.meta),
            range(&t.image, &t.stale.meta)
        );
        assert_eq!(range(&after, &t.stale.meta), range(&t.image, &t.stale.meta));
        // The old backup GPT at the end of the eMMC is wiped.
        assert!(
            range(&after, &t.stale.old_backup_gpt)
                .iter()
                .all(|&b| b == 0)
        );
        assert!(after[(EMMC_LEN - MIB) as usize..].iter().all(|&b| b == 0));
        // Zero runs in free space were skipped, not written: old data there stays.
        assert_eq!(
            range(&after, &t.stale.free_space),
            range(&before, &t.stale.free_space)
        );

        let result = json_result(&out);
        assert_eq!(result["image_len"], IMAGE_LEN);
        assert_eq!(result["format"], "xz");
        assert_eq!(result["verify"]["verify"], "verified");
        assert_eq!(result["wiped"][0], EMMC_LEN - MIB);
        let written = result["bytes_written"].as_u64().unwrap();
        let skipped = result["bytes_skipped"].as_u64().unwrap();
        assert_eq!(
            written,
            IMAGE_LEN - skipped,
            "every image byte is written or skipped"
        );
        // The 11 MiB prefix, META, BIOS (no file system: in full), the XFS log and every
        // block the file systems use; far less than the image.
        assert!((12 * MIB..24 * MIB).contains(&written), "wrote {written}");
        let parts = result["partitions"].as_array().unwrap();
        let boot = parts.iter().find(|p| p["name"] == "BOOT").unwrap();
        assert_eq!(boot["file_system"], "XFS");
        assert!(boot["bytes_skipped"].as_u64().unwrap() > 8 * MIB, "{boot}");
        let events = json_events(&out);
        assert!(events.iter().any(|e| e["event"] == "write-totals"));
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "phase-done" && e["phase"] == "verify")
        );
    });
}

#[test]
fn full_gz_flash_writes_every_byte_of_the_image() {
    on_stale_board("full_gz_flash", false, |root, t| {
        let gz = compress(&t.raw, "gzip", &["-6"], "gz");
        let out = flash(root, &gz, &t.loader, &["--full"]);
        assert!(out.status.success(), "{}", text(&out));
        let after = emmc(root);
        assert!(
            after[..t.image.len()] == t.image[..],
            "the eMMC differs from the image"
        );
        assert!(range(&after, &t.stale.free_space).iter().all(|&b| b == 0));
        assert!(after[(EMMC_LEN - MIB) as usize..].iter().all(|&b| b == 0));
    });
}

#[test]
fn zstd_from_stdin_flashes_with_the_length_the_gpt_gives() {
    on_stale_board("zstd_from_stdin", false, |root, t| {
        let zst = compress(&t.raw, "zstd", &["-T0", "-q", "-3"], "zst");
        boot_standin(root);
        let out = rockusb_with_stdin(root, &["--json", "flash", "-"], Some(&zst));
        assert!(out.status.success(), "{}", text(&out));
        assert_flashed(&emmc(root), &t.image);
        let result = json_result(&out);
        assert_eq!(result["format"], "zstd");
        assert_eq!(result["image"], "stdin");
        assert_eq!(result["image_len"], IMAGE_LEN);
    });
}

#[test]
fn raw_image_with_small_commands_is_verified() {
    on_stale_board("raw_small_commands", false, |root, t| {
        let out = flash(
            root,
            &t.raw,
            &t.loader,
            &["--json", "--command-sectors", "128"],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert_flashed(&emmc(root), &t.image);
        let result = json_result(&out);
        assert_eq!(result["command_sectors"], 128);
        assert_eq!(result["verify"]["verify"], "verified");
        // 64 KiB commands: at least one per 64 KiB written.
        let written = result["bytes_written"].as_u64().unwrap();
        assert!(result["commands"].as_u64().unwrap() >= written / (64 * 1024));
    });
}

#[test]
fn a_loader_with_the_32_mib_read_wall_is_reported_not_taken_for_a_bad_write() {
    on_stale_board("read_wall", true, |root, t| {
        let xz = xz(&t.raw);
        let out = flash(root, &xz, &t.loader, &["--json"]);
        assert!(out.status.success(), "{}", text(&out));
        assert_flashed(&emmc(root), &t.image);
        let result = json_result(&out);
        assert_eq!(result["verify"]["verify"], "read-wall");
        let verified = result["verify"]["verified_bytes"].as_u64().unwrap();
        assert!(
            verified >= 11 * MIB,
            "the bootloader and GPT lie below the wall: {verified}"
        );
        assert!(result["verify"]["unverified_bytes"].as_u64().unwrap() > 0);
        let warning = json_events(&out)
            .into_iter()
            .find(|e| e["event"] == "warning" && e["message"].as_str().unwrap().contains("0xCC"))
            .expect("a warning about the read wall");
        assert!(
            warning["message"]
                .as_str()
                .unwrap()
                .contains("FriendlyELEC")
        );
    });
}

#[test]
fn a_stream_corrupt_half_way_says_what_was_written_and_a_rerun_repairs_it() {
    on_stale_board("corrupt_half_way", false, |root, t| {
        // One xz block per MiB: damage a byte of the block holding BOOT's data (image byte
        // ~23 MiB), far past the 11 MiB checked before the first write.
        let xz_path = xz(&t.raw);
        let mut xz_bytes = std::fs::read(&xz_path).unwrap();
        let good = xz_bytes.clone();
        let at = block_start(&good, (BOOT_LBA * 512 + 3 * MIB + 4096) / MIB) + 200;
        xz_bytes[at] ^= 0x55;
        let bad = root.join("bad.raw.xz");
        std::fs::write(&bad, &xz_bytes).unwrap();

        // --no-check: the damage is met mid-stream, as with standard input (a file is
        // otherwise refused before the first write; see flash_damaged_image.rs).
        let out = flash(root, &bad, &t.loader, &["--no-check"]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("corrupt"), "{stderr}");
        assert!(
            stderr.contains("The flash stopped after writing"),
            "{stderr}"
        );
        assert!(stderr.contains("not bootable"), "{stderr}");
        assert!(stderr.contains("MaskROM"), "{stderr}");
        // The bootloader was cleared first: a reset brings the board up in MaskROM.
        let mut board = open_board(root);
        assert_eq!(
            board.read_storage(StorageKind::Emmc, 32768, 4).unwrap(),
            vec![0u8; 4]
        );
        drop(board);
        let reset = rockusb(root, &["reset"]);
        assert!(reset.status.success(), "{}", text(&reset));
        let mut board = open_board(root);
        board.reload().unwrap();
        assert_eq!(board.state().mode, Mode::Maskrom);
        drop(board);

        let again = flash(root, &xz_path, &t.loader, &[]);
        assert!(again.status.success(), "{}", text(&again));
        assert_flashed(&emmc(root), &t.image);
    });
}

/// Byte offset in the .xz file of block `n`'s data (via `xz --list --robot`).
fn block_start(xz_file: &[u8], n: u64) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.xz");
    std::fs::write(&path, xz_file).unwrap();
    let out = rockusb_testkit::run(
        std::process::Command::new("xz")
            .args(["--list", "--robot", "--verbose"])
            .arg(&path),
    );
    let text = String::from_utf8(out).unwrap();
    // "block  stream  block-in-stream  block  compressed_offset  uncompressed_offset  ..."
    let line = text
        .lines()
        .filter(|l| l.starts_with("block\t"))
        .nth(n as usize)
        .unwrap_or_else(|| panic!("no block {n} in:\n{text}"));
    line.split('\t').nth(4).unwrap().parse().unwrap()
}
