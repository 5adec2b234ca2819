//! An optional model of a USB 2.0 high-speed link, so benchmarks compare clients on the
//! same simulated wire. Off by default.
//!
//! Defaults: 40 MB/s of bulk payload (the practical high-speed rate; the theoretical
//! bulk peak is 53.2 MB/s) and 0.5 ms per command for CBW + CSW + the device's commit.
//!
//! A board on its own root port has its own wire ([`LinkPacer`]). Boards behind one
//! virtual hub share one ([`HubPacer`]): the time the wire is busy until is kept in a file
//! in the hub's folder, read and advanced under a lock by every transfer of every board
//! behind it, in this process or another (the libusb shim serves each client process on
//! its own), so two boards behind a hub each get half of its 40 MB/s.
//!
//! At SuperSpeed [`LinkModel::usb3`] applies: 60 MB/s and 2 ms per command. Rockchip
//! measured writes on an RK3588 at USB 3.0 of 39.73 MB/s with 256 KiB device buffers and
//! 59.59 MB/s with 4 MiB ones (docs/protocol.md §9.2); the two figures fit a payload rate
//! of 61.6 MB/s and 2.3 ms of fixed cost per buffer, which is the loader's and the eMMC's
//! time more than the wire's. The model rounds that to 60 MB/s and 2 ms per command.
//!
//! A write the loader checks against its parity costs the device a re-read of the written
//! sectors from the medium before it answers (docs/protocol.md §9.1): paced at
//! [`MEDIUM_READ_BYTES_PER_SECOND`], an eMMC at HS200.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkModel {
    /// Payload bytes per second.
    pub bytes_per_second: f64,
    /// Fixed cost of each command, in seconds.
    pub command_overhead: f64,
}

impl Default for LinkModel {
    fn default() -> Self {
        LinkModel {
            bytes_per_second: 40e6,
            command_overhead: 0.5e-3,
        }
    }
}

/// The rate the device re-reads a parity write from its medium: HS200 eMMC moves at most
/// 200 MB/s on its 8-bit bus at 200 MHz, and reads sequentially at ~170 MB/s in practice.
pub const MEDIUM_READ_BYTES_PER_SECOND: f64 = 170e6;

impl LinkModel {
    /// The SuperSpeed model (see the module documentation for where the figures come from).
    pub fn usb3() -> Self {
        LinkModel {
            bytes_per_second: 60e6,
            command_overhead: 2e-3,
        }
    }
}

/// Paces transfers to the model's rate by sleeping off the time the wire would take.
#[derive(Debug)]
pub struct LinkPacer {
    model: LinkModel,
    /// When the simulated wire becomes free.
    busy_until: Option<Instant>,
    /// How far the last sleep overran its target (timer slack, about 0.1 ms on Linux).
    overrun: Duration,
}

impl LinkPacer {
    pub fn new(model: LinkModel) -> Self {
        LinkPacer {
            model,
            busy_until: None,
            overrun: Duration::ZERO,
        }
    }

    /// Accounts for one command's fixed overhead.
    pub fn command(&mut self) {
        self.occupy(self.model.command_overhead);
    }

    /// Accounts for the device re-reading `bytes` from its medium (a parity check).
    pub fn medium_read(&mut self, bytes: usize) {
        self.occupy(bytes as f64 / MEDIUM_READ_BYTES_PER_SECOND);
    }

    pub fn model(&self) -> LinkModel {
        self.model
    }

    /// Accounts for `bytes` of payload.
    pub fn payload(&mut self, bytes: usize) {
        self.occupy(bytes as f64 / self.model.bytes_per_second);
    }

    fn occupy(&mut self, seconds: f64) {
        let now = Instant::now();
        // The host's own time between transfers leaves the wire idle, but a sleep that
        // overran its target is the simulation's delay, not the host's: it counts as wire
        // time already spent. Otherwise every transfer is charged the timer's slack, and a
        // client that sends many small commands (rkdeveloptool: 128 sectors per command and
        // three transfers each, docs/protocol.md §3.4) pays ~0.3 ms a command the model
        // does not have, which skews the comparison the link model exists for.
        let start = match self.busy_until {
            Some(t) if t > now => t,
            _ => now.checked_sub(self.overrun).unwrap_or(now),
        };
        let until = start + Duration::from_secs_f64(seconds);
        self.busy_until = Some(until);
        if until > now {
            std::thread::sleep(until - now);
        }
        self.overrun = Instant::now().saturating_duration_since(until);
    }
}

/// A board's link: its own, or its hub's shared one.
#[derive(Debug)]
pub enum Pacer {
    Own(LinkPacer),
    Hub(HubPacer),
}

impl Pacer {
    /// The pacer of a board with this link model: shared through `hub_dir` when the board
    /// sits behind a hub.
    pub fn new(model: LinkModel, hub_dir: Option<PathBuf>) -> Self {
        match hub_dir {
            Some(dir) => Pacer::Hub(HubPacer::new(model, dir)),
            None => Pacer::Own(LinkPacer::new(model)),
        }
    }

    /// Accounts for one command's fixed overhead.
    pub fn command(&mut self) {
        match self {
            Pacer::Own(p) => p.command(),
            Pacer::Hub(p) => p.occupy(p.model.command_overhead),
        }
    }

