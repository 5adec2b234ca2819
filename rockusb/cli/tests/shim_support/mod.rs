//! Running real USB clients (`rockusb` through rusb, Debian's `rkdeveloptool`) against
//! virtual boards through the libusb shim (`libusb_shim.so`, loaded with LD_PRELOAD).
//!
//! Each test gets its own folder of boards, configured before first use (a small eMMC so
//! a full erase is quick). The shim is told about them with its own variables, and
//! `ROCKUSB_VIRTUAL` is removed so `rockusb` takes its libusb path.

#![allow(dead_code)] // each test file uses a different part of this module

use rockusb_virtual::config::MIB;
use rockusb_virtual::{BoardConfig, VirtualBoard};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The sector size of the boards' storage.
pub const SECTOR: usize = 512;

// The RK3588 loader the tests boot with, and files of the shared test data folder (not
// every test file uses them).
#[allow(unused_imports)]
pub use rockusb_testkit::{RK3588_LOADER, testdata_file};

/// The shim library, built for this test run's profile if needed.
///
/// `cargo test --workspace` compiles the shim crate's unit tests but not necessarily its
/// cdylib, so the library is built here with the same cargo, target folder and profile
/// the tests were built with; cargo makes that a no-op when it is up to date. Every
/// workspace library is named so that features unify as in `cargo test --workspace` and
/// the tests' own builds of the dependencies are reused (the shim alone would unify them
/// differently and rebuild most of the tree).
pub fn shim_library() -> PathBuf {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(build_shim).clone()
}

fn build_shim() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&workspace)
        .args(["build", "--quiet", "--workspace", "--lib", "--target-dir"])
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    rockusb_testkit::run(&mut cmd);
    let library = profile_dir.join("libusb_shim.so");
    assert!(
        library.is_file(),
        "{cmd:?} succeeded but {} is missing",
        library.display()
    );
    library
}

/// A folder of virtual boards for one test.
pub struct Boards {
    dir: tempfile::TempDir,
    names: Vec<String>,
}

