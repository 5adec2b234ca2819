//! The loader side of the bulk protocol, as the virtual board models it after a usbplug
//! upload. Three personalities (docs/protocol.md §5, §9):
//!
//! - **usbplug** (vendor U-Boot f_rockusb + f_mass_storage, the rkbin RK3588 usbplug): the
//!   full command set; unknown opcodes get a zero-length packet where data was expected and
//!   status 1; a host length shorter than the reply is a phase error (status 2); the
//!   residue carries the reply length big-endian, as measured on the RK3588 usbplug
//!   (docs/protocol.md §3.2), so hosts must not trust it.
//! - **mainline U-Boot** (`drivers/usb/gadget/f_rockusb.c`): TEST_UNIT_READY (residue =
//!   host length), READ_FLASH_ID ("EMMC "), READ_CHIP_INFO, READ/WRITE/ERASE_LBA, RESET;
//!   the other opcodes in its table get status 1 with residue 0; opcodes outside its table
//!   get "FAILunknown command" on bulk-IN and no status block. Residues are big-endian.
//!
//! - **U-Boot-built usbplug**: the usbplug personality with what vendor U-Boot's source
//!   adds (docs/protocol.md §9): capability `15 17` (write parity and the USB 3 switch),
//!   0xBB re-enumerating at SuperSpeed once its status block is read, TEST_UNIT_READY
//!   answering `shift << 24` in the residue (10 after CDB[1] = 0xF7, 3 on SPI-NOR, 6
//!   otherwise), and little-endian residues.
//!
//! Write parity, on both usbplugs (the rkbin one reports it; its closed code is modelled on
//! vendor U-Boot's `rkusb_do_check_parity`): a WRITE_LBA whose 13-byte CDB carries a
//! non-zero parity word is written, re-read from the medium and summed; a mismatch answers
//! status 2. The re-read buffer is 1 MiB with no length check in the source, so a parity
//! write over 2048 sectors is answered with status 1 here (what the real loader does then
//! is undefined). Mainline U-Boot reads only a 10-byte CDB and ignores the word.
//!
//! Common to all: a command block that is not 31 bytes or lacks "USBC" is dropped and
//! bulk-OUT is ignored until the host recovers the endpoint (docs/protocol.md §5.1); reset
//! happens after the status block has been read (docs/protocol.md §4.6); reads that fail or
//! reach past the end of the storage report status 1.

use super::state::Mode;
use super::{Personality, VirtualBoard};
use crate::faults::{Direction, FaultKind};
use rockusb::protocol::parity::{self, MAX_PARITY_SECTORS};
use rockusb::protocol::{
    COMMAND_BLOCK_LEN, Capability, CommandBlock, CommandStatus, DataDirection, FlashInfo, Opcode,
    ResetKind, SECTOR_SIZE, Status, StorageKind, StorageMask,
};
use rockusb::protocol::{read_wall, transfer_size};
use rockusb::transport::TransportError;
use std::collections::VecDeque;

/// USB 2.0 high-speed bulk max packet size.
const MAX_PACKET: usize = 512;

#[derive(Debug)]
enum InItem {
    Bytes(Vec<u8>),
    Storage {
        kind: StorageKind,
        offset: u64,
        remaining: u64,
    },
    Fill {
        byte: u8,
        remaining: u64,
    },
}

#[derive(Debug, Default)]
enum Phase {
    #[default]
    Command,
    /// Receiving a WRITE_LBA data phase, written through to storage as it arrives.
    Receiving {
        tag: u32,
        kind: StorageKind,
        offset: u64,
        remaining: u64,
        /// The command is refused (e.g. past the end); its data is drained and dropped.
        refused: bool,
        /// The parity check to run once the data is on the medium.
        parity: Option<ParityCheck>,
        /// A `medium` fault: the byte at this storage offset is stored changed.
        damage_at: Option<u64>,
    },
}

/// A write-parity check pending on a WRITE_LBA's data (docs/protocol.md §9.1).
#[derive(Debug, Clone, Copy)]
struct ParityCheck {
    expected: u32,
    start: u64,
    len: u64,
}

