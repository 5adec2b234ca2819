//! Whole jobs composed from the protocol client and a bus: boot a loader, read, write
//! and erase storage. They report progress as [`Event`]s, which the CLI turns into
//! progress bars or newline-delimited JSON.

pub mod adapt;
pub mod boot;
pub mod flash;
pub mod sector_io;
pub mod sectors;
pub mod storage_io;
pub mod usb3;

use serde::Serialize;

/// Progress and milestones of an operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// An area upload begins.
    AreaStart {
        area: String,
        name: String,
        bytes: usize,
    },
    /// An area upload ended; the loader's delay follows.
    AreaDone {
        area: String,
        name: String,
        delay_ms: u32,
    },
    /// Waiting for the loader to re-enumerate.
    WaitingForLoader { port_path: String },
    /// The loader answers at a new address.
    LoaderUp { port_path: String, address: u8 },
    /// A transfer phase begins.
    PhaseStart { phase: Phase, total_bytes: u64 },
    /// Bytes done so far in the current phase.
    Progress { phase: Phase, done_bytes: u64 },
    /// The phase finished.
    PhaseDone {
        phase: Phase,
        bytes: u64,
        seconds: f64,
    },
    /// Flash totals so far: image bytes written and zero bytes skipped (with `Progress`,
    /// whose count is the image offset reached).
    WriteTotals {
        written_bytes: u64,
        skipped_bytes: u64,
    },
    /// How a sparse flash treats one partition of the image, before the first write.
    PartitionPlan(flash::PartitionReport),
    /// The whole image was decoded before the first write and found sound.
    ImageChecked { bytes: u64, seconds: f64 },
    /// The board layout a flash is checked and planned against, and why.
    Layout {
        name: String,
        display_name: String,
        reason: String,
    },
    /// Something the user should know that is not an error.
    Warning { message: String },
}

/// A job's transfer phases, as progress events name them (`"phase": "write"` in `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Reading sectors into a file (`read`).
    Read,
    /// Writing an image or a file to the storage.
    Write,
    /// Erasing sectors.
    Erase,
    /// Reading back what was written and comparing digests.
    Verify,
    /// Saving what a flash will overwrite, before it does.
    Backup,
    /// Writing an adapted image file.
    Adapt,
    /// Decoding a compressed image to a file.
    Decompress,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Read => "read",
            Phase::Write => "write",
            Phase::Erase => "erase",
            Phase::Verify => "verify",
            Phase::Backup => "backup",
            Phase::Adapt => "adapt",
            Phase::Decompress => "decompress",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives events; a closure works.
pub trait Observer {
    fn event(&mut self, event: Event);
}

impl<F: FnMut(Event)> Observer for F {
    fn event(&mut self, event: Event) {
        self(event)
    }
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _: Event) {}
}
