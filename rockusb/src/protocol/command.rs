//! Command blocks (the 31-byte CBW of the Bulk-Only Transport) and the opcode table.
//!
//! Layout (docs/protocol.md §3.1): "USBC", tag, data length (LE), flags (0x80 = IN), LUN,
//! CDB length, then a 16-byte CDB whose address field is big-endian u32 at CDB[2..6] and
//! whose length field is big-endian u16 at CDB[7..9].

use super::ProtocolError;

pub const COMMAND_BLOCK_LEN: usize = 31;
const SIGNATURE: &[u8; 4] = b"USBC";
const FLAG_IN: u8 = 0x80;

/// Rockchip rockusb opcodes (docs/protocol.md §3.3), as sent in CDB[0].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    TestUnitReady = 0x00,
    ReadFlashId = 0x01,
    SetDeviceId = 0x02,
    TestBadBlock = 0x03,
    ReadSector = 0x04,
    WriteSector = 0x05,
    EraseNormal = 0x06,
    WriteSpare = 0x07,
    ReadSpare = 0x08,
    EraseForce = 0x0B,
    GetVersion = 0x0C,
    ReadLba = 0x14,
    WriteLba = 0x15,
    EraseSystemDisk = 0x16,
    ReadSdram = 0x17,
    WriteSdram = 0x18,
    ExecuteSdram = 0x19,
    ReadFlashInfo = 0x1A,
    ReadChipInfo = 0x1B,
    LowFormat = 0x1C,
    SetResetFlag = 0x1E,
    WriteEfuse = 0x1F,
    ReadEfuse = 0x20,
    ReadSpiFlash = 0x21,
    WriteSpiFlash = 0x22,
    WriteNewEfuse = 0x23,
    ReadNewEfuse = 0x24,
    EraseLba = 0x25,
    VendorStorageWrite = 0x26,
    VendorStorageRead = 0x27,
    ReadComLog = 0x28,
    ChangeStorage = 0x2A,
    ReadStorage = 0x2B,
    ReadOtp = 0x2C,
    Session = 0x30,
    ReadCapability = 0xAA,
    SwitchUsb3 = 0xBB,
    DeviceReset = 0xFF,
}

impl Opcode {
    /// Every opcode in docs/protocol.md §3.3, for exhaustive tests and emulation.
    pub const ALL: [Opcode; 38] = [
        Opcode::TestUnitReady,
        Opcode::ReadFlashId,
        Opcode::SetDeviceId,
        Opcode::TestBadBlock,
        Opcode::ReadSector,
        Opcode::WriteSector,
        Opcode::EraseNormal,
        Opcode::WriteSpare,
        Opcode::ReadSpare,
        Opcode::EraseForce,
        Opcode::GetVersion,
        Opcode::ReadLba,
        Opcode::WriteLba,
        Opcode::EraseSystemDisk,
        Opcode::ReadSdram,
        Opcode::WriteSdram,
        Opcode::ExecuteSdram,
        Opcode::ReadFlashInfo,
        Opcode::ReadChipInfo,
        Opcode::LowFormat,
        Opcode::SetResetFlag,
        Opcode::WriteEfuse,
        Opcode::ReadEfuse,
        Opcode::ReadSpiFlash,
        Opcode::WriteSpiFlash,
        Opcode::WriteNewEfuse,
        Opcode::ReadNewEfuse,
        Opcode::EraseLba,
        Opcode::VendorStorageWrite,
        Opcode::VendorStorageRead,
        Opcode::ReadComLog,
        Opcode::ChangeStorage,
        Opcode::ReadStorage,
        Opcode::ReadOtp,
        Opcode::Session,
        Opcode::ReadCapability,
        Opcode::SwitchUsb3,
        Opcode::DeviceReset,
    ];

    pub fn from_byte(byte: u8) -> Option<Opcode> {
        Self::ALL.iter().copied().find(|op| *op as u8 == byte)
    }

    /// The CDB length the reference host tools put in the command block
    /// (docs/protocol.md §3.3).
    pub fn cdb_len(self) -> u8 {
        use Opcode::*;
        match self {
            TestUnitReady | ReadFlashId | EraseSystemDisk | ReadFlashInfo | ReadChipInfo
            | SetResetFlag | ReadEfuse | ChangeStorage | ReadStorage | ReadOtp | ReadCapability
            | SwitchUsb3 | DeviceReset | Session | LowFormat | GetVersion | SetDeviceId
            | ReadComLog => 6,
            _ => 10,
        }
    }
}

/// Direction of a command's data phase, from the host's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirection {
    /// Device to host (flag 0x80).
    In,
    /// Host to device (flag 0x00).
    Out,
}

/// A command block: what the host sends before every command.
///
/// The opcode is kept as a raw byte so that a device model can receive and answer
/// opcodes this table does not know (docs/protocol.md §5 describes those replies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandBlock {
    pub tag: u32,
    pub transfer_length: u32,
    pub direction: DataDirection,
    pub lun: u8,
    pub cdb_len: u8,
    pub cdb: [u8; 16],
}

