//! An optional model of a USB 2.0 high-speed link, so benchmarks compare clients on the
//! same simulated wire. Off by default.
//!
//! Defaults: 40 MB/s of bulk payload (the practical high-speed rate; the theoretical
//! bulk peak is 53.2 MB/s) and 0.5 ms per command for CBW + CSW + the device's commit.
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
use std::time::{Duration, Instant};

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
