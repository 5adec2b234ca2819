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
    if dir.join("MANIFEST.md").is_file() {
        Some(dir)
    } else {
        missing(
            test,
            &format!("the shared test data folder {}", dir.display()),
            "it sits beside the checkout as ../shared/testdata, or set ROCKUSB_TESTDATA",
        );
        None
    }
}

/// True if `tool` runs (`tool --version` or `tool --help` starts); otherwise reports the
/// test as skipped (or fails under CI).
pub fn tool(test: &str, tool: &str, package: &str) -> bool {
    if tool_available(tool) {
        true
    } else {
        missing(
            test,
            &format!("the `{tool}` program"),
            &format!("install the Debian package `{package}`"),
        );
        false
    }
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
