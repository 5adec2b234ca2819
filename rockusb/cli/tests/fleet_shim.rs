//! `rockusb fleet` on its real USB path: the binary, rusb and libusb, the libusb shim and
//! several virtual boards at once. Four boards flashed together and verified, with names
//! from a fleet file and a report; one board failing mid-write while the others finish;
//! a board plugged in while the others are flashing; a station stopped with Ctrl-C;
//! boards behind a virtual hub.

mod flash_support;
mod shim_support;

use rockusb::protocol::StorageKind;
use rockusb_virtual::Mode;
use serde_json::Value;
use shim_support::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const EMMC_MIB: u64 = 64;

/// What each test needs: the boards, the image (raw bytes and .xz) and the loader.
struct Setup {
    boards: Boards,
    image: Vec<u8>,
    xz: PathBuf,
    loader: PathBuf,
}

fn setup(test: &str, list: &[&str]) -> Option<Setup> {
    if !flash_support::tools(test) {
        return None;
    }
    let loader = testdata_file(test, RK3588_LOADER)?;
    let boards = Boards::on_bus(list, EMMC_MIB);
    let raw = flash_support::talos_image(boards.root());
    let image = std::fs::read(&raw).unwrap();
    let xz = flash_support::xz(&raw);
    Some(Setup {
        boards,
        image,
        xz,
        loader,
    })
}

impl Setup {
    /// `rockusb --json fleet --loader LOADER --report report.json EXTRA… IMAGE`.
    fn fleet(&self, extra: &[&str]) -> Command {
        let mut cmd = self.boards.rockusb(&["--json", "fleet", "--loader"]);
        cmd.arg(&self.loader)
            .arg("--report")
            .arg(self.report_path())
            .args(extra)
            .arg(&self.xz);
        cmd
    }

    fn report_path(&self) -> PathBuf {
        self.boards.file("report.json")
    }

    fn report(&self) -> Value {
        let text = std::fs::read_to_string(self.report_path()).expect("the report was written");
        serde_json::from_str(&text).expect("the report is JSON")
    }

    /// The board `name`'s eMMC holds the image.
    fn assert_flashed(&self, name: &str) {
        let emmc = self
            .boards
            .board(name)
            .read_storage(StorageKind::Emmc, 0, self.image.len())
            .unwrap();
        flash_support::assert_flashed(&emmc, &self.image);
    }
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The report's record of the board at `port`.
fn record<'a>(report: &'a Value, port: &str) -> &'a Value {
    report["boards"]
        .as_array()
        .expect("a list of boards")
        .iter()
        .find(|b| b["port"] == port)
        .unwrap_or_else(|| panic!("no record for {port}: {report:#}"))
}

fn end_of(board: &Value) -> f64 {
    board["started_at"].as_f64().unwrap() + board["seconds"].as_f64().unwrap()
}