/// Per-connection bulk state: not persisted (a new process starts a new connection).
#[derive(Debug, Default)]
pub struct BulkEngine {
    phase: Phase,
    queue: VecDeque<InItem>,
    /// A malformed command block was dropped; bulk-OUT is ignored until recovery.
    ignoring_out: bool,
    /// A reset requested by the last command, done once its status block is read.
    pending_reset: Option<u8>,
    /// Set when the status block that precedes a reset has been queued.
    status_queued_before_reset: bool,
    /// A USB 3 switch requested by the last command, done once its status block is read.
    pending_usb3: bool,
    /// The write being received is acknowledged but never reaches the medium (a `lost`
    /// fault).
    losing_data: bool,
}

fn io_err(e: std::io::Error) -> TransportError {
    TransportError::Other(format!("virtual board storage: {e}"))
}

impl VirtualBoard {
    /// A bulk OUT transfer (a command block or a data phase).
    pub fn bulk_out(&mut self, address: u8, data: &[u8]) -> Result<usize, TransportError> {
        self.check_address(address)?;
        if self.state.mode == Mode::Maskrom || self.engine.ignoring_out {
            // The BootROM's bulk endpoints never answer; a wedged endpoint NAKs forever.
            return Err(TransportError::Timeout);
        }
        if let Some(pacer) = &mut self.pacer {
            pacer.payload(data.len());
        }
        match std::mem::take(&mut self.engine.phase) {
            Phase::Command => self.receive_command(data)?,
            Phase::Receiving {
                tag,
                kind,
                offset,
                remaining,
                refused,
                parity,
                damage_at,
            } => {
                let take = (data.len() as u64).min(remaining);
                if !refused && !self.engine.losing_data {
                    let chunk = &data[..take as usize];
                    let damaged;
                    let chunk = match damage_at.filter(|at| (offset..offset + take).contains(at)) {
                        Some(at) => {
                            let mut copy = chunk.to_vec();
                            copy[(at - offset) as usize] ^= 0x01;
                            damaged = copy;
                            &damaged[..]
                        }
                        None => chunk,
                    };
                    self.store(kind)
                        .map_err(io_err)?
                        .write_at(offset, chunk)
                        .map_err(io_err)?;
                }
                let remaining = remaining - take;
                if remaining == 0 {
                    self.engine.losing_data = false;
                    let status = match parity {
                        _ if refused => Status::Failed,
                        Some(check) => self.check_parity(kind, check)?,
                        None => Status::Good,
                    };
                    self.queue_status(tag, 0, status);
                } else {
                    self.engine.phase = Phase::Receiving {
                        tag,
                        kind,
                        offset: offset + take,
                        remaining,
                        refused,
                        parity,
                        damage_at,
                    };
                }
            }
        }
        Ok(data.len())
    }

    /// A bulk IN transfer into `buf` (a data phase or a status block).
    pub fn bulk_in(&mut self, address: u8, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.check_address(address)?;
        if self.state.mode == Mode::Maskrom {
            return Err(TransportError::Timeout);
        }
        let Some(item) = self.engine.queue.front_mut() else {
            return Err(TransportError::Timeout);
        };
        // A host buffer that is not a whole number of packets overflows on a longer reply.
        let may_split = buf.len() % MAX_PACKET == 0;
        let n = match item {
            InItem::Bytes(bytes) => {
                if bytes.len() > buf.len() && !may_split {
                    self.engine.queue.pop_front();
                    return Err(TransportError::Overflow);
                }
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                bytes.drain(..n);
                n
            }
            InItem::Storage {
                kind,
                offset,
                remaining,
            } => {
                let n = (*remaining).min(buf.len() as u64) as usize;
                let (k, off) = (*kind, *offset);
                *offset += n as u64;
                *remaining -= n as u64;
                self.store(k)
                    .map_err(io_err)?
                    .read_at(off, &mut buf[..n])
                    .map_err(io_err)?;
                n
            }
            InItem::Fill { byte, remaining } => {
                let n = (*remaining).min(buf.len() as u64) as usize;
                buf[..n].fill(*byte);
                *remaining -= n as u64;
                n
            }
        };
        let done = match self.engine.queue.front() {
            Some(InItem::Bytes(b)) => b.is_empty(),
            Some(InItem::Storage { remaining, .. }) | Some(InItem::Fill { remaining, .. }) => {
                *remaining == 0
            }
            None => true,
        };
        if done {
            self.engine.queue.pop_front();
        }
        if let Some(pacer) = &mut self.pacer {
            pacer.payload(n);
        }
        if self.engine.queue.is_empty() && self.engine.status_queued_before_reset {
            if let Some(kind) = self.engine.pending_reset.take() {
                self.engine.status_queued_before_reset = false;
                self.perform_reset(kind).map_err(io_err)?;
            }
        }
        if self.engine.queue.is_empty() && self.engine.pending_usb3 {
            self.engine.pending_usb3 = false;
            self.switch_usb3().map_err(io_err)?;
        }
        Ok(n)
    }

