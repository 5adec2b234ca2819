//! Typed replies to the information commands and the storage indices (docs/protocol.md §4).
//! Each type parses the device's bytes and can also encode them, for device models.

use super::ProtocolError;
use serde::{Deserialize, Serialize};

fn need(what: &'static str, bytes: &[u8], expected: usize) -> Result<(), ProtocolError> {
    if bytes.len() < expected {
        Err(ProtocolError::ShortReply {
            what,
            expected,
            got: bytes.len(),
        })
    } else {
        Ok(())
    }
}

/// READ_FLASH_ID: five ASCII bytes such as "EMMC ", "NAND ", "SNAND", "NOR  ".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlashId(pub [u8; 5]);

impl FlashId {
    pub const LEN: usize = 5;

    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        need("flash id", bytes, Self::LEN)?;
        let mut id = [0u8; 5];
        id.copy_from_slice(&bytes[..5]);
        Ok(FlashId(id))
    }

    /// The id as text with trailing spaces and NULs removed.
    pub fn as_text(&self) -> String {
        String::from_utf8_lossy(&self.0)
            .trim_end_matches([' ', '\0'])
            .to_string()
    }

    pub fn is_emmc(&self) -> bool {
        self.as_text() == "EMMC"
    }
}

/// READ_FLASH_INFO: 11 little-endian bytes (docs/protocol.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FlashInfo {
    /// Capacity in 512-byte sectors.
    pub sectors: u32,
    /// Erase block size in sectors.
    pub block_sectors: u16,
    /// Page size in sectors.
    pub page_sectors: u8,
    pub ecc_bits: u8,
    pub access_time: u8,
    pub manufacturer: u8,
    pub chip_select_mask: u8,
}

impl FlashInfo {
    pub const LEN: usize = 11;

    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        need("flash info", bytes, Self::LEN)?;
        let info = FlashInfo {
            sectors: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            block_sectors: u16::from_le_bytes([bytes[4], bytes[5]]),
            page_sectors: bytes[6],
            ecc_bits: bytes[7],
            access_time: bytes[8],
            manufacturer: bytes[9],
            chip_select_mask: bytes[10],
        };
        // rkdeveloptool rejects these too: a zero geometry means the loader has no storage.
        if info.block_sectors == 0 || info.page_sectors == 0 {
            return Err(ProtocolError::InvalidFlashInfo {
                block: info.block_sectors,
                page: info.page_sectors,
            });
        }
        Ok(info)
    }

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0..4].copy_from_slice(&self.sectors.to_le_bytes());
        out[4..6].copy_from_slice(&self.block_sectors.to_le_bytes());
        out[6] = self.page_sectors;
        out[7] = self.ecc_bits;
        out[8] = self.access_time;
        out[9] = self.manufacturer;
        out[10] = self.chip_select_mask;
        out
    }

    pub fn capacity_bytes(&self) -> u64 {
        u64::from(self.sectors) * 512
    }

    /// The manufacturer name from rkdeveloptool's table (index 8 from xrock).
    pub fn manufacturer_name(&self) -> &'static str {
        const NAMES: [&str; 9] = [
            "Samsung", "Toshiba", "Hynix", "Infineon", "Micron", "Renesas", "ST", "Intel",
            "SanDisk",
        ];
        NAMES
            .get(usize::from(self.manufacturer))
            .copied()
            .unwrap_or("unknown")
    }
}

/// READ_CHIP_INFO: 16 bytes; word 0 is the chip number in ASCII, first digit in the MSB,
/// so an RK3588 sends the bytes "8853".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChipInfo(pub [u8; 16]);

impl ChipInfo {
    pub const LEN: usize = 16;

    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        need("chip info", bytes, Self::LEN)?;
        let mut raw = [0u8; 16];
        raw.copy_from_slice(&bytes[..16]);
        Ok(ChipInfo(raw))
    }

    /// The chip code as printed, e.g. "3588" for the bytes "8853".
    pub fn chip_code(&self) -> String {
        self.0[..4]
            .iter()
            .rev()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
            .collect()
    }

    /// The chip name as the SoC table spells it, e.g. "RK3588".
    pub fn chip_name(&self) -> String {
        format!("RK{}", self.chip_code())
    }

    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// READ_CAPABILITY: 8 bytes of feature bits (docs/protocol.md §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability(pub [u8; 8]);