impl Boards {
    /// Creates NanoPi M6 boards in MaskROM on ports 1-1, 1-2, … (the ports the virtual
    /// bus gives them) with an `emmc_mib` MiB eMMC.
    pub fn new(names: &[&str], emmc_mib: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp folder");
        for (i, name) in names.iter().enumerate() {
            let port = u8::try_from(i + 1).expect("a few boards");
            VirtualBoard::open_or_create(&dir.path().join(name), || {
                let mut config = BoardConfig::nanopi_m6(port);
                config.emmc_bytes = emmc_mib * MIB;
                config
            })
            .expect("create the virtual board");
        }
        Boards {
            dir,
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// Creates NanoPi M6 boards in MaskROM where the virtual bus puts the entries of
    /// `list` (`NAME` or `NAME@HUB`, see `rockusb_virtual::bus`), with an `emmc_mib` MiB
    /// eMMC; the shim is given the same list.
    pub fn on_bus(list: &[&str], emmc_mib: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp folder");
        let entries: Vec<String> = list.iter().map(|n| n.to_string()).collect();
        let bus = rockusb_virtual::VirtualBus::new(dir.path().to_path_buf(), entries.clone());
        for name in bus.names() {
            let mut config = bus.new_board_config(name).expect("a board on the bus");
            config.emmc_bytes = emmc_mib * MIB;
            VirtualBoard::open_or_create(&dir.path().join(name), || config)
                .expect("create the virtual board");
        }
        Boards {
            dir,
            names: entries,
        }
    }

    /// Names boards without creating them: the shim creates them on first use, from its
    /// environment (a NanoPi M6 with its full-size sparse storage).
    pub fn unconfigured(names: &[&str]) -> Self {
        Boards {
            dir: tempfile::tempdir().expect("temp folder"),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A scratch file path inside the test's folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The shim's trace file for this test.
    pub fn trace_path(&self) -> PathBuf {
        self.dir.path().join("shim-trace.log")
    }

    /// Opens a board's files to inspect what the clients did.
    pub fn board(&self, name: &str) -> VirtualBoard {
        VirtualBoard::open(&self.dir.path().join(name)).expect("open the virtual board")
    }

    /// `program` with the shim preloaded and pointed at these boards.
    pub fn through_shim(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("LD_PRELOAD", shim_library())
            .env("ROCKUSB_SHIM_BOARDS", self.names.join(","))
            .env("ROCKUSB_SHIM_DIR", self.root())
            .env("ROCKUSB_SHIM_TRACE", self.trace_path())
            // Flash journals of these boards stay with them, not in the user's state folder.
            .env("ROCKUSB_STATE_DIR", self.root())
            .env_remove("ROCKUSB_VIRTUAL")
            .env_remove("ROCKUSB_VIRTUAL_DIR")
            .env_remove("ROCKUSB_SHIM_LINK")
            .current_dir(self.root());
        cmd
    }

    /// The real `rockusb` binary, on its libusb path.
    pub fn rockusb(&self, args: &[&str]) -> Command {
        let mut cmd = self.through_shim(env!("CARGO_BIN_EXE_rockusb"));
        cmd.args(args);
        cmd
    }

    /// Debian's `rkdeveloptool`, run from a copy in the test folder: it writes its log
    /// beside its own executable (`<dir>/log/`), which must not be /usr/bin.
    pub fn rkdeveloptool(&self, args: &[&str]) -> Command {
        let copy = self.dir.path().join("bin").join("rkdeveloptool");
        if !copy.is_file() {
            let original = which("rkdeveloptool").expect("rkdeveloptool is on PATH");
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            std::fs::copy(&original, &copy).expect("copy rkdeveloptool");
        }
        let mut cmd = self.through_shim(copy);
        cmd.args(args);
        cmd
    }

    /// Runs `rkdeveloptool` with `args`, which must succeed; returns its stdout as text.
    pub fn rkdeveloptool_ok(&self, args: &[&str]) -> String {
        ok(&mut self.rkdeveloptool(args), self)
    }

    /// rkdeveloptool's own log for this test, for failure messages.
    pub fn rkdeveloptool_log(&self) -> String {
        let dir = self.dir.path().join("bin").join("log");
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                text += &std::fs::read_to_string(entry.path()).unwrap_or_default();
            }
        }
        text
    }

    pub fn trace(&self) -> String {
        std::fs::read_to_string(self.trace_path()).unwrap_or_default()
    }
}

/// True when Debian's `rkdeveloptool` is installed (else the test is skipped, or fails
/// under CI).
pub fn have_rkdeveloptool(test: &str) -> bool {
    rockusb_testkit::tool(test, "rkdeveloptool", "rkdeveloptool")
}

/// The first `tool` on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// Runs `cmd`, returning its output; `expect_success` says how it must end.
pub fn run(cmd: &mut Command, expect_success: bool, boards: &Boards) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if out.status.success() != expect_success {
        panic!(
            "{cmd:?} {} ({}):\n--- stdout\n{}\n--- stderr\n{}\n--- shim trace\n{}\n--- rkdeveloptool log\n{}",
            if expect_success {
                "failed"
            } else {
                "succeeded, but was expected to fail"
            },
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            boards.trace(),
            boards.rkdeveloptool_log(),
        );
    }
    out
}

/// Runs `cmd`, which must succeed, and returns its stdout as text.
pub fn ok(cmd: &mut Command, boards: &Boards) -> String {
    String::from_utf8_lossy(&run(cmd, true, boards).stdout).into_owned()
}

/// Fails loudly unless `pid`-stamped lines in the trace show the shim served a libusb
/// program: a binary that links libusb statically (rusb's `vendored` feature, or no
/// libusb-1.0-0-dev at build time) never calls into an LD_PRELOADed library, and every
/// test through the shim would then test nothing.
pub fn assert_served_by_shim(boards: &Boards, what: &str) {
    let trace = boards.trace();
    assert!(
        trace.lines().any(|l| l.ends_with(" libusb_init")),
        "{what} did not call libusb_init in the shim: it is not using libusb-1.0.so.0 \
         dynamically (statically linked libusb?). Build with libusb-1.0-0-dev and pkg-config \
         installed and without rusb's `vendored` feature. Trace:\n{trace}"
    );
}

/// Deterministic, incompressible-looking test data.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// The `rockusb --json list` result: (port path, mode, address) per board.
pub fn list_boards(boards: &Boards) -> Vec<(String, String, u8)> {
    let text = ok(&mut boards.rockusb(&["--json", "list"]), boards);
    let line = text
        .lines()
        .find(|l| l.contains("\"result\""))
        .unwrap_or_else(|| panic!("no result line in `rockusb --json list`:\n{text}"));
    let value: serde_json::Value = serde_json::from_str(line).expect("JSON result");
    value["result"]
        .as_array()
        .expect("a list of boards")
        .iter()
        .map(|b| {
            (
                b["port_path"].as_str().unwrap_or_default().to_string(),
                b["mode"].as_str().unwrap_or_default().to_string(),
                b["address"].as_u64().unwrap_or_default() as u8,
            )
        })
        .collect()
}

/// The loader's 0x471 and 0x472 entries, as the BootROM should receive them.
pub fn loader_areas(loader: &Path) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    use rockusb_loaders::container::{EntryKind, LoaderContainer};
    let bytes = std::fs::read(loader).expect("read the loader");
    let container = LoaderContainer::parse(&bytes).expect("a valid loader container");
    let data = |kind| container.entries(kind).map(|e| e.data.clone()).collect();
    (data(EntryKind::Area471), data(EntryKind::Area472))
}
