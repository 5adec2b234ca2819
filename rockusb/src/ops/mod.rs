//! Whole jobs composed from the protocol client and a bus: boot a loader, read, write
//! and erase storage. They report progress as [`Event`]s, which the CLI turns into
//! progress bars or newline-delimited JSON.

pub mod boot;
pub mod flash;
pub mod storage_io;

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
    /// A transfer phase begins (`write`, `read`, `erase`, `verify`).
    PhaseStart { phase: String, total_bytes: u64 },
    /// Bytes done so far in the current phase.
    Progress { phase: String, done_bytes: u64 },
    /// The phase finished.
    PhaseDone {
        phase: String,
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
    /// Something the user should know that is not an error.
    Warning { message: String },
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
