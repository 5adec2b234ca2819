//! Runs protocol commands over a [`Transport`]: command block out, data phase, status
//! block in, and the checks on each. This is the only place that sequences transfers.

use crate::protocol::{
    Capability, ChipInfo, CommandBlock, CommandStatus, DataDirection, FlashId, FlashInfo,
    MaskromUpload, Opcode, ProtocolError, SECTOR_SIZE, STATUS_BLOCK_LEN, Status, StorageKind,
    StorageMask,
};
use crate::protocol::{parity, transfer_size};
use crate::transport::{Transport, TransportError};

/// The largest sector count one READ_LBA/WRITE_LBA command can carry (u16 length field).
pub const MAX_SECTORS_PER_COMMAND: u32 = 65535;

pub use crate::protocol::ResetKind;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{op}: {source}")]
    Transport {
        op: &'static str,
        #[source]
        source: TransportError,
    },
    #[error("{op}: {source}")]
    Protocol {
        op: &'static str,
        #[source]
        source: ProtocolError,
    },
    #[error("{op}: the loader reported failure")]
    Failed { op: &'static str },
    #[error("{op}: the loader reported a phase error (it disagrees about the data length)")]
    PhaseError { op: &'static str },
    #[error(
        "{op}: the loader re-read what it wrote and it differs from what was sent (write \
         parity mismatch): the data was damaged on its way to the storage, or the storage \
         did not keep it"
    )]
    ParityMismatch { op: &'static str },
    #[error("{op}: this loader does not support the command (it answered {answer:?})")]
    Unsupported { op: &'static str, answer: String },
    #[error("{op}: the data phase ended early: {got} of {expected} bytes")]
    ShortData {
        op: &'static str,
        expected: usize,
        got: usize,
    },
    #[error(
        "change storage: the loader did not switch to {wanted} (it still uses {}): the board \
         has no {wanted}, or it is not detected (is the SD card or eMMC module seated?)",
        current.map_or("nothing".to_string(), |k| k.to_string())
    )]
    NotSwitched {
        wanted: StorageKind,
        current: Option<StorageKind>,
    },
}

