//! Debian's `rkdeveloptool` (1.32) against a virtual board through the libusb shim: an
//! independent client checking the board behaves like a real one. Each command is its own
//! process, so the board's state (MaskROM or loader, storage) carries over through its
//! files, as a real board's does between runs.

mod shim_support;

use rockusb::protocol::StorageKind;
use rockusb_virtual::{Mode, Personality};
use shim_support::*;
use std::path::PathBuf;

/// rkdeveloptool and the RK3588 loader, or `None` (the test is skipped; a failure under
/// CI).
fn rkdeveloptool_and_loader(test: &str) -> Option<PathBuf> {
    if !have_rkdeveloptool(test) {
        return None;
    }
    testdata_file(test, RK3588_LOADER)
}

/// [`rkdeveloptool_and_loader`], and a board in MaskROM with a 64 MiB eMMC.
fn board_and_loader(test: &str) -> Option<(Boards, PathBuf)> {
    let loader = rkdeveloptool_and_loader(test)?;
    Some((Boards::new(&["m6"], 64), loader))
}

#[test]
fn rkdeveloptool_runs_its_command_set_and_agrees_with_rockusb() {
    let test = "rkdeveloptool_runs_its_command_set_and_agrees_with_rockusb";
    let Some((boards, loader)) = board_and_loader(test) else {
        return;
    };

    // ld: location = bus << 8 | port; bcdUSB 0x0200 reads as "Maskrom"
    // (docs/protocol.md §1.4).
    let out = boards.rkdeveloptool_ok(&["ld"]);
    assert_served_by_shim(&boards, "rkdeveloptool");
    assert!(
        out.contains("DevNo=1\tVid=0x2207,Pid=0x350b,LocationID=101\tMaskrom"),
        "{out}"
    );

    // db: every 471 and 472 entry arrives intact; the usbplug runs.
    let out = boards.rkdeveloptool_ok(&["db", loader.to_str().unwrap()]);
    assert!(out.contains("Downloading bootloader succeeded."), "{out}");
    let board = boards.board("m6");
    assert_eq!(board.state().mode, Mode::Loader, "{:?}", board.state());
    let (areas_471, areas_472) = loader_areas(&loader);
    assert_eq!(board.received(0x471).unwrap(), areas_471);
    assert_eq!(board.received(0x472).unwrap(), areas_472);

    // The loader's replies, as rkdeveloptool prints them.
    let out = boards.rkdeveloptool_ok(&["rid"]);
    assert!(out.contains("Flash ID: 45 4D 4D 43 20"), "{out}"); // "EMMC "
    let out = boards.rkdeveloptool_ok(&["rfi"]);
    assert!(out.contains("Flash Size: 64 MB"), "{out}");
    assert!(out.contains("Flash CS: Flash<0>"), "{out}");
    let out = boards.rkdeveloptool_ok(&["rci"]);
    assert!(out.contains("38 38 35 33"), "{out}"); // "8853": RK3588
    let out = boards.rkdeveloptool_ok(&["rcb"]);
    assert!(out.contains("Capability:3F 07 00 00 00 00 00 00"), "{out}");

    // wl, then rockusb reads it back: 3000 sectors, several of rkdeveloptool's
    // 128-sector commands and a short last one.
    let written = pattern(3000 * SECTOR, 7);
    let input = boards.file("rkdt-in.bin");
    std::fs::write(&input, &written).unwrap();
    let out = boards.rkdeveloptool_ok(&["wl", "0", input.to_str().unwrap()]);
    assert!(out.contains("Write LBA from file (100%)"), "{out}");
    let via_rkdt = boards.file("rkdt-out-0.bin");
    boards.rkdeveloptool_ok(&["rl", "0", "3000", via_rkdt.to_str().unwrap()]);
    assert!(
        std::fs::read(&via_rkdt).unwrap() == written,
        "rkdeveloptool's rl differs from its wl"
    );
    let via_rockusb = boards.file("rockusb-out.bin");
    ok(
        &mut boards.rockusb(&["read", "0", "3000", "-o", via_rockusb.to_str().unwrap()]),
        &boards,
    );
    assert!(
        std::fs::read(&via_rockusb).unwrap() == written,
        "rockusb does not read back what rkdeveloptool wrote"
    );

    // And the other way round: rockusb writes, rkdeveloptool's rl reads.
    let other = pattern(2500 * SECTOR, 8);
    let input = boards.file("rockusb-in.bin");
    std::fs::write(&input, &other).unwrap();
    ok(
        &mut boards.rockusb(&["write", "8192", input.to_str().unwrap()]),
        &boards,
    );
    let via_rkdt = boards.file("rkdt-out.bin");
    boards.rkdeveloptool_ok(&["rl", "8192", "2500", via_rkdt.to_str().unwrap()]);
    assert!(
        std::fs::read(&via_rkdt).unwrap() == other,
        "rkdeveloptool does not read back what rockusb wrote"
    );

    // ef: rkdeveloptool sees "EMMC" and erases the whole 64 MiB with ERASE_LBA.
    let out = boards.rkdeveloptool_ok(&["ef"]);
    assert!(out.contains("Erasing flash complete."), "{out}");
    let mut board = boards.board("m6");
    for (lba, len) in [(0, written.len()), (8192, other.len())] {
        let bytes = board
            .read_storage(StorageKind::Emmc, lba * SECTOR as u64, len)
            .unwrap();
        assert!(bytes.iter().all(|&b| b == 0), "sector {lba}.. not erased");
    }

    // rd: the reset happens after the status block; with no ID block on the eMMC the
    // BootROM takes over again (docs/protocol.md §4.6).
    let out = boards.rkdeveloptool_ok(&["rd"]);
    assert!(out.contains("Reset Device OK."), "{out}");
    assert_eq!(boards.board("m6").state().mode, Mode::Maskrom);
    let out = boards.rkdeveloptool_ok(&["ld"]);
    assert!(out.contains("LocationID=101\tMaskrom"), "{out}");
}

