//! The rockusb protocol as bytes, with no I/O: MaskROM download framing, command blocks,
//! status blocks and typed replies.
//!
//! Everything here turns an intent into bytes or bytes into a typed answer, so it is
//! tested with plain byte arrays. The [`crate::transport`] layer moves the bytes;
//! [`crate::client`] composes the two.

pub mod command;
pub mod maskrom;
pub mod parity;
pub mod read_wall;
pub mod replies;
pub mod status;
pub mod transfer_size;

pub use command::{COMMAND_BLOCK_LEN, CommandBlock, DataDirection, Opcode, ResetKind};
pub use maskrom::{Area, AreaReceiver, ControlSetup, MaskromUpload};
pub use replies::{Capability, ChipInfo, FlashId, FlashInfo, StorageKind, StorageMask};
pub use status::{CommandStatus, STATUS_BLOCK_LEN, Status};

/// Bytes in one logical sector on every storage the loaders expose.
pub const SECTOR_SIZE: usize = 512;

/// Errors in bytes received from a device.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("the status block is {got} bytes long, expected {STATUS_BLOCK_LEN}")]
    StatusLength { got: usize },
    #[error("the status block does not start with \"USBS\" (got {0:02x?})")]
    StatusSignature([u8; 4]),
    #[error("the status block answers command tag {got:08x}, but {expected:08x} was sent")]
    TagMismatch { expected: u32, got: u32 },
    #[error("the status block has an unknown status value {0}")]
    UnknownStatus(u8),
    #[error("the command block is {got} bytes long, expected {COMMAND_BLOCK_LEN}")]
    CommandLength { got: usize },
    #[error("the command block does not start with \"USBC\"")]
    CommandSignature,
    #[error("{what} reply is {got} bytes long, expected at least {expected}")]
    ShortReply {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error(
        "the flash info reply has block size {block} and page size {page}; both must be non-zero"
    )]
    InvalidFlashInfo { block: u16, page: u8 },
}
