//! The section table of a PE/COFF image (Microsoft PE format: MS-DOS stub, COFF file
//! header, section headers), read with every offset and size checked against the file.
//!
//! A UKI is a PE executable whose sections carry the kernel (`.linux`), initrd
//! (`.initrd`), command line (`.cmdline`) and os-release (`.osrel`); only the small
//! sections are ever read, so a 100 MB UKI costs a few kilobytes of reads.

use crate::layout::ByteRange;
use crate::read_at::ReadAt;
use std::io;

/// More sections than any loader accepts (Windows stops at 96); a header claiming more
/// is damaged or hostile.
pub const MAX_SECTIONS: u16 = 96;

const SECTION_HEADER_LEN: u64 = 40;
const COFF_HEADER_LEN: u64 = 20;

#[derive(Debug, thiserror::Error)]
pub enum PeError {
    #[error("not a PE image: {0}")]
    NotPe(&'static str),
    #[error("the PE image is cut short: {0} lies beyond its end")]
    Truncated(String),
    #[error("the PE header claims {0} sections, more than the {MAX_SECTIONS} any loader accepts")]
    TooManySections(u16),
    #[error(
        "section {name} ({len} bytes) is larger than the {max} bytes this reader accepts for it"
    )]
    SectionTooLarge { name: String, len: u64, max: u64 },
    #[error("cannot read the PE image: {0}")]
    Io(#[source] io::Error),
}

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The 8-byte short name up to its first NUL (`.cmdline`); long names stay as their
    /// `/offset` reference.
    pub name: String,
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub raw_size: u32,
    pub raw_offset: u32,
}

impl Section {
    /// The section's meaningful bytes in the file: `SizeOfRawData` is padded to the file
    /// alignment, `VirtualSize` is the true length when it is set and smaller.
    pub fn data_range(&self) -> ByteRange {
        let len = match self.virtual_size {
            0 => self.raw_size,
            v => v.min(self.raw_size),
        };
        ByteRange::new(u64::from(self.raw_offset), u64::from(len))
    }
}

/// The COFF machine type and the section headers of a PE image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionTable {
    /// COFF machine (0xAA64 arm64, 0x8664 x86-64).
    pub machine: u16,
    pub sections: Vec<Section>,
    /// Length of the file the table was read from.
    pub file_len: u64,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads `buf.len()` bytes at `offset`, refusing anything past `file_len`.
fn read(
    src: &mut dyn ReadAt,
    file_len: u64,
    offset: u64,
    buf: &mut [u8],
    what: &str,
) -> Result<(), PeError> {
    let end = offset.checked_add(buf.len() as u64);
    if end.is_none_or(|end| end > file_len) {
        return Err(PeError::Truncated(format!(
            "{what} (bytes {offset}.., {} long)",
            buf.len()
        )));
    }
    src.read_exact_at(offset, buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => PeError::Truncated(what.to_string()),
        _ => PeError::Io(e),
    })
}

impl SectionTable {
    /// Parses a PE image held in memory.
    pub fn parse(image: &[u8]) -> Result<Self, PeError> {
        Self::read(&mut &image[..], image.len() as u64)
    }

    /// Reads the section table of the `file_len`-byte PE image in `src`.
    pub fn read(src: &mut dyn ReadAt, file_len: u64) -> Result<Self, PeError> {
        let mut dos = [0u8; 64];
        read(src, file_len, 0, &mut dos, "the MS-DOS header")?;
        if &dos[..2] != b"MZ" {
            return Err(PeError::NotPe("no \"MZ\" signature"));
        }
        let pe_offset = u64::from(le32(&dos, 0x3C));
        let mut coff = [0u8; 4 + COFF_HEADER_LEN as usize];
        read(src, file_len, pe_offset, &mut coff, "the COFF file header")?;
        if &coff[..4] != b"PE\0\0" {
            return Err(PeError::NotPe(
                "no \"PE\\0\\0\" signature where the MS-DOS header points",
            ));
        }
        let machine = le16(&coff, 4);
        let count = le16(&coff, 6);
        let optional_len = u64::from(le16(&coff, 20));
        if count > MAX_SECTIONS {
            return Err(PeError::TooManySections(count));
        }
        let table_offset = pe_offset + 4 + COFF_HEADER_LEN + optional_len;
        let mut table = vec![0u8; usize::from(count) * SECTION_HEADER_LEN as usize];
        read(src, file_len, table_offset, &mut table, "the section table")?;
        let sections = table
            .chunks_exact(SECTION_HEADER_LEN as usize)
            .map(|h| Section {
                name: String::from_utf8_lossy(h[..8].split(|&b| b == 0).next().unwrap_or_default())
                    .into_owned(),
                virtual_size: le32(h, 8),
                virtual_address: le32(h, 12),
                raw_size: le32(h, 16),
                raw_offset: le32(h, 20),
            })
            .collect();
        Ok(Self {
            machine,
            sections,
            file_len,
        })
    }

    pub fn find(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The bytes of the first section called `name`, if there is one; refused when longer
    /// than `max_len` (the caller's bound on what it is prepared to hold).
    pub fn read_section(
        &self,
        src: &mut dyn ReadAt,
        name: &str,
        max_len: u64,
    ) -> Result<Option<Vec<u8>>, PeError> {
        let Some(section) = self.find(name) else {
            return Ok(None);
        };
        let range = section.data_range();
        if range.len > max_len {
            return Err(PeError::SectionTooLarge {
                name: name.to_string(),
                len: range.len,
                max: max_len,
            });
        }
        let mut bytes = vec![0u8; range.len as usize];
        read(
            src,
            self.file_len,
            range.start,
            &mut bytes,
            &format!("section {name}"),
        )?;
        Ok(Some(bytes))
    }
}
