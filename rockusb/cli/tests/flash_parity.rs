//! `rockusb flash --verify device` and the USB 3 switch on the virtual board
//! (docs/protocol.md §9): the loader checks every write against its parity, a write
//! damaged on its way to the eMMC is caught and named by its sector, a loader without
//! parity falls back to reading back, and a loader with the USB 3 switch is flashed at
//! SuperSpeed on the same port path.

mod flash_support;

use flash_support::*;
use rockusb_virtual::{BoardConfig, Personality, VirtualBoard};
use std::path::Path;
use std::process::{Command, Output};

fn make_board(root: &Path, personality: Personality, port_superspeed: bool) -> std::path::PathBuf {
    VirtualBoard::open_or_create(&root.join(BOARD), || BoardConfig {
        emmc_bytes: EMMC_LEN,
        personality,
        port_superspeed,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
    standin(root)
}

fn flash_with(root: &Path, image: &Path, loader: &Path, faults: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rockusb"))
        .env("ROCKUSB_VIRTUAL_DIR", root)
        .env("ROCKUSB_VIRTUAL", BOARD)
        .env("ROCKUSB_VIRTUAL_FAULTS", faults)
        .env_remove("ROCKUSB_LOADER_PATH")
        .args(["--json", "flash", "--loader"])
        .arg(loader)
        .arg(image)
        .args(extra)
        .output()
        .unwrap()
}

fn warnings(result: &serde_json::Value) -> String {
    result["warnings"].to_string()
}

#[test]
fn device_verified_flash_is_checked_by_the_loader_write_by_write() {
    with_talos_image("device_verified", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let loader = make_board(root, Personality::Usbplug, true);
        let out = flash_with(root, &xz(raw), &loader, "", &["--verify", "device"]);
        assert!(out.status.success(), "{}", text(&out));
        let result = json_result(&out);
        assert_eq!(result["verify"]["verify"], "device", "{result}");
        // Every byte written was checked (the bootloader sector cleared first included),
        // nothing was read back, and commands stayed within the loader's re-read buffer.
        let written = result["bytes_written"].as_u64().unwrap();
        let wiped = result["wiped"][1].as_u64().unwrap_or(0);
        assert_eq!(
            result["verify"]["bytes"].as_u64().unwrap(),
            written + 512 + wiped,
            "{result}"
        );
        assert_eq!(result["verified_during_write"], 0);
        assert_eq!(result["command_sectors"], 2048);
        assert!(!warnings(&result).contains("--verify device"), "{result}");
        assert_flashed(&emmc(root), &image);
    });
}

#[test]
fn a_write_damaged_on_the_way_to_the_emmc_is_caught_by_the_loader_with_its_sector() {
    with_talos_image("device_caught", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let xz = xz(raw);
        let loader = make_board(root, Personality::Usbplug, true);

        // Once: sent again, it goes through; the flash ends verified, and says the link
        // (or the storage) needed a second try.
        let out = flash_with(root, &xz, &loader, "medium@6", &["--verify", "device"]);
        assert!(out.status.success(), "{}", text(&out));
        let result = json_result(&out);
        assert_eq!(result["verify"]["verify"], "device", "{result}");
        assert!(
            warnings(&result).contains("1 command(s) failed and went through"),
            "{result}"
        );
        assert_flashed(&emmc(root), &image);

        // Every time that command is sent: the flash fails and names the sector, where the
        // eMMC indeed holds something else than the image.
        let out = flash_with(
            root,
            &xz,
            &loader,
            "medium@6,medium@7,medium@8",
            &["--verify", "device"],
        );
        assert!(!out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("write parity mismatch"), "{stderr}");
        assert!(stderr.contains("stopped after writing"), "{stderr}");
        let lba: u64 = stderr
            .split("at sector ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no sector in: {stderr}"));
        let sectors: usize = stderr
            .split(&format!("at sector {lba} ("))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no sector count in: {stderr}"));
        let range = lba as usize * 512..(lba as usize + sectors) * 512;
        assert!(
            emmc(root)[range.clone()] != image[range.clone()],
            "the eMMC at the reported sector {lba} holds the image"
        );
    });
}

