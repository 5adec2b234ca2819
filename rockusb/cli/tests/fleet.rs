//! `rockusb fleet`: several boards in MaskROM are booted, flashed and verified in
//! parallel, then reset so they boot from eMMC and leave the bus.

mod flash_support;

use rockusb::protocol::StorageKind;
use rockusb_virtual::{BoardConfig, Mode, VirtualBoard};
use std::path::Path;
use std::process::{Command, Output};

/// Runs the `rockusb` binary against the virtual boards `names` (comma-separated) in
/// `dir`.
fn rockusb_on(names: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rockusb"))
        .args(args)
        .env("ROCKUSB_VIRTUAL", names)
        .env("ROCKUSB_VIRTUAL_DIR", dir)
        .output()
        .unwrap()
}

/// `rockusb [GLOBAL] fleet --loader LOADER --count COUNT IMAGE` on the boards `names` in
/// `dir`.
fn fleet(
    names: &str,
    dir: &Path,
    global: &[&str],
    loader: &Path,
    count: &str,
    image: &Path,
) -> Output {
    let mut args = global.to_vec();
    args.extend([
        "fleet",
        "--loader",
        loader.to_str().unwrap(),
        "--count",
        count,
        image.to_str().unwrap(),
    ]);
    rockusb_on(names, dir, &args)
}

#[test]
fn fleet_flashes_every_board_that_shows_up_and_reports_each() {
    if !flash_support::tools("fleet_flashes_every_board") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let boards = dir.path().join("boards");
    let names = ["a", "b", "c"];
    for (i, name) in names.iter().enumerate() {
        VirtualBoard::open_or_create(&boards.join(name), || BoardConfig {
            emmc_bytes: flash_support::EMMC_LEN,
            ..BoardConfig::nanopi_m6(i as u8 + 1)
        })
        .unwrap();
    }
    let raw = flash_support::talos_image(dir.path());
    let image = std::fs::read(&raw).unwrap();
    let xz = flash_support::xz(&raw);
    let standin = flash_support::standin(dir.path());

    let out = fleet(&names.join(","), &boards, &["--json"], &standin, "3", &xz);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines.last().unwrap();
    assert_eq!(summary["result"]["flashed"], 3, "{summary}");
    // Every board's own result line is tagged with its port.
    for port in ["1-1", "1-2", "1-3"] {
        assert!(
            lines
                .iter()
                .any(|l| l["event"] == "result" && l["board"] == port),
            "no result for {port}"
        );
    }
    for name in names {
        let mut board = VirtualBoard::open(&boards.join(name)).unwrap();
        assert_eq!(board.state().mode, Mode::Off, "{name} booted from its eMMC");
        let emmc = board
            .read_storage(StorageKind::Emmc, 0, image.len())
            .unwrap();
        flash_support::assert_flashed(&emmc, &image);
    }
}

#[test]
fn fleet_refuses_stdin_and_reports_a_failed_board() {
    let dir = tempfile::tempdir().unwrap();
    let out = rockusb_on("a", dir.path(), &["fleet", "-"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard input"));

    // A board whose eMMC is too small for the image fails; the run says which.
    if !flash_support::tools("fleet_reports_a_failed_board") {
        return;
    }
    VirtualBoard::open_or_create(&dir.path().join("small"), || BoardConfig {
        emmc_bytes: 16 << 20,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
    let raw = flash_support::talos_image(dir.path());
    let xz = flash_support::xz(&raw);
    let standin = flash_support::standin(dir.path());
    let out = fleet("small", dir.path(), &[], &standin, "1", &xz);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 board(s) flashed, 1 failed"), "{stdout}");
    assert!(stdout.contains("1-1"), "{stdout}");
}
