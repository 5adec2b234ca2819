//! A transport that survives its board dropping off the bus.
//!
//! On real benches a hub, a front-panel extender or a worn cable makes a board vanish for
//! a moment and re-enumerate at a new address on the same port, its loader still running.
//! A libusb handle is then dead for good; this wrapper looks for the board again on the
//! same port path (port paths survive re-enumeration, addresses do not), checks that it is
//! still a loader, and carries on with a fresh handle. A board that comes back in MaskROM
//! was reset: its loader is gone, and that is reported as
//! [`TransportError::BackInMaskrom`] rather than papered over.

use super::{BoardMode, Bus};
use crate::protocol::ControlSetup;
use crate::transport::{Transport, TransportError};
use std::time::{Duration, Instant};

/// How long a board may take to re-enumerate after a glitch: the same allowance as a
/// loader coming up after its download (docs/protocol.md §1.3), at least 5 s.
fn reattach_timeout(bus: &Bus) -> Duration {
    bus.timing().loader_timeout.max(Duration::from_secs(5))
}

pub struct Reattaching {
    bus: Bus,
    port_path: String,
    inner: Box<dyn Transport>,
    timeout: Option<Duration>,
    /// Times the board was found again after dropping off the bus.
    pub reattached: u32,
}

impl Reattaching {
    pub fn new(bus: Bus, port_path: &str, inner: Box<dyn Transport>) -> Self {
        Reattaching {
            bus,
            port_path: port_path.to_string(),
            inner,
            timeout: None,
            reattached: 0,
        }
    }
}

impl Transport for Reattaching {
    fn control_out(&mut self, setup: ControlSetup, data: &[u8]) -> Result<usize, TransportError> {
        self.inner.control_out(setup, data)
    }

    fn bulk_out(&mut self, data: &[u8]) -> Result<usize, TransportError> {
        self.inner.bulk_out(data)
    }

    fn bulk_in(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.inner.bulk_in(buf)
    }

    fn recover(&mut self) -> Result<(), TransportError> {
        self.inner.recover()
    }

    fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
        self.inner.set_timeout(timeout);
    }

    fn reattach(&mut self) -> Result<(), TransportError> {
        let deadline = Instant::now() + reattach_timeout(&self.bus);
        let poll = self.bus.timing().loader_poll_interval;
        loop {
            let found = self.bus.scan_port(&self.port_path).ok().flatten();
            match found.map(|b| b.mode) {
                Some(BoardMode::Loader) => {
                    if let Ok(mut fresh) = self.bus.open(&self.port_path) {
                        fresh.set_timeout(self.timeout);
                        self.inner = fresh;
                        self.reattached += 1;
                        return Ok(());
                    }
                }
                Some(BoardMode::Maskrom) => return Err(TransportError::BackInMaskrom),
                // Not back yet, or still settling (busy while the old handle is released).
                Some(BoardMode::Unknown) | None => {}
            }
            if Instant::now() >= deadline {
                return Err(TransportError::Disconnected);
            }
            std::thread::sleep(poll);
        }
    }
}