    /// Clears a stalled or ignored endpoint, as a host's clear-halt or device reset does.
    pub fn recover(&mut self, address: u8) -> Result<(), TransportError> {
        self.check_address(address)?;
        self.engine = Default::default();
        Ok(())
    }

    fn receive_command(&mut self, data: &[u8]) -> Result<(), TransportError> {
        let cbw = match CommandBlock::parse(data) {
            Ok(cbw) if data.len() == COMMAND_BLOCK_LEN => cbw,
            _ => {
                self.engine.ignoring_out = true;
                return Ok(());
            }
        };
        if let Some(pacer) = &mut self.pacer {
            pacer.command();
        }
        let direction = match cbw.opcode() {
            Some(Opcode::ReadLba) => Some(Direction::Read),
            Some(Opcode::WriteLba) => Some(Direction::Write),
            _ => None,
        };
        let fault = direction.and_then(|d| {
            let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
            faults.next_command(d)
        });
        if let Some(kind) = fault {
            crate::faults::log(&self.dir, kind, cbw.address());
        }
        match fault {
            // The board drops off the bus mid-command and re-enumerates on the same port:
            // this handle is stale, as a libusb handle would be.
            Some(FaultKind::Disconnect) => {
                self.leave_bus(Mode::Loader, "disconnected mid-command (fault injected)")
                    .map_err(io_err)?;
                return Err(TransportError::Disconnected);
            }
            Some(FaultKind::Maskrom) => {
                self.power_cycle().map_err(io_err)?;
                self.state.last_event = "reset into MaskROM mid-command (fault injected)".into();
                self.save().map_err(io_err)?;
                return Err(TransportError::Disconnected);
            }
            // The command is lost: the endpoint NAKs until the host recovers it.
            Some(FaultKind::Timeout) => {
                self.engine.ignoring_out = true;
                return Ok(());
            }
            Some(FaultKind::Stall) => return Err(TransportError::Stall),
            // The eMMC takes its time (garbage collection, a worn card): the command is
            // answered late, within the host's timeout.
            Some(FaultKind::Slow) => std::thread::sleep(crate::faults::SLOW_COMMAND),
            _ => {}
        }
        match self.config.personality {
            Personality::Usbplug | Personality::UbootUsbplug => self.usbplug_command(&cbw)?,
            Personality::MainlineUboot => self.mainline_command(&cbw)?,
        }
        self.apply_data_fault(fault);
        Ok(())
    }

    /// Re-reads a parity write from the medium and compares sums, as vendor U-Boot's
    /// `rkusb_do_check_parity` does.
    fn check_parity(
        &mut self,
        kind: StorageKind,
        check: ParityCheck,
    ) -> Result<Status, TransportError> {
        if check.len > u64::from(MAX_PARITY_SECTORS) * SECTOR_SIZE as u64 {
            return Ok(Status::Failed);
        }
        let mut reread = vec![0u8; check.len as usize];
        self.store(kind)
            .map_err(io_err)?
            .read_at(check.start, &mut reread)
            .map_err(io_err)?;
        if let Some(pacer) = &mut self.pacer {
            pacer.medium_read(reread.len());
        }
        Ok(if parity::write_parity(&reread) == check.expected {
            Status::Good
        } else {
            Status::PhaseError
        })
    }

