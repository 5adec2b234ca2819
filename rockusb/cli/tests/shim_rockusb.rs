//! The real `rockusb` binary on its libusb path (rusb → libusb-1.0.so.0 → the shim) into a
//! virtual board: list, boot with a real RK3588 loader, write, read back, erase, reset.

mod shim_support;

use rockusb::protocol::StorageKind;
use rockusb_virtual::Mode;
use shim_support::*;

#[test]
fn rockusb_through_libusb_lists_boots_writes_reads_erases_and_resets() {
    let test = "rockusb_through_libusb_lists_boots_writes_reads_erases_and_resets";
    let Some(loader) = testdata_file(test, RK3588_LOADER) else {
        return;
    };
    let boards = Boards::new(&["m6"], 64);

    // list: one board in MaskROM, found by rusb's enumeration and probe.
    let listed = list_boards(&boards);
    assert_served_by_shim(&boards, "the rockusb binary");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (port, mode, maskrom_address) = listed[0].clone();
    assert_eq!((port.as_str(), mode.as_str()), ("1-1", "maskrom"));

    // boot: the loader's areas reach the BootROM intact and the usbplug comes up at a new
    // address on the same port.
    ok(
        boards
            .rockusb(&["boot", loader.to_str().unwrap()])
            .arg("--json"),
        &boards,
    );
    let board = boards.board("m6");
    assert_eq!(board.state().mode, Mode::Loader, "{:?}", board.state());
    let (areas_471, areas_472) = loader_areas(&loader);
    assert_eq!(board.received(0x471).unwrap(), areas_471);
    assert_eq!(board.received(0x472).unwrap(), areas_472);
    let listed = list_boards(&boards);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].0.as_str(), listed[0].1.as_str()),
        ("1-1", "loader")
    );
    assert_ne!(
        listed[0].2, maskrom_address,
        "the loader re-enumerates at a new address"
    );

    // write: 4099 sectors (more than one command's worth, not a whole number of them).
    let first = 4096u64;
    let data = pattern(4099 * SECTOR, 1);
    let input = boards.file("input.bin");
    std::fs::write(&input, &data).unwrap();
    ok(
        &mut boards.rockusb(&["write", &first.to_string(), input.to_str().unwrap()]),
        &boards,
    );
    let mut board = boards.board("m6");
    let stored = board
        .read_storage(StorageKind::Emmc, first * SECTOR as u64, data.len())
        .unwrap();
    assert!(stored == data, "the eMMC does not hold what was written");

    // read back through the same path.
    let output = boards.file("output.bin");
    let count = (data.len() / SECTOR).to_string();
    let read_back = || {
        ok(
            &mut boards.rockusb(&[
                "read",
                &first.to_string(),
                &count,
                "-o",
                output.to_str().unwrap(),
            ]),
            &boards,
        );
        std::fs::read(&output).unwrap()
    };
    assert!(read_back() == data, "read back differs");

    // erase the first 2048 sectors of it: those read back as zeros, the rest is intact.
    ok(
        &mut boards.rockusb(&["erase", &first.to_string(), "2048"]),
        &boards,
    );
    let after = read_back();
    let erased = 2048 * SECTOR;
    assert!(
        after[..erased].iter().all(|&b| b == 0),
        "erased range is not zero"
    );
    assert!(
        after[erased..] == data[erased..],
        "erase went past its range"
    );

    // reset: no ID block on the eMMC, so the BootROM comes back in MaskROM.
    ok(&mut boards.rockusb(&["reset"]), &boards);
    assert_eq!(boards.board("m6").state().mode, Mode::Maskrom);
    let listed = list_boards(&boards);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].0.as_str(), listed[0].1.as_str()),
        ("1-1", "maskrom")
    );
}

#[test]
fn rockusb_through_libusb_refuses_storage_commands_in_maskrom() {
    let boards = Boards::new(&["m6"], 64);
    let out = run(
        &mut boards.rockusb(&["read", "0", "1", "-o", "x.bin"]),
        false,
        &boards,
    );
    assert_served_by_shim(&boards, "the rockusb binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MaskROM"), "{stderr}");
    assert_eq!(boards.board("m6").state().mode, Mode::Maskrom);
}
