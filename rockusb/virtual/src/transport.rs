//! A [`Transport`] into a virtual board, holding the USB address it was opened at: once
//! the board re-enumerates, the handle is stale, as a real libusb handle would be.

use super::VirtualBoard;
use rockusb::protocol::ControlSetup;
use rockusb::transport::{Transport, TransportError};

pub struct VirtualHandle {
    board: VirtualBoard,
    address: u8,
}

impl VirtualHandle {
    /// Opens a handle at the board's current address; `None` when it is not on the bus.
    pub fn open(board: VirtualBoard) -> Option<Self> {
        let address = board.identity()?.address;
        Some(VirtualHandle { board, address })
    }

    pub fn board(&self) -> &VirtualBoard {
        &self.board
    }

    pub fn board_mut(&mut self) -> &mut VirtualBoard {
        &mut self.board
    }

    pub fn into_board(self) -> VirtualBoard {
        self.board
    }
}

impl Transport for VirtualHandle {
    fn control_out(&mut self, setup: ControlSetup, data: &[u8]) -> Result<usize, TransportError> {
        self.board.control_out(self.address, setup, data)
    }

    fn bulk_out(&mut self, data: &[u8]) -> Result<usize, TransportError> {
        self.board.bulk_out(self.address, data)
    }

    fn bulk_in(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.board.bulk_in(self.address, buf)
    }

    fn recover(&mut self) -> Result<(), TransportError> {
        self.board.recover(self.address)
    }
}