#[test]
fn rkdeveloptool_commands_fail_before_db_as_on_a_real_board() {
    // The BootROM answers no bulk command, so `rid` needs `db` first
    // (docs/protocol.md §1.3).
    let test = "rkdeveloptool_commands_fail_before_db_as_on_a_real_board";
    if !have_rkdeveloptool(test) {
        return;
    }
    let boards = Boards::new(&["m6"], 64);
    let out = run(&mut boards.rkdeveloptool(&["rid"]), false, &boards);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Reading flash ID failed!"), "{stdout}");
    assert_served_by_shim(&boards, "rkdeveloptool");
    assert_eq!(boards.board("m6").state().mode, Mode::Maskrom);
}

#[test]
fn rkdeveloptool_meets_mainline_u_boot_rockusb_as_on_real_boards() {
    // docs/protocol.md §5.2: mainline U-Boot's f_rockusb lists READ_FLASH_INFO (0x1A) as
    // unsupported (status 1, no data) and does not know READ_CAPABILITY (0xAA: "FAILunknown
    // command", no status block), so rkdeveloptool's rfi and rcb fail against it
    // (pyrographer: "Rockusb command 1a not support yet"), while rid, rci, wl and rl work.
    let test = "rkdeveloptool_meets_mainline_u_boot_rockusb_as_on_real_boards";
    let Some(loader) = rkdeveloptool_and_loader(test) else {
        return;
    };
    let boards = Boards::unconfigured(&["m6"]);
    let rkdt = |args: &[&str], expect_success: bool| {
        let mut cmd = boards.rkdeveloptool(args);
        cmd.env("ROCKUSB_SHIM_PERSONALITY", "mainline-uboot");
        let out = run(&mut cmd, expect_success, &boards);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let out = rkdt(&["db", loader.to_str().unwrap()], true);
    assert!(out.contains("Downloading bootloader succeeded."), "{out}");
    let board = boards.board("m6");
    assert_eq!(board.config().personality, Personality::MainlineUboot);
    assert_eq!(board.state().mode, Mode::Loader);

    let out = rkdt(&["rid"], true);
    assert!(out.contains("Flash ID: 45 4D 4D 43 20"), "{out}");
    let out = rkdt(&["rci"], true);
    assert!(out.contains("38 38 35 33"), "{out}");
    let out = rkdt(&["rfi"], false);
    assert!(out.contains("Read Flash Info failed!"), "{out}");
    let out = rkdt(&["rcb"], false);
    assert!(out.contains("Read capability Fail!"), "{out}");

    let data = pattern(200 * SECTOR, 3);
    let input = boards.file("in.bin");
    std::fs::write(&input, &data).unwrap();
    rkdt(&["wl", "64", input.to_str().unwrap()], true);
    let output = boards.file("out.bin");
    rkdt(&["rl", "64", "200", output.to_str().unwrap()], true);
    assert!(
        std::fs::read(&output).unwrap() == data,
        "rl differs from wl"
    );
}

#[test]
fn rkdeveloptool_ul_writes_an_id_block_the_board_then_boots_from() {
    // `ul` writes the loader's ID block at sector 64 (an RKNS header for "LDR " loaders);
    // after `rd` the BootROM finds it and boots from the eMMC, leaving the USB bus
    // (docs/protocol.md §4.6, §7).
    let test = "rkdeveloptool_ul_writes_an_id_block_the_board_then_boots_from";
    let Some((boards, loader)) = board_and_loader(test) else {
        return;
    };
    boards.rkdeveloptool_ok(&["db", loader.to_str().unwrap()]);
    let out = boards.rkdeveloptool_ok(&["ul", loader.to_str().unwrap()]);
    assert!(out.contains("Upgrading loader succeeded."), "{out}");
    let header = boards
        .board("m6")
        .read_storage(StorageKind::Emmc, 64 * SECTOR as u64, 4)
        .unwrap();
    assert_eq!(header, b"RKNS");

    let out = boards.rkdeveloptool_ok(&["rd"]);
    assert!(out.contains("Reset Device OK."), "{out}");
    assert_eq!(boards.board("m6").state().mode, Mode::Off);
    // Debian's build exits with status 1 when `ld` finds nothing.
    let out = run(&mut boards.rkdeveloptool(&["ld"]), false, &boards);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("not found any devices!"), "{stdout}");
    assert!(list_boards(&boards).is_empty());
}
