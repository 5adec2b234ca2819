//! Write parity and the USB 3 switch on the real USB path: `rockusb flash --verify device`
//! through rusb → libusb → the shim into a U-Boot-built usbplug. libusb cannot tell
//! whether a high-speed port has a SuperSpeed twin, so the switch is tried; the board comes
//! back on the same port path, at SuperSpeed where its port allows it and at high speed,
//! with a warning, where it does not.

mod flash_support;
mod shim_support;

use rockusb::protocol::StorageKind;
use rockusb_virtual::{BoardConfig, Personality, VirtualBoard};
use shim_support::*;

fn uboot_usbplug_board(port_superspeed: bool) -> Boards {
    let boards = Boards::unconfigured(&["m6"]);
    VirtualBoard::open_or_create(&boards.root().join("m6"), || BoardConfig {
        emmc_bytes: 64 << 20,
        personality: Personality::UbootUsbplug,
        port_superspeed,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
    boards
}

fn result_of(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .find(|l| l.contains("\"event\":\"result\""))
        .unwrap_or_else(|| panic!("no result line:\n{stdout}"));
    serde_json::from_str::<serde_json::Value>(line).unwrap()["result"].clone()
}

#[test]
fn device_verified_flash_at_superspeed_through_libusb() {
    let test = "device_verified_flash_at_superspeed_through_libusb";
    if !flash_support::tools(test) {
        return;
    }
    let Some(loader) = testdata_file(test, RK3588_LOADER) else {
        return;
    };
    let boards = uboot_usbplug_board(true);
    let raw = flash_support::talos_image(boards.root());
    let image = std::fs::read(&raw).unwrap();
    ok(
        &mut boards.rockusb(&["boot", loader.to_str().unwrap()]),
        &boards,
    );
    let before = list_boards(&boards);
    let stdout = ok(
        &mut boards.rockusb(&[
            "--json",
            "flash",
            raw.to_str().unwrap(),
            "--verify",
            "device",
        ]),
        &boards,
    );
    assert_served_by_shim(&boards, "rockusb flash");
    let result = result_of(&stdout);
    assert_eq!(result["usb3_switch"]["outcome"], "switched", "{result}");
    assert_eq!(result["usb_speed"], "super", "{result}");
    assert_eq!(result["verify"]["verify"], "device", "{result}");
    // The same port path, a new address, SuperSpeed as libusb reports it.
    let after = list_boards(&boards);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, before[0].0);
    assert_ne!(after[0].2, before[0].2);
    let listed = ok(&mut boards.rockusb(&["list"]), &boards);
    assert!(
        listed.contains("1-1  2207:350b  RK3588  loader  superspeed"),
        "{listed}"
    );
    let emmc = boards
        .board("m6")
        .read_storage(StorageKind::Emmc, 0, image.len())
        .unwrap();
    flash_support::assert_flashed(&emmc, &image);
}

#[test]
fn the_switch_falls_back_to_high_speed_through_libusb_where_the_port_cannot() {
    let test = "the_switch_falls_back_to_high_speed_through_libusb_where_the_port_cannot";
    if !flash_support::tools(test) {
        return;
    }
    let Some(loader) = testdata_file(test, RK3588_LOADER) else {
        return;
    };
    let boards = uboot_usbplug_board(false);
    let raw = flash_support::talos_image(boards.root());
    ok(
        &mut boards.rockusb(&["boot", loader.to_str().unwrap()]),
        &boards,
    );
    let before = list_boards(&boards);
    let stdout = ok(
        &mut boards.rockusb(&["--json", "flash", raw.to_str().unwrap(), "--verify", "none"]),
        &boards,
    );
    let result = result_of(&stdout);
    assert_eq!(result["usb3_switch"]["outcome"], "fell-back", "{result}");
    assert_eq!(result["usb_speed"], "high", "{result}");
    assert!(
        stdout.contains("came back at high speed (USB 2.0)"),
        "no warning about the fallback:\n{stdout}"
    );
    let after = list_boards(&boards);
    assert_eq!(after[0].0, before[0].0, "same port path");
    assert_ne!(after[0].2, before[0].2, "re-enumerated");
}
