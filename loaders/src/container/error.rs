//! Why a file was rejected as a loader container.

use thiserror::Error;

use super::EntryKind;

/// Something that is not a container but is often mistaken for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawFileKind {
    /// An RKNS (v2) ID block such as mainline U-Boot's `idbloader.img`.
    RknsIdBlock,
    /// An old (v1) ID block: RC4-scrambled sector 0 with magic 0x0FF0AA55.
    V1IdBlock,
    /// A raw AArch64/ARM binary (DDR init, usbplug or SPL) starting with a branch.
    RawSpl,
    /// A raw rkbin blob with a 4-byte "RKxx" tag (older DDR init / TPL images).
    TaggedBlob,
}

/// A loader container failed a check; the message says which and what to do.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ContainerError {
    #[error(
        "this is not a Rockchip loader container: it starts with {found:02x?} ({ascii:?}) \
         instead of \"BOOT\" or \"LDR \"; use a merged loader such as \
         rk3588_spl_loader_v1.16.113.bin or MiniLoaderAll.bin"
    )]
    BadMagic { found: [u8; 4], ascii: String },

    #[error("{}", raw_file_message(*.kind))]
    RawFile { kind: RawFileKind },

    #[error(
        "file is truncated: the container needs at least {needed} bytes but the file has \
         {actual}; download it again"
    )]
    Truncated { needed: u64, actual: u64 },

    #[error("header size field is {found}, expected 102; the file is damaged or not a loader")]
    BadHeaderSize { found: u16 },

    #[error(
        "the {kind} entry table declares {found}-byte records, expected 57; the file is \
         damaged or from an unknown tool"
    )]
    BadEntryRecordSize { kind: EntryKind, found: u8 },

    #[error(
        "the {kind} entry table ({count} records at offset {offset}) lies outside the \
         {file_len}-byte file; the file is damaged"
    )]
    EntryTableOutOfBounds {
        kind: EntryKind,
        offset: u32,
        count: u8,
        file_len: u64,
    },

    #[error("{kind} entry #{index} has record size {found}, expected 57; the file is damaged")]
    BadEntrySizeByte {
        kind: EntryKind,
        index: usize,
        found: u8,
    },

    #[error(
        "{kind} entry #{index} ({name:?}) has type {found}, expected {expected}; the entry \
         tables are damaged"
    )]
    BadEntryType {
        kind: EntryKind,
        index: usize,
        name: String,
        expected: u32,
        found: u32,
    },

    #[error(
        "entry {name:?} ({kind}) claims bytes {offset}..{end} but the payload area is \
         {area_start}..{area_end}; the file is damaged or truncated"
    )]
    EntryOutOfBounds {
        kind: EntryKind,
        name: String,
        offset: u64,
        end: u64,
        area_start: u64,
        area_end: u64,
    },

    #[error(
        "CRC-32 mismatch: the file says {expected:#010x} but its contents give {actual:#010x}; \
         the file is corrupt (a partial download or an edited file), get a fresh copy"
    )]
    CrcMismatch { expected: u32, actual: u32 },

    #[error("too many {kind} entries ({count}); the header can count at most 255")]
    TooManyEntries { kind: EntryKind, count: usize },

    #[error("the container would be {size} bytes, beyond the 4 GiB the format can address")]
    TooLarge { size: u64 },
}

fn raw_file_message(kind: RawFileKind) -> &'static str {
    match kind {
        RawFileKind::RknsIdBlock => {
            "this is a raw RKNS ID block (idbloader.img), not a loader container: it is \
             written to LBA 64 of the boot medium, not sent in maskrom. To boot the board, \
             use a merged loader (*_spl_loader_*.bin / MiniLoaderAll.bin) or send its DDR \
             init and SPL as a raw pair"
        }
        RawFileKind::V1IdBlock => {
            "this is a raw old-style (v1, RC4 sector 0) ID block, not a loader container: \
             it is written to LBA 64 of the boot medium, not sent in maskrom. To boot the \
             board, use a merged loader (*_loader_*.bin)"
        }
        RawFileKind::RawSpl => {
            "this is a raw SPL/DDR-init/usbplug binary (it starts with an ARM branch \
             instruction), not a loader container: send it as a raw pair (DDR init to 471, \
             usbplug or SPL to 472), or build a container from it with an RKBOOT ini, or \
             use a merged *_spl_loader_*.bin"
        }
        RawFileKind::TaggedBlob => {
            "this is a raw rkbin blob (it starts with an \"RK..\" tag), not a loader \
             container: send it as a raw pair or build a container from it with an RKBOOT ini"
        }
    }
}

/// A loader file could not be read or is not a valid container.
#[derive(Debug, Error, Clone)]
pub enum ReadError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    #[error("{}: {source}", path.display())]
    Invalid {
        path: std::path::PathBuf,
        #[source]
        source: ContainerError,
    },
}