impl CommandError {
    /// The transport error behind this one, if any.
    pub fn transport(&self) -> Option<&TransportError> {
        match self {
            CommandError::Transport { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn op_name(op: Opcode) -> &'static str {
    match op {
        Opcode::TestUnitReady => "test unit ready",
        Opcode::ReadFlashId => "read flash id",
        Opcode::ReadFlashInfo => "read flash info",
        Opcode::ReadChipInfo => "read chip info",
        Opcode::ReadCapability => "read capability",
        Opcode::ReadLba => "read LBA",
        Opcode::WriteLba => "write LBA",
        Opcode::EraseLba => "erase LBA",
        Opcode::EraseForce => "erase blocks",
        Opcode::ChangeStorage => "change storage",
        Opcode::ReadStorage => "read storage",
        Opcode::DeviceReset => "reset",
        Opcode::SwitchUsb3 => "switch to USB 3",
        _ => "command",
    }
}

/// Size of the buffer for short IN replies: a whole high-speed packet, so a loader that
/// answers with more than the reply's size (mainline U-Boot's "FAILunknown command")
/// is read rather than overflowing.
const SMALL_REPLY_BUFFER: usize = 512;

/// A rockusb command client over any transport.
pub struct Client<T: Transport> {
    transport: T,
    next_tag: u32,
}

impl<T: Transport> Client<T> {
    pub fn new(transport: T) -> Self {
        Client {
            transport,
            next_tag: 0x5250_0001,
        }
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    pub fn into_transport(self) -> T {
        self.transport
    }

    fn tag(&mut self) -> u32 {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        tag
    }

    fn send_block(&mut self, op: &'static str, cbw: &CommandBlock) -> Result<(), CommandError> {
        self.transport
            .bulk_out(&cbw.to_bytes())
            .map_err(|source| CommandError::Transport { op, source })?;
        Ok(())
    }

    fn finish(&mut self, op: &'static str, tag: u32) -> Result<(), CommandError> {
        self.finish_status(op, tag).map(|_| ())
    }

    /// Reads and checks the status block; a good one is returned for its residue.
    fn finish_status(&mut self, op: &'static str, tag: u32) -> Result<CommandStatus, CommandError> {
        let mut buf = [0u8; SMALL_REPLY_BUFFER];
        let n = self
            .transport
            .bulk_in(&mut buf)
            .map_err(|source| CommandError::Transport { op, source })?;
        let csw = CommandStatus::parse(&buf[..n], tag)
            .map_err(|source| CommandError::Protocol { op, source })?;
        match csw.status {
            Status::Good => Ok(csw),
            Status::Failed => Err(CommandError::Failed { op }),
            Status::PhaseError => Err(CommandError::PhaseError { op }),
        }
    }

    /// A command without a data phase.
    pub fn command_none(&mut self, cbw: CommandBlock) -> Result<(), CommandError> {
        let op = cbw.opcode().map_or("command", op_name);
        self.send_block(op, &cbw)?;
        self.finish(op, cbw.tag)
    }

    /// A command with a short IN reply of at most [`SMALL_REPLY_BUFFER`] bytes.
    fn command_small_in(&mut self, cbw: CommandBlock) -> Result<Vec<u8>, CommandError> {
        let op = cbw.opcode().map_or("command", op_name);
        self.send_block(op, &cbw)?;
        let mut buf = [0u8; SMALL_REPLY_BUFFER];
        let n = self
            .transport
            .bulk_in(&mut buf)
            .map_err(|source| CommandError::Transport { op, source })?;
        let reply = &buf[..n];
        // Mainline U-Boot answers opcodes it does not know with this text and no status block.
        if reply.starts_with(b"FAIL") {
            return Err(CommandError::Unsupported {
                op,
                answer: String::from_utf8_lossy(reply).into_owned(),
            });
        }
        // A loader that fails the command may skip the data and send the status block at once.
        if n == STATUS_BLOCK_LEN && reply.starts_with(b"USBS") {
            let csw = CommandStatus::parse(reply, cbw.tag)
                .map_err(|source| CommandError::Protocol { op, source })?;
            return match csw.status {
                Status::Good => Ok(Vec::new()),
                Status::Failed => Err(CommandError::Unsupported {
                    op,
                    answer: "status failed with no data".into(),
                }),
                Status::PhaseError => Err(CommandError::PhaseError { op }),
            };
        }
        let data = reply.to_vec();
        self.finish(op, cbw.tag)?;
        Ok(data)
    }

    fn small_in(&mut self, op: Opcode, len: u32, subcode: u8) -> Result<Vec<u8>, CommandError> {
        let tag = self.tag();
        let cbw = CommandBlock::new(tag, op, DataDirection::In, len).with_subcode(subcode);
        self.command_small_in(cbw)
    }

    /// Sends a command that answers with a short fixed-size reply, and parses the reply.
    fn query<R>(
        &mut self,
        op: Opcode,
        len: usize,
        parse: impl FnOnce(&[u8]) -> Result<R, ProtocolError>,
    ) -> Result<R, CommandError> {
        let bytes = self.small_in(op, len as u32, 0)?;
        parse(&bytes).map_err(|source| CommandError::Protocol {
            op: op_name(op),
            source,
        })
    }

    pub fn test_unit_ready(&mut self) -> Result<(), CommandError> {
        let tag = self.tag();
        self.command_none(CommandBlock::new(
            tag,
            Opcode::TestUnitReady,
            DataDirection::In,
            0,
        ))
    }

    /// TEST_UNIT_READY asking for the loader's large transfer buffer (CDB[1] = 0xF7):
    /// the transfer size in bytes the residue announces, or `None` when the loader
    /// answers the usual way (docs/protocol.md §9.3).
    pub fn negotiate_transfer_size(&mut self) -> Result<Option<u32>, CommandError> {
        let tag = self.tag();
        let cbw = CommandBlock::new(tag, Opcode::TestUnitReady, DataDirection::In, 0)
            .with_subcode(transfer_size::TUR_SUBCODE_BIG_TRB);
        let op = op_name(Opcode::TestUnitReady);
        self.send_block(op, &cbw)?;
        let csw = self.finish_status(op, tag)?;
        Ok(transfer_size::from_residue(csw.residue_raw))
    }

    /// Asks the loader to re-enumerate at SuperSpeed (0xBB, docs/protocol.md §9.2). The
    /// device may leave the bus before its status block arrives, which counts as success,
    /// as for a reset.
    pub fn switch_usb3(&mut self) -> Result<(), CommandError> {
        let tag = self.tag();
        match self.command_none(CommandBlock::new(
            tag,
            Opcode::SwitchUsb3,
            DataDirection::Out,
            0,
        )) {
            Err(CommandError::Transport {
                source: TransportError::Disconnected | TransportError::Timeout,
                ..
            }) => Ok(()),
            other => other,
        }
    }

    pub fn flash_id(&mut self) -> Result<FlashId, CommandError> {
        self.query(Opcode::ReadFlashId, FlashId::LEN, FlashId::parse)
    }

    pub fn flash_info(&mut self) -> Result<FlashInfo, CommandError> {
        self.query(Opcode::ReadFlashInfo, FlashInfo::LEN, FlashInfo::parse)
    }

    pub fn chip_info(&mut self) -> Result<ChipInfo, CommandError> {
        self.query(Opcode::ReadChipInfo, ChipInfo::LEN, ChipInfo::parse)
    }

    pub fn capability(&mut self) -> Result<Capability, CommandError> {
        self.query(Opcode::ReadCapability, Capability::LEN, Capability::parse)
    }

    pub fn storage(&mut self) -> Result<StorageMask, CommandError> {
        self.query(Opcode::ReadStorage, StorageMask::LEN, StorageMask::parse)
    }

    /// Switches storage and reads it back: CHANGE_STORAGE always reports success
    /// (docs/protocol.md §4.4), so only the read-back tells whether the loader switched;
    /// when it did not, the error is [`CommandError::NotSwitched`].
    pub fn change_storage(&mut self, kind: StorageKind) -> Result<StorageMask, CommandError> {
        let tag = self.tag();
        self.command_none(
            CommandBlock::new(tag, Opcode::ChangeStorage, DataDirection::Out, 0)
                .with_subcode(kind.bit()),
        )?;
        let now = self.storage()?;
        match now.current() {
            Some(current) if current == kind => Ok(now),
            current => Err(CommandError::NotSwitched {
                wanted: kind,
                current,
            }),
        }
    }

    /// Reads `buf.len() / 512` sectors from `lba` in one command.
    pub fn read_lba(&mut self, lba: u32, buf: &mut [u8]) -> Result<(), CommandError> {
        let op = op_name(Opcode::ReadLba);
        let sectors = sector_count(buf.len());
        let tag = self.tag();
        let cbw = CommandBlock::new(tag, Opcode::ReadLba, DataDirection::In, buf.len() as u32)
            .with_address(lba)
            .with_length(sectors);
        self.send_block(op, &cbw)?;
        let mut filled = 0;
        while filled < buf.len() {
            let n = self
                .transport
                .bulk_in(&mut buf[filled..])
                .map_err(|source| CommandError::Transport { op, source })?;
            // A failing loader may send its status block instead of the data.
            if filled == 0 && n == STATUS_BLOCK_LEN && buf[..4] == *b"USBS" {
                let csw = CommandStatus::parse(&buf[..n], tag)
                    .map_err(|source| CommandError::Protocol { op, source })?;
                return Err(match csw.status {
                    Status::PhaseError => CommandError::PhaseError { op },
                    _ => CommandError::Failed { op },
                });
            }
            if n == 0 {
                // A zero-length packet where data was due: the status block says why.
                self.finish(op, tag)?;
                return Err(CommandError::ShortData {
                    op,
                    expected: buf.len(),
                    got: filled,
                });
            }
            filled += n;
        }
        self.finish(op, tag)
    }

    /// Writes `data` (a whole number of sectors) at `lba` in one command.
    pub fn write_lba(&mut self, lba: u32, data: &[u8]) -> Result<(), CommandError> {
        let op = op_name(Opcode::WriteLba);
        let sectors = sector_count(data.len());
        let tag = self.tag();
        let cbw = CommandBlock::new(tag, Opcode::WriteLba, DataDirection::Out, data.len() as u32)
            .with_address(lba)
            .with_length(sectors);
        self.send_block(op, &cbw)?;
        self.transport
            .bulk_out(data)
            .map_err(|source| CommandError::Transport { op, source })?;
        self.finish(op, tag)
    }

    /// Writes `data` at `lba` in one command carrying its write parity, so the loader
    /// re-reads the sectors from the medium and fails the command when they differ
    /// (docs/protocol.md §9.1). Only for loaders whose capability has the parity bit,
    /// and at most [`parity::MAX_PARITY_SECTORS`] sectors.
    pub fn write_lba_parity(&mut self, lba: u32, data: &[u8]) -> Result<(), CommandError> {
        let op = op_name(Opcode::WriteLba);
        let sectors = sector_count(data.len());
        debug_assert!(u32::from(sectors) <= parity::MAX_PARITY_SECTORS);
        let tag = self.tag();
        let cbw = CommandBlock::new(tag, Opcode::WriteLba, DataDirection::Out, data.len() as u32)
            .with_address(lba)
            .with_length(sectors)
            .with_parity(parity::write_parity(data));
        self.send_block(op, &cbw)?;
        self.transport
            .bulk_out(data)
            .map_err(|source| CommandError::Transport { op, source })?;
        match self.finish(op, tag) {
            // Vendor U-Boot answers a parity mismatch with status 2
            // (f_mass_storage.c:1639); the length is right, so that is what 2 means here.
            Err(CommandError::PhaseError { op }) => Err(CommandError::ParityMismatch { op }),
            other => other,
        }
    }

    /// Erases `count` sectors from `lba` in one command.
    pub fn erase_lba(&mut self, lba: u32, count: u16) -> Result<(), CommandError> {
        let tag = self.tag();
        self.command_none(
            CommandBlock::new(tag, Opcode::EraseLba, DataDirection::Out, 0)
                .with_address(lba)
                .with_length(count),
        )
    }

    /// Asks the loader to reset. The device may vanish before its status block arrives,
    /// which counts as success (as rkdeveloptool does).
    pub fn reset(&mut self, kind: ResetKind) -> Result<(), CommandError> {
        let tag = self.tag();
        match self.command_none(
            CommandBlock::new(tag, Opcode::DeviceReset, DataDirection::Out, 0)
                .with_subcode(kind.subcode()),
        ) {
            Err(CommandError::Transport {
                source: TransportError::Disconnected | TransportError::Timeout,
                ..
            }) => Ok(()),
            other => other,
        }
    }

    /// Sends one MaskROM area.
    pub fn maskrom_upload(&mut self, upload: &MaskromUpload) -> Result<(), TransportError> {
        let setup = upload.setup();
        for transfer in upload.transfers() {
            self.transport.control_out(setup, transfer)?;
        }
        Ok(())
    }
}

fn sector_count(len: usize) -> u16 {
    debug_assert!(len % SECTOR_SIZE == 0, "LBA I/O must be whole sectors");
    let sectors = len / SECTOR_SIZE;
    debug_assert!(sectors <= MAX_SECTORS_PER_COMMAND as usize);
    sectors as u16
}