    /// Whether this loader checks write parity.
    fn checks_parity(&self) -> bool {
        matches!(
            self.config.personality,
            Personality::Usbplug | Personality::UbootUsbplug
        )
    }

    /// A failed write stores nothing and says so; a corrupted read delivers its data with
    /// one byte changed; a damaged write stores its middle byte changed.
    fn apply_data_fault(&mut self, fault: Option<FaultKind>) {
        match fault {
            Some(FaultKind::Medium) => {
                if let Phase::Receiving {
                    offset,
                    remaining,
                    damage_at,
                    ..
                } = &mut self.engine.phase
                {
                    *damage_at = Some(*offset + *remaining / 2);
                }
            }
            Some(FaultKind::Failed) => {
                if let Phase::Receiving { refused, .. } = &mut self.engine.phase {
                    *refused = true;
                }
            }
            Some(FaultKind::Lost) => {
                self.engine.losing_data = matches!(self.engine.phase, Phase::Receiving { .. });
            }
            Some(FaultKind::Corrupt) => {
                if let Some(&InItem::Storage {
                    kind,
                    offset,
                    remaining,
                }) = self.engine.queue.front()
                {
                    let mut bytes = vec![0u8; remaining as usize];
                    if self
                        .store(kind)
                        .and_then(|s| s.read_at(offset, &mut bytes))
                        .is_ok()
                    {
                        let middle = bytes.len() / 2;
                        if let Some(b) = bytes.get_mut(middle) {
                            *b ^= 0x01;
                        }
                        self.engine.queue[0] = InItem::Bytes(bytes);
                    }
                }
            }
            _ => {}
        }
    }

    fn queue_status(&mut self, tag: u32, residue: u32, status: Status) {
        // The rkbin usbplug was seen with big-endian residues and mainline U-Boot writes
        // them so; vendor U-Boot's source writes them little-endian (docs/protocol.md §3.2).
        let raw = match self.config.personality {
            Personality::UbootUsbplug => residue.to_le_bytes(),
            Personality::Usbplug | Personality::MainlineUboot => residue.to_be_bytes(),
        };
        self.queue_status_raw(tag, raw, status);
    }

    fn queue_status_raw(&mut self, tag: u32, residue_raw: [u8; 4], status: Status) {
        let csw = CommandStatus::new(tag, residue_raw, status);
        self.engine
            .queue
            .push_back(InItem::Bytes(csw.to_bytes().to_vec()));
        if self.engine.pending_reset.is_some() {
            self.engine.status_queued_before_reset = true;
        }
    }

    /// Replies with `data`, as vendor f_mass_storage does: a host length shorter than
    /// the reply is a phase error.
    fn reply(&mut self, cbw: &CommandBlock, data: &[u8]) {
        let host_len = cbw.transfer_length as usize;
        if cbw.direction != DataDirection::In || host_len < data.len() {
            let n = host_len.min(data.len());
            if cbw.direction == DataDirection::In {
                self.engine
                    .queue
                    .push_back(InItem::Bytes(data[..n].to_vec()));
            }
            self.queue_status(cbw.tag, 0, Status::PhaseError);
            return;
        }
        self.engine.queue.push_back(InItem::Bytes(data.to_vec()));
        let residue = match self.config.personality {
            Personality::Usbplug => data.len() as u32,
            Personality::UbootUsbplug | Personality::MainlineUboot => 0,
        };
        self.queue_status(cbw.tag, residue, Status::Good);
    }

    fn current_storage(&self) -> StorageKind {
        match self.config.personality {
            Personality::Usbplug | Personality::UbootUsbplug => self.state.storage,
            // Mainline's rockusb command is bound to one device (`rockusb 0 mmc 0`).
            Personality::MainlineUboot => StorageKind::Emmc,
        }
    }