#[test]
fn read_back_finds_the_same_damage_only_after_writing() {
    with_talos_image("readback_caught", |root, raw| {
        let loader = make_board(root, Personality::Usbplug, true);
        let out = flash_with(root, &xz(raw), &loader, "medium@6", &[]);
        assert!(!out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("verification failed"), "{stderr}");
    });
}

#[test]
fn device_verification_falls_back_to_read_back_where_the_loader_lacks_parity() {
    with_talos_image("device_fallback", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let loader = make_board(root, Personality::MainlineUboot, true);
        let out = flash_with(root, &xz(raw), &loader, "", &["--verify", "device"]);
        assert!(out.status.success(), "{}", text(&out));
        let result = json_result(&out);
        assert_eq!(result["verify"]["verify"], "verified", "{result}");
        let events = json_events(&out);
        assert!(
            events.iter().any(|e| e["event"] == "warning"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("--verify device")
                        && m.contains("verifying by reading back instead"))),
            "{}",
            text(&out)
        );
        assert_flashed(&emmc(root), &image);
    });
}

#[test]
fn no_verify_is_verify_none() {
    with_talos_image("verify_none", |root, raw| {
        let loader = make_board(root, Personality::Usbplug, true);
        for args in [&["--no-verify"][..], &["--verify", "none"][..]] {
            let out = flash_with(root, raw, &loader, "", args);
            assert!(out.status.success(), "{}", text(&out));
            assert_eq!(json_result(&out)["verify"]["verify"], "skipped");
        }
        let out = flash_with(
            root,
            raw,
            &loader,
            "",
            &["--no-verify", "--verify", "device"],
        );
        assert!(!out.status.success(), "conflicting options accepted");
    });
}

#[test]
fn a_loader_with_the_usb3_switch_is_flashed_at_superspeed_on_the_same_port_path() {
    with_talos_image("usb3_switch", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let loader = make_board(root, Personality::UbootUsbplug, true);
        let out = flash_with(root, &xz(raw), &loader, "", &["--verify", "device"]);
        assert!(out.status.success(), "{}", text(&out));
        let result = json_result(&out);
        assert_eq!(result["usb_speed"], "super", "{result}");
        assert_eq!(result["usb3_switch"]["outcome"], "switched", "{result}");
        assert_eq!(result["verify"]["verify"], "device", "{result}");
        assert_flashed(&emmc(root), &image);
        let list = rockusb(root, &["list"]);
        let listed = String::from_utf8_lossy(&list.stdout);
        assert!(
            listed.contains("1-1  2207:350b  RK3588  loader  superspeed (virtual m6)"),
            "{listed}"
        );
        let info = rockusb(root, &["--json", "info"]);
        let info = json_result(&info);
        assert_eq!(info["usb_speed"], "super");
        assert_eq!(info["transfer_size"], 4 << 20);
    });
}

#[test]
fn usb2_and_a_high_speed_port_keep_the_board_at_high_speed() {
    with_talos_image("usb3_declined", |root, raw| {
        let loader = make_board(root, Personality::UbootUsbplug, true);
        let out = flash_with(root, raw, &loader, "", &["--usb2", "--verify", "none"]);
        assert!(out.status.success(), "{}", text(&out));
        let result = json_result(&out);
        assert_eq!(result["usb_speed"], "high", "{result}");
        assert_eq!(result["usb3_switch"]["outcome"], "declined", "{result}");
    });
    with_talos_image("usb3_port", |root, raw| {
        let loader = make_board(root, Personality::UbootUsbplug, false);
        let out = flash_with(root, raw, &loader, "", &["--verify", "none"]);
        assert!(out.status.success(), "{}", text(&out));
        let result = json_result(&out);
        assert_eq!(result["usb_speed"], "high", "{result}");
        assert_eq!(result["usb3_switch"]["outcome"], "port-high-speed-only");
        assert!(
            json_events(&out).iter().any(|e| e["event"] == "warning"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("USB 2.0 only"))),
            "{}",
            text(&out)
        );
    });
}
