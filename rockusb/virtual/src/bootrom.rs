//! The BootROM side of MaskROM download, as the virtual board models it
//! (docs/protocol.md §2).
//!
//! - Each 0x471/0x472 area arrives as vendor control OUT transfers of ≤ 4096 bytes; a short
//!   transfer ends it and the trailing CRC-16 is checked then
//!   (docs/protocol.md §2.1, §2.3).
//! - Every chunk is ACKed; a corrupt area is silently discarded, and the BootROM then
//!   refuses further uploads until power-cycled (docs/protocol.md §2.3).
//! - A complete 0x471 area (the DDR init) makes DRAM usable; a complete 0x472 area is
//!   jumped to, and the loader re-enumerates at a new address with the same port path
//!   (docs/protocol.md §1.3).
//! - A 0x472 area sent before any 0x471 lands in uninitialised DRAM: nothing comes up and
//!   the board needs a power-cycle (modelled: DRAM works only after the DDR init,
//!   docs/protocol.md §1.3).
//! - Bulk endpoints answer nothing in MaskROM (docs/protocol.md §1.3); see
//!   [`super::loader`].

use super::VirtualBoard;
use super::state::{Mode, ReceivedArea};
use rockusb::protocol::maskrom::{AreaOutcome, MAX_TRANSFER, REQUEST, REQUEST_TYPE};
use rockusb::protocol::{Area, ControlSetup};
use rockusb::transport::TransportError;

fn io_err(e: std::io::Error) -> TransportError {
    TransportError::Other(format!("virtual board state: {e}"))
}

impl VirtualBoard {
    /// A control OUT transfer from the host holding `address`.
    pub fn control_out(
        &mut self,
        address: u8,
        setup: ControlSetup,
        data: &[u8],
    ) -> Result<usize, TransportError> {
        self.check_address(address)?;
        if self.state.mode != Mode::Maskrom {
            // Loaders do not implement the vendor download request.
            return Err(TransportError::Stall);
        }
        let Some(area) = Area::from_index(setup.index) else {
            return Err(TransportError::Stall);
        };
        if setup.request_type != REQUEST_TYPE
            || setup.request != REQUEST
            || data.len() > MAX_TRANSFER
        {
            return Err(TransportError::Stall);
        }
        if self.state.wedged {
            return Err(TransportError::Stall);
        }
        if !self.state.upload_in_progress {
            self.state.upload_in_progress = true;
            self.save().map_err(io_err)?;
        }
        if let Some(pacer) = &mut self.pacer {
            pacer.payload(data.len());
        }
        let Some(outcome) = self.receiver.push(data) else {
            return Ok(data.len());
        };
        self.state.upload_in_progress = false;
        match outcome {
            AreaOutcome::Accepted(payload) => self.accept(area, payload).map_err(io_err)?,
            AreaOutcome::BadCrc { stored, computed } => {
                self.state.wedged = true;
                self.state.last_event = format!(
                    "area {area} discarded: CRC {stored:04x?} does not match {computed:04x}; \
                     uploads refused until power-cycled"
                );
                self.save().map_err(io_err)?;
            }
        }
        Ok(data.len())
    }

    fn accept(&mut self, area: Area, payload: Vec<u8>) -> std::io::Result<()> {
        let seq = self.state.received.len();
        let file = format!("{seq:03}-{:04x}.bin", area.index());
        std::fs::create_dir_all(self.dir.join("received"))?;
        std::fs::write(self.dir.join("received").join(&file), &payload)?;
        self.state.received.push(ReceivedArea {
            area: area.index(),
            file,
            len: payload.len(),
        });
        match area {
            Area::Sram => {
                self.state.dram_ready = true;
                self.save()
            }
            Area::Dram if self.state.dram_ready => {
                self.state.storage = rockusb::protocol::StorageKind::Emmc;
                self.leave_bus(Mode::Loader, "usbplug started from the 0x472 area")
            }
            Area::Dram => {
                self.state.wedged = true;
                self.state.last_event =
                    "0x472 area sent before any 0x471 DDR init: DRAM is not initialised, \
                     nothing runs; power-cycle the board"
                        .into();
                self.save()
            }
        }
    }

    pub(crate) fn check_address(&mut self, address: u8) -> Result<(), TransportError> {
        self.refresh().map_err(io_err)?;
        self.sync_pacer();
        if self.state.mode == Mode::Off || self.state.address != address {
            Err(TransportError::Disconnected)
        } else {
            Ok(())
        }
    }
}
