//! `rockusb gpt` (of an image and of a board's storage) and `rockusb backup`.

mod flash_support;

use flash_support::*;
use std::process::Command;

#[test]
fn gpt_prints_the_table_of_an_image_and_of_the_flashed_storage() {
    with_talos_image("gpt_command", |root, raw| {
        let xz = xz(raw);
        for image in [raw, &xz] {
            let out = rockusb(root, &["gpt", image.to_str().unwrap()]);
            assert!(out.status.success(), "{}", text(&out));
            let stdout = String::from_utf8_lossy(&out.stdout);
            for name in ["EFI", "BIOS", "BOOT", "META"] {
                assert!(stdout.contains(name), "{name} missing:\n{stdout}");
            }
            assert!(stdout.contains("entries at LBA 20482"), "{stdout}");
            assert!(stdout.contains(&format!("{}", META_LBA)), "{stdout}");
            assert!(stdout.contains("No problems found."), "{stdout}");
        }
        let loader = board_with_standin(root);
        let flash = flash(root, &xz, &loader, &[]);
        assert!(flash.status.success(), "{}", text(&flash));
        let out = rockusb(root, &["gpt"]);
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("META"), "{stdout}");
        // The image's backup header sits at its own end, not at the end of the larger eMMC,
        // and the eMMC's old backup was wiped: the reader says exactly that.
        assert!(stdout.contains("backup header"), "{stdout}");
        assert!(
            stdout.contains(&format!(
                "last LBA of the storage is {}",
                EMMC_LEN / 512 - 1
            )),
            "{stdout}"
        );
    });
}

#[test]
fn backup_reads_the_storage_into_an_xz_file_that_decodes_to_it() {
    with_talos_image("backup_command", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let flash = flash(root, raw, &board_with_standin(root), &[]);
        assert!(flash.status.success(), "{}", text(&flash));
        let out_path = root.join("backup.raw.xz");
        let out = rockusb(
            root,
            &["--json", "backup", "-o", out_path.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", text(&out));
        let result = json_result(&out);
        assert_eq!(result["bytes"], EMMC_LEN);
        assert_eq!(result["format"], "xz");
        let decoded = rockusb_testkit::run(Command::new("xz").arg("-dc").arg(&out_path));
        assert!(decoded == emmc(root), "the backup differs from the eMMC");
        assert!(decoded[..image.len()].starts_with(&image[..11 * MIB as usize]));
        assert!(
            json_events(&out)
                .iter()
                .any(|e| e["event"] == "progress" && e["phase"] == "backup")
        );

        // Raw output, part of the storage.
        let part = root.join("part.raw");
        let out = rockusb(
            root,
            &["backup", "-o", part.to_str().unwrap(), "--sectors", "4096"],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(std::fs::read(&part).unwrap() == image[..2 * MIB as usize]);
    });
}

#[test]
fn backup_refuses_a_loader_with_the_read_wall_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    board(root, true);
    boot_standin(root);
    let out_path = root.join("backup.raw.xz");
    let out = rockusb(root, &["backup", "-o", out_path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0xCC"), "{stderr}");
    assert!(stderr.contains("--sectors 65536"), "{stderr}");
    assert!(!out_path.exists(), "a partial backup was left behind");
}
