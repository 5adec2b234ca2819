//! The RKBOOT loader container ("BOOT" and "LDR " files made by boot_merger).
//!
//! Layout (all little-endian, packed): a 102-byte header, three tables of 57-byte
//! entries (471, 472, loader), the entry payloads, and a Rockchip CRC-32 of everything
//! before it in the last 4 bytes.
//!
//! Payloads are kept exactly as stored: 471/472 data is what goes on the wire, so it
//! must never be transformed before sending. [`Entry::decoded`] gives the plain bytes
//! when they are needed (ID block, hashes).

mod error;
mod parse;
mod write;

pub use error::{ContainerError, RawFileKind, ReadError};
pub use parse::classify_raw;

use serde::Serialize;

use crate::chip::ChipCode;
use crate::rc4::{rc4_blocks, rc4_stream};
use crate::release_time::ReleaseTime;
use crate::soc::{self, Soc};

/// Size of the fixed header.
pub const HEADER_LEN: usize = 102;
/// Size of one entry record.
pub const ENTRY_LEN: usize = 57;
/// Length of the trailing CRC.
pub const CRC_LEN: usize = 4;
/// UTF-16 code units in an entry name.
pub const NAME_UNITS: usize = 20;

/// The container flavour, from the first four bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ContainerTag {
    /// "BOOT": older SoCs; 471/472 payloads are stored RC4-scrambled.
    Boot,
    /// "LDR ": new-IDB SoCs (RK35xx, RK3506); adds UsbHead/FlashHead RKNS headers.
    Ldr,
}

impl ContainerTag {
    /// The four magic bytes.
    pub const fn magic(self) -> [u8; 4] {
        match self {
            ContainerTag::Boot => *b"BOOT",
            ContainerTag::Ldr => *b"LDR ",
        }
    }

    /// Recognises the four magic bytes.
    pub fn from_magic(magic: [u8; 4]) -> Option<Self> {
        match &magic {
            b"BOOT" => Some(ContainerTag::Boot),
            b"LDR " => Some(ContainerTag::Ldr),
            _ => None,
        }
    }
}

impl std::fmt::Display for ContainerTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContainerTag::Boot => "BOOT",
            ContainerTag::Ldr => "LDR",
        })
    }
}

/// Which table an entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum EntryKind {
    /// Sent to USB control area 0x471 (SRAM: DDR init).
    Area471,
    /// Sent to USB control area 0x472 (DRAM: usbplug / SPL).
    Area472,
    /// Written to flash as part of the ID block (FlashHead/FlashData/FlashBoot/FlashBoost).
    Loader,
}

impl EntryKind {
    /// All kinds in table order.
    pub const ALL: [EntryKind; 3] = [EntryKind::Area471, EntryKind::Area472, EntryKind::Loader];

    /// The `type` field value of an entry record.
    pub const fn type_code(self) -> u32 {
        match self {
            EntryKind::Area471 => 1,
            EntryKind::Area472 => 2,
            EntryKind::Loader => 4,
        }
    }

    /// Short label used in messages ("471", "472", "loader").
    pub const fn label(self) -> &'static str {
        match self {
            EntryKind::Area471 => "471",
            EntryKind::Area472 => "472",
            EntryKind::Loader => "loader",
        }
    }

    /// The USB control `wIndex` for maskrom areas.
    pub const fn area_index(self) -> Option<u16> {
        match self {
            EntryKind::Area471 => Some(0x0471),
            EntryKind::Area472 => Some(0x0472),
            EntryKind::Loader => None,
        }
    }
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// How an entry's payload is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PayloadEncoding {
    /// Stored plain.
    Raw,
    /// One continuous RC4 keystream over the whole payload.
    Rc4Stream,
    /// A fresh RC4 keystream for every 512-byte block.
    Rc4PerBlock,
}

/// One entry: its record fields and its payload exactly as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    /// Name up to the first NUL.
    pub name: String,
    /// The 20 UTF-16 units as stored, so a rewrite keeps any bytes after the NUL.
    pub raw_name: [u16; NAME_UNITS],
    /// Payload bytes exactly as stored in the file (including alignment padding).
    pub data: Vec<u8>,
    /// Milliseconds to wait after sending (471/472 only).
    pub delay_ms: u32,
    /// Where the payload sat in the parsed file; `None` for entries built in memory.
    pub file_offset: Option<u32>,
}

impl Entry {
    /// A new entry; `name` is truncated to 20 UTF-16 units like boot_merger does.
    pub fn new(kind: EntryKind, name: &str, data: Vec<u8>, delay_ms: u32) -> Self {
        let raw_name = encode_name(name);
        Entry {
            kind,
            name: decode_name(&raw_name),
            raw_name,
            data,
            delay_ms,
            file_offset: None,
        }
    }

    /// How this entry is stored in a container with `tag`.
    ///
    /// Loader entries are always RC4 per 512-byte block. 471/472 entries are stored
    /// raw in every "LDR " file and as one RC4 stream in every "BOOT" file, whatever
    /// the header's rc4 flag says (verified byte-exact against rkbin components).
    pub fn encoding(&self, tag: ContainerTag) -> PayloadEncoding {
        match (self.kind, tag) {
            (EntryKind::Loader, _) => PayloadEncoding::Rc4PerBlock,
            (_, ContainerTag::Ldr) => PayloadEncoding::Raw,
            (_, ContainerTag::Boot) => PayloadEncoding::Rc4Stream,
        }
    }

