//! Helpers for tests that depend on things outside the repository: the shared test data
//! folder (`../shared/testdata`, real files made by others that cannot ship with the
//! project) and external tools (`sgdisk`, `xz`, `rkdeveloptool`, `qemu-aarch64-static`, …).
//!
//! A test that cannot run says so loudly on stderr. Under CI (`CI` set in the
//! environment) a missing dependency is a failure instead: CI installs everything, so a
//! missing piece there means the set-up is broken, not that the test may be skipped.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// True when running under CI, where every dependency must be present.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Reports that `test` cannot run because `what` is missing.
///
/// Returns normally (so the caller can `return`) outside CI; panics under CI.
pub fn missing(test: &str, what: &str, how_to_fix: &str) {
    let msg = format!("SKIPPED {test}: {what} is missing ({how_to_fix})");
    if in_ci() {
        panic!("{msg}; under CI every test dependency must be installed");
    }
    eprintln!("\n*** {msg} ***\n");
}

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    // rockusb/testkit -> workspace root
    here.parent()
        .and_then(Path::parent)
        .expect("testkit lives two levels below the workspace root")
        .to_path_buf()
}

/// The shared test data folder, `../shared/testdata` beside the checkout, or
/// `ROCKUSB_TESTDATA` when set.
pub fn testdata_path() -> PathBuf {
    match std::env::var_os("ROCKUSB_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared/testdata"),
    }
}

/// The shared test data folder if it exists; otherwise reports the test as skipped
/// (or fails under CI) and returns `None`.
pub fn testdata(test: &str) -> Option<PathBuf> {
    let dir = testdata_path();
    let what = format!("the shared test data folder {}", dir.display());
    let fix = "it sits beside the checkout as ../shared/testdata, or set ROCKUSB_TESTDATA";
    found_or_missing(test, dir.join("MANIFEST.md").is_file(), &what, fix).then_some(dir)
}

/// `found`, after reporting `what` as missing (see [`missing`]) when it is false.
fn found_or_missing(test: &str, found: bool, what: &str, how_to_fix: &str) -> bool {
    if !found {
        missing(test, what, how_to_fix);
    }
    found
}

/// The RK3588 loader in the shared test data folder that many tests use (rkbin via
/// armbian: DDR v1.16, usbplug v1.11).
pub const RK3588_LOADER: &str = "loaders/armbian-rkbin__rk3588_spl_loader_v1.16.113.bin";

/// The path of a file in the shared test data folder (`relative` to it), or `None` when
/// the folder or the file is missing (reported as for [`testdata`]).
pub fn testdata_file(test: &str, relative: &str) -> Option<PathBuf> {
    let path = testdata(test)?.join(relative);
    let what = format!("{}", path.display());
    let fix = "the shared test data folder lists it in MANIFEST.md";
    found_or_missing(test, path.is_file(), &what, fix).then_some(path)
}

/// The bytes of a file in the shared test data folder, or `None` as for
/// [`testdata_file`].
pub fn testdata_bytes(test: &str, relative: &str) -> Option<Vec<u8>> {
    let path = testdata_file(test, relative)?;
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The files (not folders) directly in `dir`, sorted by path.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// True if `tool` runs (`tool --version` or `tool --help` starts); otherwise reports the
/// test as skipped (or fails under CI).
pub fn tool(test: &str, tool: &str, package: &str) -> bool {
    let what = format!("the `{tool}` program");
    let fix = format!("install the Debian package `{package}`");
    found_or_missing(test, tool_available(tool), &what, &fix)
}

/// True if `tool` is found on PATH.
pub fn tool_available(tool: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| dir.join(tool).is_file())
}

/// Runs a command and returns its stdout, panicking with its stderr if it fails.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
pub mod fs;
pub mod talos;
pub mod uboot;