#[test]
fn fleet_through_libusb_flashes_four_boards_at_once_with_names_and_a_report() {
    let test = "fleet_through_libusb_flashes_four_boards_at_once_with_names_and_a_report";
    let Some(s) = setup(test, &["a", "b", "c", "d"]) else {
        return;
    };
    let names = s.boards.file("fleet.toml");
    std::fs::write(
        &names,
        "# the bench\n[ports]\n\"1-1\" = \"slot-a\"\n\"1-3\" = \"slot-c\"\n",
    )
    .unwrap();
    let mut cmd = s.fleet(&["--count", "4", "--names", names.to_str().unwrap()]);
    let stdout = ok(&mut cmd, &s.boards);
    assert_served_by_shim(&s.boards, "rockusb fleet");

    let lines = json_lines(stdout.as_bytes());
    // Every board's events are labelled with its port, and with its name where the fleet
    // file gives one.
    for line in &lines {
        match line["board"].as_str() {
            Some("1-1") => assert_eq!(line["board_name"], "slot-a", "{line}"),
            Some("1-3") => assert_eq!(line["board_name"], "slot-c", "{line}"),
            Some(_) => assert!(line.get("board_name").is_none(), "{line}"),
            None => assert!(
                ["image-checked", "result"].contains(&line["event"].as_str().unwrap_or("")),
                "an unlabelled event: {line}"
            ),
        }
    }
    let summary = &lines.last().unwrap()["result"];
    let report = s.report();
    assert_eq!(summary["flashed"], 4, "{summary:#}");
    assert_eq!(report["flashed"], 4, "{report:#}");
    assert_eq!(report["boards"].as_array().unwrap().len(), 4);
    for (name, port, label) in [
        ("a", "1-1", Some("slot-a")),
        ("b", "1-2", None),
        ("c", "1-3", Some("slot-c")),
        ("d", "1-4", None),
    ] {
        let board = record(&report, port);
        assert_eq!(board["name"].as_str(), label, "{board:#}");
        assert_eq!(board["result"], "flashed", "{board:#}");
        assert_eq!(board["error"], Value::Null, "{board:#}");
        assert_eq!(board["chip"], "RK3588", "{board:#}");
        assert_eq!(board["storage_bytes"], EMMC_MIB << 20, "{board:#}");
        assert_eq!(board["image_hash"], report["image_hash"]);
        assert_eq!(board["image_hash"].as_str().unwrap().len(), 32);
        let written = board["bytes_written"].as_u64().unwrap();
        assert!(written >= 11 << 20, "{board:#}");
        assert!(
            board["bytes_verified"].as_u64().unwrap() >= written,
            "{board:#}"
        );
        assert!(board["seconds"].as_f64().unwrap() > 0.0);
        s.assert_flashed(name);
        assert_eq!(s.boards.board(name).state().mode, Mode::Off, "{name} reset");
    }
    // One decoder for the four: every 1 MiB block decoded once (40 in the image), and
    // each board got every block, from the window or, behind it, decoded alone.
    let decode = &report["decode"];
    assert_eq!(decode["decoded"], 40, "{decode}");
    assert_eq!(
        decode["served"].as_u64().unwrap() + decode["redecoded"].as_u64().unwrap(),
        4 * 40,
        "{decode}"
    );
    // At once: every board was taken before any finished.
    let boards = report["boards"].as_array().unwrap();
    let last_start = boards
        .iter()
        .map(|b| b["started_at"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let first_end = boards.iter().map(end_of).fold(f64::MAX, f64::min);
    assert!(last_start < first_end, "{report:#}");
}

#[test]
fn fleet_through_libusb_reports_the_board_that_failed_mid_write_while_the_others_finish() {
    let test =
        "fleet_through_libusb_reports_the_board_that_failed_mid_write_while_the_others_finish";
    let Some(s) = setup(test, &["a", "b", "c", "d"]) else {
        return;
    };
    // Board b browns out during its 30th data command: back in MaskROM, loader lost.
    let mut cmd = s.fleet(&["--count", "4", "--command-sectors", "256"]);
    cmd.env("ROCKUSB_VIRTUAL_FAULTS", "b:maskrom@30");
    let out = run(&mut cmd, false, &s.boards);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 of 4 board(s) failed"), "{stderr}");
    let report = s.report();
    assert_eq!(
        (&report["flashed"], &report["failed"]),
        (&Value::from(3), &Value::from(1)),
        "{report:#}"
    );
    let failed = record(&report, "1-2");
    assert_eq!(failed["result"], "failed", "{failed:#}");
    let why = failed["error"].as_str().unwrap();
    assert!(why.contains("came back in MaskROM"), "{why}");
    assert!(why.contains("--resume"), "{why}");
    assert_eq!(s.boards.board("b").state().mode, Mode::Maskrom);
    let lines = json_lines(&out.stdout);
    let summary = &lines.last().unwrap()["result"];
    assert_eq!(summary["failed"], 1, "{summary:#}");
    for (name, port) in [("a", "1-1"), ("c", "1-3"), ("d", "1-4")] {
        assert_eq!(record(&report, port)["result"], "flashed", "{report:#}");
        s.assert_flashed(name);
    }
}

/// Runs `cmd` with its stdout piped, calling `each` with every JSON line as it comes;
/// returns the lines and whether the command succeeded.
fn follow(mut cmd: Command, mut each: impl FnMut(&Value, u32)) -> (Vec<Value>, bool, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rockusb");
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        each(&value, pid);
        lines.push(value);
    }
    let out = child.wait_with_output().unwrap();
    (
        lines,
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn is_write_start(line: &Value) -> bool {
    line["event"] == "phase-start" && line["phase"] == "write"
}

#[test]
fn fleet_through_libusb_takes_a_board_plugged_in_while_others_flash() {
    let test = "fleet_through_libusb_takes_a_board_plugged_in_while_others_flash";
    let Some(s) = setup(test, &["a", "b", "c", "d"]) else {
        return;
    };
    s.boards.board("d").unplug().unwrap();
    // A slow link (4 MB/s) keeps the first three busy for seconds.
    let mut cmd = s.fleet(&["--count", "4"]);
    cmd.env("ROCKUSB_SHIM_LINK", "4e6,0.5e-3");
    let mut plugged = false;
    let (lines, success, stderr) = follow(cmd, |line, _| {
        if !plugged && is_write_start(line) {
            s.boards.board("d").power_cycle().unwrap();
            plugged = true;
        }
    });
    assert!(success, "{stderr}\n{lines:#?}");
    assert!(plugged);
    let report = s.report();
    assert_eq!(report["flashed"], 4, "{report:#}");
    let late = record(&report, "1-4");
    let others: Vec<&Value> = ["1-1", "1-2", "1-3"]
        .iter()
        .map(|p| record(&report, p))
        .collect();
    let first_start = others
        .iter()
        .map(|b| b["started_at"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    let last_end = others.iter().map(|b| end_of(b)).fold(0.0, f64::max);
    let taken = late["started_at"].as_f64().unwrap();
    assert!(
        first_start < taken && taken < last_end,
        "the late board was not taken while the others flashed: {report:#}"
    );
    for name in ["a", "b", "c", "d"] {
        s.assert_flashed(name);
    }
}

#[test]
fn fleet_through_libusb_stopped_with_ctrl_c_names_the_unfinished_boards() {
    let test = "fleet_through_libusb_stopped_with_ctrl_c_names_the_unfinished_boards";
    let Some(s) = setup(test, &["a", "b"]) else {
        return;
    };
    // A slow link (2 MB/s): both boards are still writing when the signal comes.
    let mut cmd = s.fleet(&[]);
    cmd.env("ROCKUSB_SHIM_LINK", "2e6,0.5e-3");
    let mut writing = 0;
    let (lines, success, stderr) = follow(cmd, |line, pid| {
        if is_write_start(line) {
            writing += 1;
            if writing == 2 {
                let status = Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        }
    });
    assert!(!success, "{stderr}");
    assert!(stderr.contains("the station was stopped"), "{stderr}");
    let report = s.report();
    assert_eq!(report["interrupted"], true, "{report:#}");
    assert_eq!(report["unfinished"], 2, "{report:#}");
    for (name, port) in [("a", "1-1"), ("b", "1-2")] {
        let board = record(&report, port);
        assert_eq!(board["result"], "unfinished", "{board:#}");
        let why = board["error"].as_str().unwrap();
        assert!(why.contains("stopped during write"), "{why}");
        assert!(
            why.contains(&format!("rockusb --device {port} flash --resume")),
            "{why}"
        );
        // Nothing half-done was reset: the loader still runs.
        assert_eq!(s.boards.board(name).state().mode, Mode::Loader);
        assert!(
            lines
                .iter()
                .any(|l| l["event"] == "unfinished" && l["board"] == port),
            "no unfinished event for {port}: {lines:#?}"
        );
    }
}

/// Boards behind one virtual hub share its USB 2.0 link; one beside it has its own. The
/// report gives the hub's throughput, which the shared link model bounds.
#[test]
fn fleet_through_libusb_reports_the_throughput_of_a_virtual_hub() {
    let test = "fleet_through_libusb_reports_the_throughput_of_a_virtual_hub";
    let Some(s) = setup(test, &["a@hub1", "b@hub1", "c"]) else {
        return;
    };
    let listed: Vec<String> = list_boards(&s.boards).into_iter().map(|b| b.0).collect();
    assert_eq!(listed, ["1-1.1", "1-1.2", "1-2"]);
    let mut cmd = s.fleet(&["--count", "3"]);
    cmd.env("ROCKUSB_SHIM_LINK", "usb2");
    ok(&mut cmd, &s.boards);
    let report = s.report();
    assert_eq!(report["flashed"], 3, "{report:#}");
    let hubs = report["hubs"].as_array().unwrap();
    assert_eq!(hubs.len(), 1, "{report:#}");
    assert_eq!(hubs[0]["hub"], "1-1");
    assert_eq!(hubs[0]["boards"], 2);
    let moved: u64 = ["1-1.1", "1-1.2"]
        .iter()
        .map(|p| {
            let b = record(&report, p);
            b["bytes_written"].as_u64().unwrap() + b["bytes_verified"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(hubs[0]["bytes"], moved);
    // One wire of 40 MB/s for both boards, whatever the host's speed.
    let rate = hubs[0]["bytes_per_second"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 40e6 * 1.02, "{rate}");
    for name in ["a", "b", "c"] {
        s.assert_flashed(name);
    }
    assert!(Path::new(&s.boards.root().join(".hubs/hub1/wire")).is_file());
}