impl Capability {
    pub const LEN: usize = 8;
    const NAMES: [(usize, u8, &'static str); 13] = [
        (0, 0, "direct-lba"),
        (0, 1, "vendor-storage"),
        (0, 2, "first-4m-access"),
        (0, 3, "read-lba"),
        (0, 4, "new-vendor-storage"),
        (0, 5, "read-com-log"),
        (0, 6, "read-idb-config"),
        (0, 7, "read-secure-mode"),
        (1, 0, "new-idb"),
        (1, 1, "switch-storage"),
        (1, 2, "lba-write-parity"),
        (1, 3, "read-otp"),
        (1, 4, "switch-usb3"),
    ];

    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        need("capability", bytes, Self::LEN)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&bytes[..8]);
        Ok(Capability(raw))
    }

    fn bit(&self, byte: usize, bit: u8) -> bool {
        self.0[byte] & (1 << bit) != 0
    }

    pub fn direct_lba(&self) -> bool {
        self.bit(0, 0)
    }
    pub fn read_lba(&self) -> bool {
        self.bit(0, 3)
    }
    pub fn new_idb(&self) -> bool {
        self.bit(1, 0)
    }
    pub fn switch_storage(&self) -> bool {
        self.bit(1, 1)
    }
    /// Byte 1 bit 2: the loader checks a write-parity word in WRITE_LBA
    /// (docs/protocol.md §9.1).
    pub fn lba_write_parity(&self) -> bool {
        self.bit(1, 2)
    }
    /// Byte 1 bit 4: the loader moves to SuperSpeed on command 0xBB
    /// (docs/protocol.md §9.2).
    pub fn switch_usb3(&self) -> bool {
        self.bit(1, 4)
    }

    /// The names of the bits that are set.
    pub fn feature_names(&self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(byte, bit, _)| self.bit(*byte, *bit))
            .map(|(_, _, name)| *name)
            .collect()
    }
}

/// Storage types by their BOOT_TYPE bit index; CHANGE_STORAGE takes the index
/// (docs/protocol.md §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageKind {
    Nand,
    Emmc,
    Sd,
    Sd1,
    SpiNorLegacy,
    SpiNandLegacy,
    Ram,
    MtdNand,
    MtdSpiNand,
    SpiNor,
    Sata,
    Pcie,
    Ufs,
}

impl StorageKind {
    pub const ALL: [StorageKind; 13] = [
        StorageKind::Nand,
        StorageKind::Emmc,
        StorageKind::Sd,
        StorageKind::Sd1,
        StorageKind::SpiNorLegacy,
        StorageKind::SpiNandLegacy,
        StorageKind::Ram,
        StorageKind::MtdNand,
        StorageKind::MtdSpiNand,
        StorageKind::SpiNor,
        StorageKind::Sata,
        StorageKind::Pcie,
        StorageKind::Ufs,
    ];

    /// The bit index sent in CDB[1] of CHANGE_STORAGE and set in READ_STORAGE's mask.
    pub fn bit(self) -> u8 {
        Self::ALL
            .iter()
            .position(|k| *k == self)
            .map(|i| i as u8)
            .unwrap_or(0)
    }

