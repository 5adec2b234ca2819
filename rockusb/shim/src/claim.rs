//! Claiming the board's interface, exclusive across handles and processes as usbfs makes
//! it: while one handle has the interface claimed, a claim through any other handle — in
//! this process or another, e.g. `rockusb` while `rkdeveloptool` runs — fails with
//! `LIBUSB_ERROR_BUSY`.
//!
//! A claim is an open-file-description lock (Linux `F_OFD_SETLK`) on byte `address` of
//! `<board folder>/usb.lock`: it belongs to the handle (not the process), goes away when
//! the handle releases, closes or its process dies, and is per address, so a handle left
//! over from the board's previous enumeration does not block the new one.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// The lock file in a board's folder.
pub const LOCK_FILE: &str = "usb.lock";

/// A held claim; dropping it releases the interface.
#[derive(Debug)]
pub struct Claim {
    _file: File,
}

/// Claims the interface of the board in `dir` at `address`; `Ok(None)` when another
/// handle holds it.
pub fn try_claim(dir: &Path, address: u8) -> io::Result<Option<Claim>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))?;
    // SAFETY: an all-zero `flock` is a valid value; the fields that matter are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = libc::off_t::from(address);
    lock.l_len = 1;
    // SAFETY: `fcntl` reads the `flock` it is given; the descriptor is owned by `file`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    if rc == 0 {
        return Ok(Some(Claim { _file: file }));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(None),
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_excludes_others_at_the_same_address_only() {
        let dir = std::env::temp_dir().join(format!("shim-claim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = try_claim(&dir, 12).unwrap().expect("free at first");
        assert!(try_claim(&dir, 12).unwrap().is_none(), "claimed twice");
        let other = try_claim(&dir, 13).unwrap();
        assert!(other.is_some(), "a new address is blocked by the old one");
        drop(first);
        assert!(
            try_claim(&dir, 12).unwrap().is_some(),
            "not released on drop"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
