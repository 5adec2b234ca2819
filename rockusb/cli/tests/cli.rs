//! The `rockusb` binary against virtual boards: the newcomer's flow and every bad input
//! the core must refuse with a clear message, leaving the board untouched.

use rockusb::protocol::StorageKind;
use rockusb_virtual::{BoardConfig, Mode, VirtualBoard};
use std::path::PathBuf;
use std::process::{Command, Output};

const MIB: u64 = 1 << 20;

struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    /// A folder with one or more small virtual NanoPi M6 boards.
    fn new(names: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in names.iter().enumerate() {
            VirtualBoard::open_or_create(&dir.path().join("boards").join(name), || BoardConfig {
                emmc_bytes: 64 * MIB,
                ..BoardConfig::nanopi_m6(i as u8 + 1)
            })
            .unwrap();
        }
        Bench { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, boards: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rockusb"))
            .args(args)
            .env("ROCKUSB_VIRTUAL", boards)
            .env("ROCKUSB_VIRTUAL_DIR", self.dir.path().join("boards"))
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    fn ok(&self, boards: &str, args: &[&str]) -> String {
        let out = self.run(boards, args);
        assert!(
            out.status.success(),
            "rockusb {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, boards: &str, args: &[&str]) -> String {
        let out = self.run(boards, args);
        assert!(!out.status.success(), "rockusb {args:?} should have failed");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{stderr}");
        stderr
    }

    fn board(&self, name: &str) -> VirtualBoard {
        VirtualBoard::open(&self.dir.path().join("boards").join(name)).unwrap()
    }

    fn standin(&self) -> PathBuf {
        let path = self.path("standin.bin");
        if !path.exists() {
            self.ok("m6", &["loader", "standin", "-o", path.to_str().unwrap()]);
        }
        path
    }
}

/// The shared test data's raw SPL that looks like a loader by name.
fn negative_loader(data: &std::path::Path) -> PathBuf {
    rockusb_testkit::files_in(&data.join("loaders/negative")).remove(0)
}

fn assert_untouched(board: &VirtualBoard) {
    assert_eq!(board.state().mode, Mode::Maskrom);
    assert!(board.state().received.is_empty(), "nothing may be sent");
    assert!(!board.state().wedged);
}

#[test]
fn newcomer_flow_boot_info_write_read_erase_reset() {
    let b = Bench::new(&["m6"]);
    let list = b.ok("m6", &["list"]);
    assert!(list.contains("1-1") && list.contains("maskrom"), "{list}");
    let standin = b.standin();
    b.ok("m6", &["boot", standin.to_str().unwrap()]);
    let info = b.ok("m6", &["info"]);
    assert!(info.contains("RK3588") && info.contains("EMMC"), "{info}");

    let data: Vec<u8> = (0..MIB as usize).map(|i| (i % 251) as u8).collect();
    std::fs::write(b.path("data.bin"), &data).unwrap();
    b.ok("m6", &["write", "100", "data.bin"]);
    b.ok("m6", &["read", "100", "2048", "-o", "back.bin"]);
    assert_eq!(std::fs::read(b.path("back.bin")).unwrap(), data);
    assert_eq!(
        b.board("m6")
            .read_storage(StorageKind::Emmc, 100 * 512, data.len())
            .unwrap(),
        data
    );
    b.ok("m6", &["erase", "100", "2048"]);
    assert!(
        b.board("m6")
            .read_storage(StorageKind::Emmc, 100 * 512, data.len())
            .unwrap()
            .iter()
            .all(|&x| x == 0)
    );
    b.ok("m6", &["reset"]);
    // No ID block on the eMMC: the BootROM falls back to MaskROM.
    assert_eq!(b.board("m6").state().mode, Mode::Maskrom);
}

#[test]
fn json_list_and_info_are_machine_readable() {
    let b = Bench::new(&["m6"]);
    let list = b.ok("m6", &["--json", "list"]);
    let v: serde_json::Value = serde_json::from_str(list.lines().last().unwrap()).unwrap();
    assert_eq!(v["result"][0]["port_path"], "1-1");
    assert_eq!(v["result"][0]["mode"], "maskrom");
    assert_eq!(v["result"][0]["soc"], "RK3588");
    b.ok("m6", &["boot", b.standin().to_str().unwrap()]);
    let info = b.ok("m6", &["--json", "info"]);
    let v: serde_json::Value = serde_json::from_str(info.lines().last().unwrap()).unwrap();
    assert_eq!(v["result"]["chip"], "RK3588");
    assert_eq!(v["result"]["capacity_bytes"], 64 * MIB);
}

#[test]
fn missing_loader_file_is_a_clear_error() {
    let b = Bench::new(&["m6"]);
    let err = b.fails("m6", &["boot", "no-such-loader.bin"]);
    assert!(
        err.contains("cannot read the loader no-such-loader.bin"),
        "{err}"
    );
    assert_untouched(&b.board("m6"));
}

#[test]
fn truncated_and_corrupt_loaders_are_refused_before_sending() {
    let b = Bench::new(&["m6"]);
    let good = std::fs::read(b.standin()).unwrap();
    std::fs::write(b.path("short.bin"), &good[..good.len() / 2]).unwrap();
    let err = b.fails("m6", &["boot", "short.bin"]);
    assert!(err.contains("not a usable loader"), "{err}");
    assert!(
        err.to_lowercase().contains("truncated") || err.contains("ends"),
        "{err}"
    );
    assert_untouched(&b.board("m6"));

    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xFF;
    std::fs::write(b.path("badcrc.bin"), &bad).unwrap();
    let err = b.fails("m6", &["boot", "badcrc.bin"]);
    assert!(err.contains("CRC"), "{err}");
    assert_untouched(&b.board("m6"));
}

#[test]
fn a_loader_for_another_chip_is_refused_naming_both() {
    let Some(data) = rockusb_testkit::testdata("a_loader_for_another_chip_is_refused") else {
        return;
    };
    let b = Bench::new(&["m6"]);
    let rk3399 = data.join("loaders/armbian-rkbin__rk3399_loader_v1.30.130.bin");
    let err = b.fails("m6", &["boot", rk3399.to_str().unwrap()]);
    assert!(err.contains("RK3399") && err.contains("RK3588"), "{err}");
    assert_untouched(&b.board("m6"));
}

#[test]
fn a_raw_spl_is_not_taken_for_a_loader() {
    let Some(data) = rockusb_testkit::testdata("a_raw_spl_is_not_taken_for_a_loader") else {
        return;
    };
    let b = Bench::new(&["m6"]);
    let negative = negative_loader(&data);
    let err = b.fails("m6", &["boot", negative.to_str().unwrap()]);
    assert!(
        err.contains("SPL") || err.contains("idblock") || err.contains("ID block"),
        "{err}"
    );
    assert_untouched(&b.board("m6"));
}

#[test]
fn loader_commands_in_maskrom_say_to_boot_first() {
    let b = Bench::new(&["m6"]);
    for args in [
        &["info"][..],
        &["read", "0", "1", "-o", "x.bin"],
        &["erase", "0", "1"],
        &["reset"],
    ] {
        let err = b.fails("m6", args);
        assert!(
            err.contains("MaskROM") && err.contains("rockusb boot"),
            "{err}"
        );
    }
    assert_untouched(&b.board("m6"));
    assert!(!b.path("x.bin").exists());
}

#[test]
fn writing_past_the_end_is_refused_and_nothing_is_written() {
    let b = Bench::new(&["m6"]);
    b.ok("m6", &["boot", b.standin().to_str().unwrap()]);
    std::fs::write(b.path("two.bin"), vec![0xAB; 1024]).unwrap();
    let last = (64 * MIB / 512 - 1).to_string();
    let err = b.fails("m6", &["write", &last, "two.bin"]);
    assert!(err.contains("past the end of the storage"), "{err}");
    assert!(
        b.board("m6")
            .read_storage(StorageKind::Emmc, 64 * MIB - 512, 512)
            .unwrap()
            .iter()
            .all(|&x| x == 0)
    );
    std::fs::write(b.path("odd.bin"), vec![0xAB; 1000]).unwrap();
    let err = b.fails("m6", &["write", "0", "odd.bin"]);
    assert!(err.contains("512"), "{err}");
}

#[test]
fn two_boards_need_device_and_each_is_addressable() {
    let b = Bench::new(&["a", "b"]);
    let list = b.ok("a,b", &["list"]);
    assert!(list.contains("1-1") && list.contains("1-2"), "{list}");
    let err = b.fails("a,b", &["boot", b.standin().to_str().unwrap()]);
    assert!(
        err.contains("--device") && err.contains("1-1") && err.contains("1-2"),
        "{err}"
    );
    b.ok(
        "a,b",
        &["--device", "1-2", "boot", b.standin().to_str().unwrap()],
    );
    assert_eq!(b.board("b").state().mode, Mode::Loader);
    assert_eq!(b.board("a").state().mode, Mode::Maskrom);
    let err = b.fails("a,b", &["--device", "9-9", "info"]);
    assert!(err.contains("no board at 9-9"), "{err}");
}

#[test]
fn udev_rules_cover_the_rockchip_pids_with_uaccess() {
    let b = Bench::new(&[]);
    let rules = b.ok("", &["udev"]);
    for pid in ["350b", "350a", "350d", "350e", "330c"] {
        assert!(
            rules.contains(&format!("ATTR{{idProduct}}==\"{pid}\"")),
            "{pid}"
        );
    }
    assert!(rules.contains("TAG+=\"uaccess\""));
    assert!(rules.contains("power/control"));
}

#[test]
fn boot_without_a_file_chooses_the_newest_loader_and_says_why() {
    let Some(data) = rockusb_testkit::testdata("boot_chooses_the_newest_loader") else {
        return;
    };
    let b = Bench::new(&["m6"]);
    let dir = data.join("loaders");
    let out = b.run("m6", &["boot", "--loader-dir", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("chose ") && stderr.contains("rk3588"),
        "{stderr}"
    );
    // RK3399 and other SoCs' loaders are skipped with a reason.
    assert!(
        stderr.contains("skipped") && stderr.contains("rk3399"),
        "{stderr}"
    );
    let chosen = stderr
        .lines()
        .find(|l| l.starts_with("chose "))
        .unwrap()
        .to_string();
    let board = b.board("m6");
    assert_eq!(board.state().mode, Mode::Loader);
    // The chosen file's 0x472 entry is what the board received.
    let path = chosen
        .trim_start_matches("chose ")
        .split(" (")
        .next()
        .unwrap();
    let container = rockusb_loaders::LoaderContainer::parse(&std::fs::read(path).unwrap()).unwrap();
    let usbplug: Vec<u8> = container
        .entries(rockusb_loaders::EntryKind::Area472)
        .flat_map(|e| e.data.clone())
        .collect();
    assert_eq!(board.received(0x472).unwrap().concat(), usbplug);
}

#[test]
fn boot_with_no_loader_on_the_named_search_path_is_a_clear_error() {
    let b = Bench::new(&["m6"]);
    std::fs::create_dir_all(b.path("empty")).unwrap();
    let err = b.fails("m6", &["boot", "--loader-dir", "empty"]);
    assert!(err.contains("no valid RK3588 loader found"), "{err}");
    assert_untouched(&b.board("m6"));
}

#[test]
fn upgrade_loader_writes_the_id_block_and_the_board_then_boots_from_emmc() {
    let Some(data) = rockusb_testkit::testdata("upgrade_loader_writes_the_id_block") else {
        return;
    };
    let b = Bench::new(&["m6"]);
    let loader = data.join("loaders/armbian-rkbin__rk3588_spl_loader_v1.16.113.bin");
    b.ok("m6", &["boot", loader.to_str().unwrap()]);
    b.ok("m6", &["upgrade-loader", loader.to_str().unwrap()]);
    let container =
        rockusb_loaders::LoaderContainer::parse(&std::fs::read(&loader).unwrap()).unwrap();
    let idb = rockusb_loaders::upgrade::build_id_block(&container).unwrap();
    let on_emmc = b
        .board("m6")
        .read_storage(StorageKind::Emmc, 64 * 512, idb.bytes.len())
        .unwrap();
    assert_eq!(on_emmc, idb.bytes);
    assert_eq!(&on_emmc[..4], b"RKNS");
    b.ok("m6", &["reset"]);
    assert_eq!(b.board("m6").state().mode, Mode::Off, "booted from eMMC");
}

#[test]
fn loader_info_verify_and_extract() {
    let Some(data) = rockusb_testkit::testdata("loader_info_verify_and_extract") else {
        return;
    };
    let b = Bench::new(&[]);
    let loader = data.join("loaders/armbian-rkbin__rk3588_spl_loader_v1.16.113.bin");
    let info = b.ok("", &["--json", "loader", "info", loader.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(info.lines().last().unwrap()).unwrap();
    assert_eq!(v["result"]["soc"], "RK3588");
    assert_eq!(v["result"]["entries"].as_array().unwrap().len(), 6);
    b.ok("", &["loader", "verify", loader.to_str().unwrap()]);
    let negative = negative_loader(&data);
    let out = b.run("", &["loader", "verify", negative.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("raw SPL"));
    b.ok(
        "",
        &["loader", "extract", loader.to_str().unwrap(), "-o", "parts"],
    );
    let usbplug = std::fs::read(b.path("parts/02-472-rk3588_usbplug_v1.bin")).unwrap();
    assert_eq!(usbplug.len(), 92160);
}

#[test]
fn wait_returns_when_enough_boards_are_in_the_mode_and_times_out_otherwise() {
    let b = Bench::new(&["a", "b"]);
    let out = b.ok("a,b", &["--json", "wait", "--count", "2"]);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["result"].as_array().unwrap().len(), 2);
    let err = b.fails("a,b", &["wait", "--mode", "loader", "--timeout", "0"]);
    assert!(err.contains("0 of 1 board(s) in loader mode"), "{err}");
}

#[test]
fn a_raw_ddr_and_usbplug_pair_boots_and_arrives_unscrambled_on_rk3588() {
    let Some(data) = rockusb_testkit::testdata("a_raw_ddr_and_usbplug_pair_boots") else {
        return;
    };
    let b = Bench::new(&["m6"]);
    let components = data.join("rkbin_components");
    let pick = |prefix: &str| -> PathBuf {
        rockusb_testkit::files_in(&components)
            .into_iter()
            .rfind(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}* in {}", components.display()))
    };
    let ddr = pick("rk3588_ddr");
    let usbplug = pick("rk3588_usbplug");
    b.ok(
        "m6",
        &[
            "boot",
            "--ddr",
            ddr.to_str().unwrap(),
            "--spl",
            usbplug.to_str().unwrap(),
        ],
    );
    let board = b.board("m6");
    assert_eq!(board.state().mode, Mode::Loader);
    // RK3588's BootROM takes plain data: the blobs arrive as they are on disk.
    assert_eq!(
        board.received(0x471).unwrap(),
        vec![std::fs::read(&ddr).unwrap()]
    );
    assert_eq!(
        board.received(0x472).unwrap(),
        vec![std::fs::read(&usbplug).unwrap()]
    );
}