    /// Accounts for `bytes` of payload.
    pub fn payload(&mut self, bytes: usize) {
        match self {
            Pacer::Own(p) => p.payload(bytes),
            Pacer::Hub(p) => p.occupy(bytes as f64 / p.model.bytes_per_second),
        }
    }

    /// Accounts for the device re-reading `bytes` from its medium (a parity check): the
    /// board's own time, which does not hold the hub's wire.
    pub fn medium_read(&mut self, bytes: usize) {
        match self {
            Pacer::Own(p) => p.medium_read(bytes),
            Pacer::Hub(_) => std::thread::sleep(Duration::from_secs_f64(
                bytes as f64 / MEDIUM_READ_BYTES_PER_SECOND,
            )),
        }
    }

    pub fn model(&self) -> LinkModel {
        match self {
            Pacer::Own(p) => p.model,
            Pacer::Hub(p) => p.model,
        }
    }

    /// Whether the board paces on a hub's shared wire.
    pub fn is_shared(&self) -> bool {
        matches!(self, Pacer::Hub(_))
    }
}

/// The file in a hub's folder that holds when its wire is free.
const HUB_WIRE_FILE: &str = "wire";

/// One hub's wire, shared by the boards behind it across threads and processes.
#[derive(Debug)]
pub struct HubPacer {
    model: LinkModel,
    path: PathBuf,
    /// How far this handle's last sleep overran its target (see [`LinkPacer`]).
    overrun: Duration,
}

impl HubPacer {
    pub fn new(model: LinkModel, dir: PathBuf) -> Self {
        HubPacer {
            model,
            path: dir.join(HUB_WIRE_FILE),
            overrun: Duration::ZERO,
        }
    }

    /// Books `seconds` of the wire after whatever is booked already, then sleeps until
    /// the booking ends.
    fn occupy(&mut self, seconds: f64) {
        let now = SystemTime::now();
        let booked = self.book(now, seconds);
        let until = match booked {
            Ok(until) => until,
            // Pacing is a simulation aid: a hub folder that cannot be written (a full
            // disk) falls back to pacing this board alone rather than failing its transfer.
            Err(_) => now + Duration::from_secs_f64(seconds),
        };
        if let Ok(wait) = until.duration_since(SystemTime::now()) {
            std::thread::sleep(wait);
        }
        self.overrun = SystemTime::now()
            .duration_since(until)
            .unwrap_or(Duration::ZERO);
    }

    /// Under the hub's lock: the booking's end, after the wire's current bookings.
    fn book(&self, now: SystemTime, seconds: f64) -> std::io::Result<SystemTime> {
        // Threads of one process take turns here; processes take turns on the file lock.
        static IN_PROCESS: Mutex<()> = Mutex::new(());
        let _turn = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)?;
        lock_file(&file)?;
        let busy_until = read_time(&mut file)?;
        // This handle's overrun is credited as wire time already spent (see
        // [`LinkPacer`]), but never into time another board's transfer has booked: the
        // bookings of a shared wire do not overlap.
        let credited = now.checked_sub(self.overrun).unwrap_or(now);
        let start = match busy_until {
            Some(t) => t.max(credited),
            None => credited,
        };
        let until = start + Duration::from_secs_f64(seconds);
        let nanos = until
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        file.seek(SeekFrom::Start(0))?;
        file.set_len(0)?;
        write!(file, "{nanos}")?;
        // The lock is released when the file closes.
        Ok(until)
    }
}

/// The wire's booked-until time in the file (nanoseconds since the epoch), if any.
fn read_time(file: &mut File) -> std::io::Result<Option<SystemTime>> {
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text
        .trim()
        .parse::<u64>()
        .ok()
        .map(|n| UNIX_EPOCH + Duration::from_nanos(n)))
}

/// An exclusive lock on the whole file, held until it closes (flock: per open file, so
/// it also orders threads that each open the file).
#[cfg(target_os = "linux")]
fn lock_file(file: &File) -> std::io::Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive).map_err(Into::into)
}

/// Elsewhere only the threads of one process share a hub's wire.
#[cfg(not(target_os = "linux"))]
fn lock_file(_file: &File) -> std::io::Result<()> {
    Ok(())
}

/// The folder of the hub called `hub` among the boards under `root`.
pub fn hub_dir(root: &Path, hub: &str) -> PathBuf {
    root.join(".hubs").join(hub)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two boards behind one hub, each moving 2 MB at 20 MB/s, take as long together
    /// as one moving 4 MB: they share the wire. Alone, each would take half that.
    #[test]
    fn boards_behind_a_hub_share_its_wire() {
        let dir = tempfile::tempdir().unwrap();
        let model = LinkModel {
            bytes_per_second: 20e6,
            command_overhead: 0.0,
        };
        let started = Instant::now();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let hub = dir.path().join("hub");
                std::thread::spawn(move || {
                    let mut pacer = Pacer::new(model, Some(hub));
                    for _ in 0..20 {
                        pacer.payload(100_000);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let shared = started.elapsed().as_secs_f64();
        // 4 MB at 20 MB/s: 0.2 s on one wire; 0.1 s if each had its own.
        assert!(shared >= 0.19, "two boards behind a hub took {shared} s");
        assert!(
            shared < 0.5,
            "the shared wire is far slower than its rate: {shared} s"
        );
    }
}
