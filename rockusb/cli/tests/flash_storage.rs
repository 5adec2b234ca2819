//! Choosing the storage (`--storage`), and a loader that cannot tell its size (mainline
//! U-Boot's rockusb).

mod flash_support;

use flash_support::*;
use rockusb::protocol::StorageKind;
use rockusb_virtual::{BoardConfig, Personality, VirtualBoard};

#[test]
fn storage_sd_writes_the_sd_card_and_leaves_the_emmc_alone() {
    with_talos_image("storage_sd", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let xz = xz(raw);
        let loader = board_with_standin(root);
        let emmc_before = emmc(root);
        let out = flash(root, &xz, &loader, &["--json", "--storage", "sd"]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(json_result(&out)["storage"], "sd");
        let sd = open_board(root)
            .read_storage(StorageKind::Sd, 0, image.len())
            .unwrap();
        assert_flashed(&sd, &image);
        assert!(emmc(root) == emmc_before, "the eMMC changed");

        // The 16 MiB SPI NOR cannot hold the 40 MiB image: refused before writing.
        let out = rockusb(
            root,
            &["flash", xz.to_str().unwrap(), "--storage", "spinor"],
        );
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("holds only 16.0 MiB"), "{stderr}");
    });
}

#[test]
fn mainline_uboot_loader_flashes_without_knowing_the_storage_size() {
    with_talos_image("mainline_uboot", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        VirtualBoard::open_or_create(&root.join(BOARD), || BoardConfig {
            emmc_bytes: EMMC_LEN,
            personality: Personality::MainlineUboot,
            ..BoardConfig::nanopi_m6(1)
        })
        .unwrap();
        let loader = standin(root);
        let out = flash(root, raw, &loader, &["--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let result = json_result(&out);
        assert_eq!(result["capacity"], serde_json::Value::Null);
        assert_eq!(result["wiped"], serde_json::Value::Null);
        assert_eq!(result["command_sectors"], 2048);
        assert_eq!(result["verify"]["verify"], "verified");
        assert!(
            result["warnings"].as_array().unwrap().iter().any(|w| w
                .as_str()
                .unwrap()
                .contains("does not report the storage size")),
            "{result}"
        );
        assert_flashed(&emmc(root), &image);

        // Mainline U-Boot is bound to one device: asking for the SD card is refused.
        let out = rockusb(root, &["flash", raw.to_str().unwrap(), "--storage", "sd"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot switch to sd"));
    });
}