    fn capacity_sectors(&self) -> u64 {
        self.storage_len(self.current_storage()).unwrap_or(0) / SECTOR_SIZE as u64
    }

    fn flash_info(&self) -> FlashInfo {
        let kind = self.current_storage();
        FlashInfo {
            sectors: self.capacity_sectors().min(u64::from(u32::MAX)) as u32,
            // Vendor U-Boot reports 1024-sector blocks, 0x80 for SPI-NOR
            // (docs/protocol.md §4.1).
            block_sectors: if kind == StorageKind::SpiNor {
                0x80
            } else {
                1024
            },
            page_sectors: 4,
            ecc_bits: 0,
            access_time: 40,
            manufacturer: 0,
            chip_select_mask: u8::from(self.capacity_sectors() > 0),
        }
    }

    fn flash_id(&self) -> [u8; 5] {
        match self.current_storage() {
            StorageKind::SpiNor => *b"NOR  ",
            _ => *b"EMMC ",
        }
    }

    fn usbplug_command(&mut self, cbw: &CommandBlock) -> Result<(), TransportError> {
        let Some(op) = cbw.opcode() else {
            self.unsupported(cbw);
            return Ok(());
        };
        match op {
            Opcode::TestUnitReady => self.test_unit_ready(cbw),
            Opcode::ReadFlashId => self.reply(cbw, &self.flash_id()),
            Opcode::ReadFlashInfo => {
                let info = self.flash_info().to_bytes();
                self.reply(cbw, &info)
            }
            Opcode::ReadChipInfo => {
                let chip = self.config.chip_info;
                self.reply(cbw, &chip)
            }
            Opcode::ReadCapability => {
                let cap = match self.config.personality {
                    // Vendor U-Boot on eMMC: 0x15, then 0x06 + 0x01 (new IDB) + 0x10 (USB 3
                    // capable) (docs/protocol.md §4.3).
                    Personality::UbootUsbplug => Capability([0x15, 0x17, 0, 0, 0, 0, 0, 0]),
                    // RK3588 rkbin/FriendlyELEC usbplug: 3f 07 00 00 00 00 00 00
                    // (docs/protocol.md §4.3).
                    _ => Capability([0x3f, 0x07, 0, 0, 0, 0, 0, 0]),
                };
                self.reply(cbw, &cap.0)
            }
            Opcode::SwitchUsb3 if self.config.personality == Personality::UbootUsbplug => {
                // The switch happens once the status block has gone out, as a reset does.
                self.engine.pending_usb3 = true;
                self.queue_status(cbw.tag, 0, Status::Good)
            }
            Opcode::ReadStorage => {
                let mask = StorageMask::of(self.state.storage).0.to_le_bytes();
                self.reply(cbw, &mask)
            }
            Opcode::ChangeStorage => {
                // Always status 0; the host reads back with READ_STORAGE
                // (docs/protocol.md §4.4).
                if let Some(kind) = StorageKind::from_bit(cbw.subcode()) {
                    if self.storage_len(kind).is_some() {
                        self.state.storage = kind;
                        self.save().map_err(io_err)?;
                    }
                }
                self.queue_status(cbw.tag, 0, Status::Good)
            }
            Opcode::TestBadBlock => self.reply(cbw, &[0u8; 64]),
            Opcode::ReadLba => self.read_lba(cbw)?,
            Opcode::WriteLba => self.write_lba(cbw),
            Opcode::EraseLba => self.erase_lba(cbw)?,
            Opcode::EraseForce => {
                let block = u64::from(self.flash_info().block_sectors);
                let first = u64::from(cbw.address()) * block;
                let count = u64::from(cbw.length()) * block;
                self.erase_sectors(cbw.tag, first, count)?
            }
            Opcode::DeviceReset => self.reset_command(cbw),
            _ => self.unsupported(cbw),
        }
        Ok(())
    }

