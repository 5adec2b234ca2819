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
