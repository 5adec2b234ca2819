//! Unified kernel images (UKIs): what a generic Talos image will boot, read from the PE
//! sections systemd's `ukify` puts them in.
//!
//! - [`pe`]: the bounds-checked PE/COFF section table reader.
//! - [`osrel`]: `.osrel`, the os-release text (Talos version).
//! - [`cmdline`]: `.cmdline` and what it means on the NanoPi M6 (Omni, serial console).
//! - `esp` (feature `adapt`): the UKIs in `EFI/Linux/` of a FAT EFI system partition.

pub mod cmdline;
#[cfg(feature = "adapt")]
pub mod esp;
pub mod osrel;
pub mod pe;

use crate::read_at::ReadAt;
use cmdline::CmdlineAssessment;
use osrel::OsRelease;
use pe::{PeError, SectionTable};

/// `.cmdline` and `.osrel` are a few hundred bytes; anything past this is not a UKI
/// section worth holding in memory.
pub const MAX_TEXT_SECTION_LEN: u64 = 64 * 1024;

/// What a UKI says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UkiInfo {
    /// `.cmdline`, without trailing NULs and whitespace; `None` without that section.
    pub cmdline: Option<String>,
    /// `.osrel`; `None` without that section.
    pub os_release: Option<OsRelease>,
}

impl UkiInfo {
    /// Reads the `len`-byte PE image in `src`.
    pub fn read(src: &mut dyn ReadAt, len: u64) -> Result<Self, PeError> {
        let table = SectionTable::read(src, len)?;
        let text = |bytes: Vec<u8>| {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            text.trim_end_matches(['\0', '\n', ' ']).to_string()
        };
        let cmdline = table
            .read_section(src, ".cmdline", MAX_TEXT_SECTION_LEN)?
            .map(text);
        let os_release = table
            .read_section(src, ".osrel", MAX_TEXT_SECTION_LEN)?
            .map(|b| OsRelease::parse(&text(b)));
        Ok(Self {
            cmdline,
            os_release,
        })
    }

    /// The command line's assessment; `None` without a `.cmdline` section.
    pub fn assessment(&self) -> Option<CmdlineAssessment> {
        self.cmdline.as_deref().map(CmdlineAssessment::new)
    }

    /// `VERSION_ID` from `.osrel` (e.g. `v1.11.5`).
    pub fn talos_version(&self) -> Option<&str> {
        self.os_release.as_ref()?.version_id()
    }
}

#[cfg(test)]
mod tests;
