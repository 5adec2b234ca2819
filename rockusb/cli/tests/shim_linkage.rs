//! The shim can only stand in for what it exports: any libusb function a client imports
//! that the shim lacks would go to the real libusb with the shim's pointers. These tests
//! check both clients' imports against the shim's exports, that `rockusb` links libusb
//! dynamically at all, and how the shim treats its environment.

mod shim_support;

use rockusb_virtual::LinkModel;
use shim_support::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The `libusb_*` dynamic symbols of `file`: `undefined` ones it imports, or the ones it
/// defines.
fn libusb_symbols(file: &Path, undefined: bool) -> BTreeSet<String> {
    let which = if undefined {
        "--undefined-only"
    } else {
        "--defined-only"
    };
    let out = Command::new("nm")
        .args(["-D", which])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nm: {e}"));
    assert!(
        out.status.success(),
        "nm -D {which} {} failed",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|s| s.starts_with("libusb_"))
        .map(String::from)
        .collect()
}

#[test]
fn the_shim_exports_every_libusb_function_both_clients_import() {
    let test = "the_shim_exports_every_libusb_function_both_clients_import";
    if !rockusb_testkit::tool(test, "nm", "binutils") {
        return;
    }
    let exported = libusb_symbols(&shim_library(), false);
    let rockusb_imports = libusb_symbols(Path::new(env!("CARGO_BIN_EXE_rockusb")), true);
    assert!(
        rockusb_imports.contains("libusb_init"),
        "the rockusb binary imports no libusb_init: libusb is linked statically (rusb's \
         `vendored` feature, or libusb-1.0-0-dev/pkg-config missing at build time), so \
         LD_PRELOAD cannot reach it and the shim tests would test nothing. Imports: \
         {rockusb_imports:?}"
    );
    let missing: Vec<_> = rockusb_imports.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "rockusb imports these, the shim lacks them: {missing:?}"
    );

    if have_rkdeveloptool(test) {
        let rkdt = which("rkdeveloptool").expect("on PATH");
        let imports = libusb_symbols(&rkdt, true);
        // The list the issue names for Debian's 1.32 build.
        for name in [
            "libusb_init",
            "libusb_get_device_list",
            "libusb_bulk_transfer",
            "libusb_control_transfer",
            "libusb_reset_device",
        ] {
            assert!(
                imports.contains(name),
                "rkdeveloptool does not import {name}"
            );
        }
        let missing: Vec<_> = imports.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "rkdeveloptool imports these, the shim lacks them: {missing:?}"
        );
    }
}

#[test]
fn a_malformed_link_setting_is_refused_with_the_variable_named() {
    let boards = Boards::new(&["m6"], 64);
    // libusb does not start: an error, or, on a machine that shows no USB devices at all
    // (as in CI), no boards with a warning that says libusb could not start.
    let out = boards
        .rockusb(&["list"])
        .env("ROCKUSB_SHIM_LINK", "fast")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        assert!(stderr.contains("libusb could not start"), "{stderr}");
    }
    assert!(stderr.contains("ROCKUSB_SHIM_LINK=\"fast\""), "{stderr}");
    assert!(
        stderr.contains("usb2"),
        "the message does not say what is accepted: {stderr}"
    );
}

#[test]
fn the_link_model_is_off_by_default_and_set_from_the_environment() {
    let boards = Boards::new(&["m6"], 64);
    assert_eq!(boards.board("m6").config().link, None);
    ok(&mut boards.rockusb(&["list"]), &boards);
    assert_eq!(
        boards.board("m6").config().link,
        None,
        "a plain run turned it on"
    );

    ok(
        boards.rockusb(&["list"]).env("ROCKUSB_SHIM_LINK", "usb2"),
        &boards,
    );
    let link = boards.board("m6").config().link;
    assert_eq!(
        link,
        Some(LinkModel {
            bytes_per_second: 40e6,
            command_overhead: 0.5e-3
        })
    );
    ok(
        boards.rockusb(&["list"]).env("ROCKUSB_SHIM_LINK", "off"),
        &boards,
    );
    assert_eq!(boards.board("m6").config().link, None);
}

#[test]
fn with_no_boards_named_the_bus_is_empty_and_the_shim_says_why() {
    let boards = Boards::new(&["m6"], 64);
    let out = run(
        boards
            .rockusb(&["--json", "list"])
            .env_remove("ROCKUSB_SHIM_BOARDS"),
        true,
        &boards,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("\"result\":[]"), "{stdout}");
    assert!(stderr.contains("ROCKUSB_SHIM_BOARDS"), "{stderr}");
}