    fn mainline_command(&mut self, cbw: &CommandBlock) -> Result<(), TransportError> {
        const NOT_SUPPORTED: [u8; 19] = [
            0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0B, 0x0C, 0x16, 0x17, 0x18, 0x19, 0x1A,
            0x1C, 0x1E, 0x21, 0x22, 0x30,
        ];
        match cbw.opcode() {
            Some(Opcode::TestUnitReady) => {
                self.queue_status(cbw.tag, cbw.transfer_length, Status::Good)
            }
            Some(Opcode::ReadFlashId) => {
                self.engine
                    .queue
                    .push_back(InItem::Bytes(b"EMMC ".to_vec()));
                self.queue_status(cbw.tag, 0, Status::Good);
            }
            Some(Opcode::ReadChipInfo) => {
                self.engine
                    .queue
                    .push_back(InItem::Bytes(self.config.chip_info.to_vec()));
                self.queue_status(cbw.tag, 0, Status::Good);
            }
            Some(Opcode::ReadLba) => self.read_lba(cbw)?,
            Some(Opcode::WriteLba) => self.write_lba(cbw),
            Some(Opcode::EraseLba) => self.erase_lba(cbw)?,
            Some(Opcode::DeviceReset) => self.reset_command(cbw),
            _ if NOT_SUPPORTED.contains(&cbw.opcode_byte()) => {
                self.queue_status(cbw.tag, 0, Status::Failed)
            }
            _ => self
                .engine
                .queue
                .push_back(InItem::Bytes(b"FAILunknown command".to_vec())),
        }
        Ok(())
    }

    /// TEST_UNIT_READY: the U-Boot-built usbplug announces its transfer size in the
    /// residue, `shift << 24` (f_rockusb.c:204-215); the rkbin usbplug's answer there is
    /// unknown (its code is closed), so it answers 0, which announces nothing.
    fn test_unit_ready(&mut self, cbw: &CommandBlock) {
        if self.config.personality != Personality::UbootUsbplug {
            self.queue_status(cbw.tag, 0, Status::Good);
            return;
        }
        let shift = if self.current_storage() == StorageKind::SpiNor {
            3
        } else if cbw.subcode() == transfer_size::TUR_SUBCODE_BIG_TRB {
            10
        } else {
            6
        };
        self.queue_status_raw(
            cbw.tag,
            transfer_size::residue_for_shift(shift),
            Status::Good,
        );
    }

    fn unsupported(&mut self, cbw: &CommandBlock) {
        // Vendor f_mass_storage: sense INVALID COMMAND, a zero-length packet where data was
        // expected, then status 1 with residue = host length.
        if cbw.direction == DataDirection::In && cbw.transfer_length > 0 {
            self.engine.queue.push_back(InItem::Bytes(Vec::new()));
        }
        self.queue_status(cbw.tag, cbw.transfer_length, Status::Failed);
    }

    fn lba_range(&self, cbw: &CommandBlock) -> Option<(u64, u64)> {
        let first = u64::from(cbw.address());
        let count = u64::from(cbw.length());
        (count > 0 && first + count <= self.capacity_sectors()).then_some((first, count))
    }

    fn read_lba(&mut self, cbw: &CommandBlock) -> Result<(), TransportError> {
        let Some((first, count)) = self.lba_range(cbw) else {
            self.unsupported(cbw);
            return Ok(());
        };
        let bytes = count * SECTOR_SIZE as u64;
        if bytes != u64::from(cbw.transfer_length) {
            self.queue_status(cbw.tag, 0, Status::PhaseError);
            return Ok(());
        }
        if self.config.read_wall && read_wall::reaches_past(first + count) {
            // The whole command is filled, even its sectors below the wall
            // (docs/protocol.md §6.1).
            self.engine.queue.push_back(InItem::Fill {
                byte: read_wall::READ_WALL_FILL,
                remaining: bytes,
            });
        } else {
            self.engine.queue.push_back(InItem::Storage {
                kind: self.current_storage(),
                offset: first * SECTOR_SIZE as u64,
                remaining: bytes,
            });
        }
        self.queue_status(cbw.tag, 0, Status::Good);
        Ok(())
    }

