//! An optional model of a USB 2.0 high-speed link, so benchmarks compare clients on the
//! same simulated wire. Off by default.
//!
//! Defaults: 40 MB/s of bulk payload (the practical high-speed rate; the theoretical
//! bulk peak is 53.2 MB/s) and 0.5 ms per command for CBW + CSW + the device's commit.

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