    pub fn from_bit(bit: u8) -> Option<StorageKind> {
        Self::ALL.get(usize::from(bit)).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            StorageKind::Nand => "nand",
            StorageKind::Emmc => "emmc",
            StorageKind::Sd => "sd",
            StorageKind::Sd1 => "sd1",
            StorageKind::SpiNorLegacy => "spinor-legacy",
            StorageKind::SpiNandLegacy => "spinand-legacy",
            StorageKind::Ram => "ram",
            StorageKind::MtdNand => "mtd-nand",
            StorageKind::MtdSpiNand => "spinand",
            StorageKind::SpiNor => "spinor",
            StorageKind::Sata => "sata",
            StorageKind::Pcie => "nvme",
            StorageKind::Ufs => "ufs",
        }
    }

    /// SPI NOR or NAND flash: where boot images live, not partitioned disks.
    pub fn is_spi_flash(self) -> bool {
        matches!(
            self,
            StorageKind::SpiNor
                | StorageKind::SpiNorLegacy
                | StorageKind::SpiNandLegacy
                | StorageKind::MtdSpiNand
        )
    }

    pub fn from_name(name: &str) -> Option<StorageKind> {
        let name = name.to_ascii_lowercase();
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for StorageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// READ_STORAGE: a u32 little-endian one-hot mask of [`StorageKind`] bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageMask(pub u32);

impl StorageMask {
    pub const LEN: usize = 4;

    pub fn parse(bytes: &[u8]) -> Result<Self, ProtocolError> {
        need("storage", bytes, Self::LEN)?;
        Ok(StorageMask(u32::from_le_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3],
        ])))
    }

    pub fn of(kind: StorageKind) -> Self {
        StorageMask(1 << kind.bit())
    }

    pub fn kinds(&self) -> Vec<StorageKind> {
        StorageKind::ALL
            .iter()
            .copied()
            .filter(|k| self.0 & (1 << k.bit()) != 0)
            .collect()
    }

    /// The single selected storage, if exactly one bit is set.
    pub fn current(&self) -> Option<StorageKind> {
        match self.kinds().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_info_parses_a_real_rk3566_reply() {
        let info = FlashInfo::parse(&[
            0x00, 0xe0, 0xa3, 0x03, 0x00, 0x04, 0x04, 0x00, 0x28, 0x00, 0x01,
        ])
        .unwrap();
        assert_eq!(info.sectors, 0x03a3_e000);
        assert_eq!(info.block_sectors, 1024);
        assert_eq!(info.page_sectors, 4);
        assert_eq!(info.access_time, 40);
        assert_eq!(info.chip_select_mask, 1);
        assert_eq!(info.capacity_bytes(), 0x03a3_e000 * 512);
        assert_eq!(FlashInfo::parse(&info.to_bytes()).unwrap(), info);
    }

    #[test]
    fn flash_info_rejects_zero_geometry_and_short_replies() {
        let mut bytes = [0u8; 11];
        bytes[6] = 4;
        assert!(matches!(
            FlashInfo::parse(&bytes),
            Err(ProtocolError::InvalidFlashInfo { block: 0, page: 4 })
        ));
        assert!(matches!(
            FlashInfo::parse(&bytes[..10]),
            Err(ProtocolError::ShortReply { got: 10, .. })
        ));
    }

    #[test]
    fn chip_info_reads_the_reversed_code() {
        let mut raw = [0xffu8; 16];
        raw[..4].copy_from_slice(b"8853");
        let chip = ChipInfo::parse(&raw).unwrap();
        assert_eq!(chip.chip_code(), "3588");
        assert_eq!(chip.chip_name(), "RK3588");
    }

    #[test]
    fn capability_bits_of_the_rk3588_usbplug() {
        let cap = Capability::parse(&[0x3f, 0x07, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(cap.direct_lba() && cap.read_lba() && cap.new_idb() && cap.switch_storage());
        assert!(cap.lba_write_parity());
        assert!(!cap.switch_usb3());
        let uboot_usbplug = Capability::parse(&[0x15, 0x17, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(uboot_usbplug.lba_write_parity() && uboot_usbplug.switch_usb3());
        assert!(uboot_usbplug.feature_names().contains(&"switch-usb3"));
        assert_eq!(
            cap.feature_names(),
            vec![
                "direct-lba",
                "vendor-storage",
                "first-4m-access",
                "read-lba",
                "new-vendor-storage",
                "read-com-log",
                "new-idb",
                "switch-storage",
                "lba-write-parity"
            ]
        );
    }

    #[test]
    fn storage_bits_follow_boot_type() {
        assert_eq!(StorageKind::Emmc.bit(), 1);
        assert_eq!(StorageKind::Sd.bit(), 2);
        assert_eq!(StorageKind::MtdNand.bit(), 7);
        assert_eq!(StorageKind::SpiNor.bit(), 9);
        assert_eq!(StorageKind::Ufs.bit(), 12);
        assert_eq!(StorageKind::from_name("SPINOR"), Some(StorageKind::SpiNor));
        let mask = StorageMask::parse(&0x200u32.to_le_bytes()).unwrap();
        assert_eq!(mask.current(), Some(StorageKind::SpiNor));
        assert_eq!(StorageMask(0).current(), None);
    }
}