    fn write_lba(&mut self, cbw: &CommandBlock) {
        let range = self.lba_range(cbw);
        let (first, refused) = match range {
            Some((first, count)) => (
                first,
                count * SECTOR_SIZE as u64 != u64::from(cbw.transfer_length),
            ),
            None => (0, true),
        };
        if cbw.transfer_length == 0 {
            self.queue_status(cbw.tag, 0, Status::Failed);
            return;
        }
        let offset = first * SECTOR_SIZE as u64;
        let parity = cbw
            .parity()
            .filter(|_| self.checks_parity())
            .map(|expected| ParityCheck {
                expected,
                start: offset,
                len: u64::from(cbw.transfer_length),
            });
        self.engine.phase = Phase::Receiving {
            tag: cbw.tag,
            kind: self.current_storage(),
            offset,
            remaining: u64::from(cbw.transfer_length),
            refused,
            parity,
            damage_at: None,
        };
    }

    fn erase_lba(&mut self, cbw: &CommandBlock) -> Result<(), TransportError> {
        // Vendor U-Boot fails when the address is past the end or the length is 0.
        let first = u64::from(cbw.address());
        let count = u64::from(cbw.length());
        self.erase_sectors(cbw.tag, first, count)
    }

    fn erase_sectors(&mut self, tag: u32, first: u64, count: u64) -> Result<(), TransportError> {
        let capacity = self.capacity_sectors();
        if count == 0 || first >= capacity {
            self.queue_status(tag, 0, Status::Failed);
            return Ok(());
        }
        let count = count.min(capacity - first);
        let kind = self.current_storage();
        self.store(kind)
            .map_err(io_err)?
            .erase(first * SECTOR_SIZE as u64, count * SECTOR_SIZE as u64)
            .map_err(io_err)?;
        self.queue_status(tag, 0, Status::Good);
        Ok(())
    }

    fn reset_command(&mut self, cbw: &CommandBlock) {
        self.engine.pending_reset = Some(cbw.subcode());
        let residue = match self.config.personality {
            Personality::Usbplug | Personality::UbootUsbplug => 0,
            Personality::MainlineUboot => cbw.transfer_length,
        };
        self.queue_status(cbw.tag, residue, Status::Good);
    }

    /// What the board does once a reset's status block has gone out
    /// (docs/protocol.md §4.6).
    fn perform_reset(&mut self, subcode: u8) -> std::io::Result<()> {
        match ResetKind::from_subcode(subcode) {
            // Vendor U-Boot writes BOOT_BROM_DOWNLOAD to the boot-mode register.
            Some(ResetKind::Maskrom) => {
                let address = self.state.address;
                self.state = super::BoardState::powered_on(address);
                self.state.last_event = "reset to MaskROM".into();
                self.leave_bus(Mode::Maskrom, "reset to MaskROM")
            }
            Some(ResetKind::PowerOff) => self.leave_bus(Mode::Off, "powered off by the host"),
            _ => {
                if self.has_bootloader()? {
                    self.leave_bus(Mode::Off, "reset: booted from eMMC (ID block at sector 64)")
                } else {
                    let address = self.state.address;
                    self.state = super::BoardState::powered_on(address);
                    self.leave_bus(
                        Mode::Maskrom,
                        "reset: no valid ID block on eMMC, the BootROM fell back to MaskROM",
                    )
                }
            }
        }
    }

    /// True if the eMMC holds an ID block (either header generation) where this SoC's
    /// BootROM looks for one (sector 64 on the RK3588).
    fn has_bootloader(&mut self) -> std::io::Result<bool> {
        let idb_lba = rockusb_loaders::soc::by_usb_pid(self.config.usb_pid)
            .map_or(64, |soc| u64::from(soc.layout.idb_lba));
        let sector = self.read_storage(StorageKind::Emmc, idb_lba * SECTOR_SIZE as u64, 512)?;
        Ok(rockusb_loaders::idblock::classify_sector(&sector).is_present())
    }
}