    /// The plain payload (RC4 removed according to [`Entry::encoding`]).
    pub fn decoded(&self, tag: ContainerTag) -> Vec<u8> {
        match self.encoding(tag) {
            PayloadEncoding::Raw => self.data.clone(),
            PayloadEncoding::Rc4Stream => rc4_stream(&self.data),
            PayloadEncoding::Rc4PerBlock => rc4_blocks(&self.data),
        }
    }

    /// Payload size as stored.
    pub fn size(&self) -> usize {
        self.data.len()
    }
}

/// Encodes a name into 20 UTF-16LE units, truncating and NUL padding.
pub fn encode_name(name: &str) -> [u16; NAME_UNITS] {
    let mut raw = [0u16; NAME_UNITS];
    for (dst, unit) in raw.iter_mut().zip(name.encode_utf16()) {
        *dst = unit;
    }
    raw
}

/// Decodes stored units up to the first NUL (lossy for invalid UTF-16).
pub fn decode_name(raw: &[u16; NAME_UNITS]) -> String {
    let end = raw.iter().position(|&u| u == 0).unwrap_or(NAME_UNITS);
    String::from_utf16_lossy(&raw[..end])
}

/// The header fields that are not derived from the entry list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerHeader {
    pub tag: ContainerTag,
    /// `(major << 8) | minor` as written by boot_merger (1.11 → 0x010B).
    pub version: u32,
    pub merger_version: u32,
    pub release_time: ReleaseTime,
    pub chip: ChipCode,
    /// 'S' (0x53) when signed.
    pub sign_flag: u8,
    /// Non-zero means "RC4 disabled" (ini `RC4_OFF`); it governs how the ID block is
    /// written to flash, not how 471/472 payloads are stored.
    pub rc4_flag: u8,
    /// Bytes 45..102. Byte 45 is boot_merger's "471 RC4 off" flag (1 in every LDR
    /// file); byte 46 is 1 in RK3576 files, meaning unknown. Kept verbatim.
    pub reserved: [u8; 57],
}

impl ContainerHeader {
    /// Major version (the ini `[VERSION] MAJOR`).
    pub fn version_major(&self) -> u32 {
        self.version >> 8
    }

    /// Minor version (the ini `[VERSION] MINOR`).
    pub fn version_minor(&self) -> u32 {
        self.version & 0xff
    }

    /// True when the sign flag says the loader is signed.
    pub fn is_signed(&self) -> bool {
        self.sign_flag == b'S'
    }

    /// True when the header says RC4 is disabled for the ID block.
    pub fn rc4_disabled(&self) -> bool {
        self.rc4_flag != 0
    }
}

/// A parsed and verified loader container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoaderContainer {
    header: ContainerHeader,
    /// Entries in table order: all 471, then 472, then loader entries.
    entries: Vec<Entry>,
    /// True when the parsed file had its payloads back to back right after the
    /// entry table, in table order, so [`LoaderContainer::to_bytes`] reproduces it.
    canonical_layout: bool,
}

impl LoaderContainer {
    /// Builds a container from a header and entries (any order; they are grouped by
    /// kind, keeping relative order).
    pub fn from_parts(header: ContainerHeader, mut entries: Vec<Entry>) -> Self {
        entries.sort_by_key(|e| e.kind);
        LoaderContainer {
            header,
            entries,
            canonical_layout: true,
        }
    }

    /// Reads and verifies the loader file at `path`; the error names the file.
    pub fn read(path: &std::path::Path) -> Result<Self, ReadError> {
        let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source: std::sync::Arc::new(source),
        })?;
        Self::parse(&bytes).map_err(|source| ReadError::Invalid {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The header fields.
    pub fn header(&self) -> &ContainerHeader {
        &self.header
    }

    /// "BOOT" or "LDR ".
    pub fn tag(&self) -> ContainerTag {
        self.header.tag
    }

    /// The chip code; `Display` gives e.g. "RK3588".
    pub fn chip_code(&self) -> ChipCode {
        self.header.chip
    }

    /// The SoC this loader is for, if the chip code is in the table.
    pub fn soc(&self) -> Option<&'static Soc> {
        soc::by_chip_code(self.header.chip)
    }

    /// Entries of one kind, in file order.
    pub fn entries(&self, kind: EntryKind) -> impl Iterator<Item = &Entry> + '_ {
        self.entries.iter().filter(move |e| e.kind == kind)
    }

    /// All entries in table order.
    pub fn all_entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The loader entry with this name (FlashHead, FlashData, FlashBoot, FlashBoost).
    pub fn loader_entry(&self, name: &str) -> Option<&Entry> {
        self.entries(EntryKind::Loader).find(|e| e.name == name)
    }

    /// False when the parsed file had gaps or reordered payloads, so writing it back
    /// gives a normalised (still valid) file rather than the identical bytes.
    pub fn has_canonical_layout(&self) -> bool {
        self.canonical_layout
    }
}
