//! Faults injected into the virtual board (ROCKUSB_VIRTUAL_FAULTS): transient ones are
//! retried and the flash ends verified, with a warning about the link; a persistent one
//! ends with an error that names where it stopped and what the board holds now.

mod flash_support;

use flash_support::*;
use std::path::Path;
use std::process::{Command, Output};

fn flash_with_faults(root: &Path, image: &Path, loader: &Path, faults: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rockusb"))
        .env("ROCKUSB_VIRTUAL_DIR", root)
        .env("ROCKUSB_VIRTUAL", BOARD)
        .env("ROCKUSB_VIRTUAL_FAULTS", faults)
        .args(["--json", "flash", "--loader"])
        .arg(loader)
        .arg(image)
        .output()
        .unwrap()
}

#[test]
fn transient_faults_are_retried_and_the_flash_ends_verified() {
    with_talos_image("transient_faults", transient_faults);
}

fn transient_faults(root: &Path, raw: &Path) {
    let image = std::fs::read(raw).unwrap();
    let xz = xz(raw);
    let loader = board_with_standin(root);

    // A lost command, a stalled one, a write the loader failed, and a read-back damaged
    // on the way: each goes through when sent again.
    // (Spaced so that no command meets three of them in a row, which would read as a
    // size the loader refuses.)
    let out = flash_with_faults(root, &xz, &loader, "timeout@5,stall@15,failed@8,corrupt@4");
    assert!(out.status.success(), "{}", text(&out));
    let result = json_result(&out);
    assert_eq!(result["verify"]["verify"], "verified", "{result}");
    let warnings = result["warnings"].to_string();
    let retried: u32 = warnings
        .split(" command(s) failed and went through when sent again")
        .next()
        .and_then(|head| head.rsplit('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retry warning: {warnings}"));
    // Two faults may meet one command (its first try and its retry): 3 or 4 commands.
    assert!((3..=4).contains(&retried), "{warnings}");
    // No size was given up for a fault that went away.
    assert!(!warnings.contains("refused"), "{warnings}");
    assert_flashed(&emmc(root), &image);
}

#[test]
fn a_persistent_fault_names_where_it_stopped_and_what_the_board_holds() {
    with_talos_image("persistent_fault", persistent_fault);
}

fn persistent_fault(root: &Path, raw: &Path) {
    let xz = xz(raw);
    let loader = board_with_standin(root);

    // Every write from the 3rd on fails: retries and smaller commands cannot help.
    let faults: Vec<String> = (3..400).map(|n| format!("failed@{n}")).collect();
    let out = flash_with_faults(root, &xz, &loader, &faults.join(","));
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at sector"), "{stderr}");
    assert!(stderr.contains("stopped after writing"), "{stderr}");
    assert!(stderr.contains("not bootable"), "{stderr}");
    assert!(
        stderr.contains("run the same command with --resume"),
        "{stderr}"
    );
}
