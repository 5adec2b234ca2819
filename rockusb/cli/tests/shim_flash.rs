//! The main job on the real USB path: `rockusb flash` of a Talos-shaped `.raw.xz` through
//! rusb → libusb → the shim into a virtual board, with MiB-sized bulk transfers and
//! read-back verification, must leave the same eMMC as the in-process path.

mod flash_support;
mod shim_support;

use rockusb::protocol::StorageKind;
use shim_support::*;

#[test]
fn flash_through_libusb_writes_and_verifies_a_talos_image() {
    let test = "flash_through_libusb_writes_and_verifies_a_talos_image";
    if !flash_support::tools(test) {
        return;
    }
    let Some(loader) = testdata_file(test, RK3588_LOADER) else {
        return;
    };
    let boards = Boards::new(&["m6"], 64);
    let raw = flash_support::talos_image(boards.root());
    let image = std::fs::read(&raw).unwrap();
    let xz = flash_support::xz(&raw);

    ok(
        &mut boards.rockusb(&["boot", loader.to_str().unwrap()]),
        &boards,
    );
    let stdout = ok(
        &mut boards.rockusb(&["--json", "flash", xz.to_str().unwrap()]),
        &boards,
    );
    assert_served_by_shim(&boards, "rockusb flash");
    let result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert!(
        result["event"] == "result",
        "the last line is not the result: {stdout}"
    );

    let mut board = boards.board("m6");
    let emmc = board
        .read_storage(StorageKind::Emmc, 0, image.len())
        .unwrap();
    flash_support::assert_flashed(&emmc, &image);
}

/// On the libusb path a board that re-enumerates is a dead handle: `rockusb` finds it again
/// on its port and carries on; one that comes back in MaskROM stops the flash, and
/// `--resume` with the loader finishes it.
#[test]
fn through_libusb_a_reenumerated_board_is_found_again_and_a_reset_one_resumed() {
    let test = "through_libusb_a_reenumerated_board_is_found_again_and_a_reset_one_resumed";
    if !flash_support::tools(test) {
        return;
    }
    let Some(loader) = testdata_file(test, RK3588_LOADER) else {
        return;
    };
    let boards = Boards::new(&["m6"], 64);
    let raw = flash_support::talos_image(boards.root());
    let image = std::fs::read(&raw).unwrap();
    let xz = flash_support::xz(&raw);
    let loader = loader.to_str().unwrap();
    ok(&mut boards.rockusb(&["boot", loader]), &boards);

    let flash = |faults: &str, extra: &[&str]| {
        let mut cmd = boards.rockusb(&["--json", "flash", "--command-sectors", "256"]);
        cmd.arg(&xz)
            .args(extra)
            .env("ROCKUSB_VIRTUAL_FAULTS", faults);
        cmd
    };
    let out = run(&mut flash("disconnect@20,maskrom@70", &[]), false, &boards);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("came back in MaskROM"), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(!events.contains("\"event\":\"result\""), "{events}");

    let stdout = ok(&mut flash("", &["--resume", "--loader", loader]), &boards);
    assert_served_by_shim(&boards, "rockusb flash --resume");
    let last: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    let result = &last["result"];
    assert!(
        result["resumed_from"].as_u64().is_some_and(|at| at > 0),
        "{stdout}"
    );
    assert_eq!(result["verify"]["verify"], "verified", "{result}");
    let log = std::fs::read_to_string(boards.root().join("m6").join("faults.log")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");

    let emmc = boards
        .board("m6")
        .read_storage(StorageKind::Emmc, 0, image.len())
        .unwrap();
    flash_support::assert_flashed(&emmc, &image);
}