impl CommandBlock {
    /// A command block for `opcode` with an empty CDB apart from the opcode.
    pub fn new(tag: u32, opcode: Opcode, direction: DataDirection, transfer_length: u32) -> Self {
        let mut cdb = [0u8; 16];
        cdb[0] = opcode as u8;
        CommandBlock {
            tag,
            transfer_length,
            direction,
            lun: 0,
            cdb_len: opcode.cdb_len(),
            cdb,
        }
    }

    /// Sets CDB[1], the subcode (reset kind, storage index, test-unit mode).
    pub fn with_subcode(mut self, subcode: u8) -> Self {
        self.cdb[1] = subcode;
        self
    }

    /// Sets the big-endian address at CDB[2..6] (a sector, block or memory address).
    pub fn with_address(mut self, address: u32) -> Self {
        self.cdb[2..6].copy_from_slice(&address.to_be_bytes());
        self
    }

    /// Sets the big-endian length at CDB[7..9] (sectors or blocks).
    pub fn with_length(mut self, length: u16) -> Self {
        self.cdb[7..9].copy_from_slice(&length.to_be_bytes());
        self
    }

    /// Puts a write-parity word at CDB[9..13] and declares a 13-byte CDB, so a vendor
    /// loader re-reads the written sectors and checks them against it
    /// ([`super::parity`]).
    pub fn with_parity(mut self, parity: u32) -> Self {
        self.cdb[super::parity::PARITY_CDB_RANGE].copy_from_slice(&parity.to_le_bytes());
        self.cdb_len = self.cdb_len.max(super::parity::PARITY_CDB_LEN);
        self
    }

    /// The write-parity word, when the CDB is long enough to hold one and it is set.
    pub fn parity(&self) -> Option<u32> {
        let range = super::parity::PARITY_CDB_RANGE;
        let mut word = [0u8; 4];
        word.copy_from_slice(&self.cdb[range.clone()]);
        let parity = u32::from_le_bytes(word);
        (usize::from(self.cdb_len) >= range.end && parity != 0).then_some(parity)
    }

    pub fn opcode_byte(&self) -> u8 {
        self.cdb[0]
    }

    pub fn opcode(&self) -> Option<Opcode> {
        Opcode::from_byte(self.cdb[0])
    }

    pub fn subcode(&self) -> u8 {
        self.cdb[1]
    }

    pub fn address(&self) -> u32 {
        u32::from_be_bytes([self.cdb[2], self.cdb[3], self.cdb[4], self.cdb[5]])
    }

    pub fn length(&self) -> u16 {
        u16::from_be_bytes([self.cdb[7], self.cdb[8]])
    }

    pub fn to_bytes(&self) -> [u8; COMMAND_BLOCK_LEN] {
        let mut out = [0u8; COMMAND_BLOCK_LEN];
        out[0..4].copy_from_slice(SIGNATURE);
        out[4..8].copy_from_slice(&self.tag.to_le_bytes());
        out[8..12].copy_from_slice(&self.transfer_length.to_le_bytes());
        out[12] = match self.direction {
            DataDirection::In => FLAG_IN,
            DataDirection::Out => 0,
        };
        out[13] = self.lun;
        out[14] = self.cdb_len;
        out[15..31].copy_from_slice(&self.cdb);
        out
    }

    /// Parses a command block as a device receives it.
    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let bytes: &[u8; COMMAND_BLOCK_LEN] = bytes
            .try_into()
            .map_err(|_| ProtocolError::CommandLength { got: bytes.len() })?;
        if &bytes[0..4] != SIGNATURE {
            return Err(ProtocolError::CommandSignature);
        }
        let mut cdb = [0u8; 16];
        cdb.copy_from_slice(&bytes[15..31]);
        Ok(CommandBlock {
            tag: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            transfer_length: u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
            direction: if bytes[12] & FLAG_IN != 0 {
                DataDirection::In
            } else {
                DataDirection::Out
            },
            lun: bytes[13],
            cdb_len: bytes[14],
            cdb,
        })
    }

    /// The raw flags byte, for device models that must reject undefined flag bits.
    pub fn flags_of(bytes: &[u8; COMMAND_BLOCK_LEN]) -> u8 {
        bytes[12]
    }
}

/// What a reset command asks the loader to do: CDB[1] of DEVICE_RESET
/// (docs/protocol.md §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetKind {
    /// Restart the SoC (the BootROM then boots from storage if it finds an ID block).
    Reboot = 0,
    /// Become a USB mass-storage device.
    Msc = 1,
    PowerOff = 2,
    /// Restart into MaskROM (vendor U-Boot writes BOOT_BROM_DOWNLOAD first).
    Maskrom = 3,
    /// Drop off the bus.
    Disconnect = 4,
}

