//! A board whose interface another program has claimed is busy, as usbfs makes it: the
//! shim's claims are exclusive across processes, so two clients cannot interleave their
//! commands on one board.

// Standing in for another program means taking its raw fcntl lock.
#![allow(unsafe_code)]

mod shim_support;

use shim_support::*;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Holds the claim the shim takes for `libusb_claim_interface` (an open-file-description
/// lock on byte `address` of the board's `usb.lock`), standing in for another program
/// that has the board open.
fn hold_claim(board_dir: &Path, address: u8) -> File {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(board_dir.join("usb.lock"))
        .unwrap();
    // SAFETY: an all-zero flock is valid; fcntl only reads it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = libc::off_t::from(address);
    lock.l_len = 1;
    // SAFETY: the descriptor is owned by `file`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    file
}

#[test]
fn a_board_claimed_by_another_program_is_busy_to_both_clients() {
    let boards = Boards::new(&["m6"], 64);
    let address = boards.board("m6").identity().unwrap().address;
    let held = hold_claim(&boards.root().join("m6"), address);

    // rockusb still lists the board, but cannot probe its mode.
    let text = ok(&mut boards.rockusb(&["--json", "list"]), &boards);
    assert_served_by_shim(&boards, "the rockusb binary");
    assert!(text.contains("\"mode\":\"unknown\""), "{text}");
    assert!(text.contains("busy"), "{text}");

    if have_rkdeveloptool("a_board_claimed_by_another_program_is_busy_to_both_clients") {
        let out = run(&mut boards.rkdeveloptool(&["rid"]), false, &boards);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("creating comm object failed"), "{stdout}");
    }

    // Once the other program lets go, the board is usable again.
    drop(held);
    let listed = list_boards(&boards);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].1, "maskrom", "{listed:?}");
}
