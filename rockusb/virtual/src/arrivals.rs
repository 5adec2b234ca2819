//! Arrivals on the virtual bus: a board that comes on the bus or leaves it (power-cycled,
//! unplugged, reset, re-enumerated) says so to every program watching its folder of
//! boards, so a provisioning station rescans the moment something changed instead of
//! polling, in this process or another (a test that plugs a board in, the libusb shim).
//!
//! Each watcher owns a named pipe in `.arrivals/` beside the boards and blocks reading
//! it; a board that changes writes a byte into every pipe there. A pipe whose watcher has
//! gone (no reader) is removed by the next writer. Named pipes are a Linux facility here;
//! elsewhere nothing is watched and the station polls.

pub use rockusb::discovery::Notify;
use std::path::Path;

const FOLDER: &str = ".arrivals";

/// Tells every watcher of `root` that a board there changed (best effort: a missed
/// signal only means the watcher's fallback poll notices it later).
pub fn announce(root: &Path) {
    #[cfg(target_os = "linux")]
    linux::announce(root);
    #[cfg(not(target_os = "linux"))]
    let _ = root;
}

/// Calls `notify` from a thread of its own whenever a board under `root` changes, for as
/// long as the process runs; false when that cannot be watched.
pub fn watch(root: &Path, notify: Notify) -> bool {
    #[cfg(target_os = "linux")]
    return linux::watch(root, notify).is_ok();
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (root, notify);
        false
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::{FOLDER, Notify};
    use rustix::fs::{CWD, FileType, Mode, OFlags};
    use std::io::{self, Read};
    use std::path::Path;
    use std::sync::atomic::{AtomicU32, Ordering};

    pub fn announce(root: &Path) {
        let Ok(entries) = std::fs::read_dir(root.join(FOLDER)) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match rustix::fs::open(&path, OFlags::WRONLY | OFlags::NONBLOCK, Mode::empty()) {
                // A full pipe already holds a signal the watcher has not read.
                Ok(fd) => {
                    let _ = rustix::io::write(&fd, b"+");
                }
                // Nobody reads it: its watcher has gone.
                Err(rustix::io::Errno::NXIO) => {
                    let _ = std::fs::remove_file(&path);
                }
                Err(_) => {}
            }
        }
    }

    pub fn watch(root: &Path, notify: Notify) -> io::Result<()> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let folder = root.join(FOLDER);
        std::fs::create_dir_all(&folder)?;
        let path = folder.join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        rustix::fs::mknodat(CWD, &path, FileType::Fifo, Mode::from_raw_mode(0o600), 0)?;
        // Read and write: the open does not wait for a writer, and reads block rather than
        // end when the last writer closes.
        let mut pipe = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)?;
        std::thread::Builder::new()
            .name("virtual-arrivals".into())
            .spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n > 0 {
                        notify();
                    }
                }
            })?;
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    #[test]
    fn every_watcher_hears_a_change_and_a_gone_one_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        for id in 0..2 {
            let tx = std::sync::Mutex::new(tx.clone());
            assert!(watch(
                dir.path(),
                Arc::new(move || {
                    let _ = tx.lock().unwrap().send(id);
                })
            ));
        }
        announce(dir.path());
        let mut heard = [
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        ];
        heard.sort();
        assert_eq!(heard, [0, 1]);
        // A pipe nobody reads is removed by the next announcement.
        let stale = dir.path().join(FOLDER).join("stale");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &stale,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        announce(dir.path());
        assert!(!stale.exists());
    }
}