impl ResetKind {
    const ALL: [ResetKind; 5] = [
        ResetKind::Reboot,
        ResetKind::Msc,
        ResetKind::PowerOff,
        ResetKind::Maskrom,
        ResetKind::Disconnect,
    ];

    /// The CDB[1] value.
    pub fn subcode(self) -> u8 {
        self as u8
    }

    /// The reset a CDB[1] value asks for, if any.
    pub fn from_subcode(subcode: u8) -> Option<ResetKind> {
        Self::ALL.into_iter().find(|k| k.subcode() == subcode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_lba_block_bytes() {
        let cbw = CommandBlock::new(0x1234_5678, Opcode::ReadLba, DataDirection::In, 64 * 512)
            .with_address(0x0000_4000)
            .with_length(64);
        let expected: [u8; 31] = [
            b'U', b'S', b'B', b'C', 0x78, 0x56, 0x34, 0x12, // tag LE
            0x00, 0x80, 0x00, 0x00, // 32768 LE
            0x80, 0x00, 10, // IN, LUN 0, CDB length 10
            0x14, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00,
            0x40, // op, sub, addr BE, rsv, len BE
            0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(cbw.to_bytes(), expected);
    }

    #[test]
    fn every_opcode_encodes_its_byte_direction_and_cdb_length() {
        for op in Opcode::ALL {
            let dir = DataDirection::Out;
            let bytes = CommandBlock::new(7, op, dir, 0).to_bytes();
            assert_eq!(&bytes[0..4], b"USBC");
            assert_eq!(bytes[4..8], 7u32.to_le_bytes());
            assert_eq!(bytes[12], 0x00, "{op:?} OUT flag");
            assert_eq!(bytes[14], op.cdb_len(), "{op:?}");
            assert_eq!(bytes[15], op as u8, "{op:?}");
            assert!(bytes[16..].iter().all(|&b| b == 0), "{op:?} CDB tail");
            let parsed = CommandBlock::parse(&bytes).unwrap();
            assert_eq!(parsed.opcode(), Some(op));
        }
        assert_eq!(Opcode::ReadFlashInfo.cdb_len(), 6);
        assert_eq!(Opcode::ReadChipInfo.cdb_len(), 6);
        assert_eq!(Opcode::ReadCapability.cdb_len(), 6);
        assert_eq!(Opcode::ChangeStorage.cdb_len(), 6);
        assert_eq!(Opcode::WriteLba.cdb_len(), 10);
        assert_eq!(Opcode::EraseLba.cdb_len(), 10);
        assert_eq!(Opcode::EraseForce.cdb_len(), 10);
    }

    #[test]
    fn opcode_table_has_unique_bytes() {
        for (i, a) in Opcode::ALL.iter().enumerate() {
            for b in &Opcode::ALL[i + 1..] {
                assert_ne!(*a as u8, *b as u8);
            }
        }
        assert_eq!(Opcode::from_byte(0x99), None);
    }

    #[test]
    fn parity_write_block_bytes() {
        let cbw = CommandBlock::new(2, Opcode::WriteLba, DataDirection::Out, 1024)
            .with_address(0x40)
            .with_length(2)
            .with_parity(0x1234_55AA);
        let bytes = cbw.to_bytes();
        assert_eq!(bytes[14], 13, "CDB length");
        assert_eq!(&bytes[15..24], &[0x15, 0, 0, 0, 0, 0x40, 0, 0, 2]);
        assert_eq!(
            &bytes[24..28],
            &[0xAA, 0x55, 0x34, 0x12],
            "parity LE at CDB[9..13]"
        );
        assert_eq!(
            CommandBlock::parse(&bytes).unwrap().parity(),
            Some(0x1234_55AA)
        );
        // A 10-byte CDB carries no parity, whatever its bytes hold (vendor U-Boot copies
        // only bCBWCBLength bytes).
        let mut short = bytes;
        short[14] = 10;
        assert_eq!(CommandBlock::parse(&short).unwrap().parity(), None);
        let plain = CommandBlock::new(3, Opcode::WriteLba, DataDirection::Out, 512);
        assert_eq!(plain.parity(), None);
    }

    #[test]
    fn parse_round_trips_and_rejects_bad_blocks() {
        let cbw = CommandBlock::new(1, Opcode::WriteLba, DataDirection::Out, 512)
            .with_address(u32::MAX)
            .with_length(1);
        let parsed = CommandBlock::parse(&cbw.to_bytes()).unwrap();
        assert_eq!(parsed, cbw);
        assert_eq!(parsed.address(), u32::MAX);
        assert_eq!(parsed.length(), 1);
        assert_eq!(
            CommandBlock::parse(&[0u8; 30]),
            Err(ProtocolError::CommandLength { got: 30 })
        );
        let mut bad = cbw.to_bytes();
        bad[0] = b'X';
        assert_eq!(
            CommandBlock::parse(&bad),
            Err(ProtocolError::CommandSignature)
        );
    }
}
