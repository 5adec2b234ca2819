//! The UKIs in a FAT EFI system partition, where systemd-boot finds them (`EFI/Linux/*.efi`,
//! Boot Loader Specification type #2 entries). The partition is only read.

use super::UkiInfo;
use super::pe::PeError;
use crate::adapt::{SectorOverlay, fs_options};
use crate::layout::ByteRange;
use crate::read_at::{ReadAt, SeekReader};
use std::io;

/// Where systemd-boot looks for UKIs.
pub const UKI_DIR: &str = "EFI/Linux";

/// One `.efi` file in [`UKI_DIR`].
#[derive(Debug)]
pub struct FoundUki {
    /// Path in the ESP, e.g. `/EFI/Linux/talos-v1.11.5.efi`.
    pub path: String,
    pub len: u64,
    /// What it says about itself, or why it could not be read as a PE image.
    pub info: Result<UkiInfo, PeError>,
}

#[derive(Debug, thiserror::Error)]
pub enum EspReadError {
    #[error("cannot read the EFI system partition's FAT file system: {0}")]
    Fat(#[source] io::Error),
}

/// Lists the UKIs in the FAT file system at `esp` of `source`. An ESP without
/// `EFI/Linux` has none (an empty list, not an error). Nothing is written: changes the FAT
/// library might make are kept in memory and dropped.
pub fn find_ukis(source: impl ReadAt, esp: ByteRange) -> Result<Vec<FoundUki>, EspReadError> {
    let mut device = SectorOverlay::new(source, esp);
    let fs = fatfs::FileSystem::new(&mut device, fs_options()).map_err(EspReadError::Fat)?;
    let dir = match fs.root_dir().open_dir(UKI_DIR) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EspReadError::Fat(e)),
    };
    let mut found = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(EspReadError::Fat)?;
        let name = entry.file_name();
        if !entry.is_file() || !name.to_ascii_lowercase().ends_with(".efi") {
            continue;
        }
        let len = entry.len();
        let mut file = SeekReader(entry.to_file());
        found.push(FoundUki {
            path: format!("/{UKI_DIR}/{name}"),
            len,
            info: UkiInfo::read(&mut file, len),
        });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}
