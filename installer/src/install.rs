//! The `install` step: validate everything first, then write the bootloader and the DTB.
//!
//! With `spi_boot` the bootloader is not written (U-Boot runs from the SPI-NOR, as in
//! upstream's RK3588 installers, `siderolabs/sbc-rockchip:installers/rock5b/src/main.go`).
//! With an empty mount prefix and no ESP mounted at `/boot/EFI` (a Talos 1.13 install,
//! where the overlay runs before the disk is partitioned) the DTB is left for the next
//! upgrade and the log says so.

use crate::board::{BOOTLOADER_ARTIFACT, DTB_ARTIFACT_DIR, LAYOUT};
use crate::bootloader::{self, BootloaderError};
use crate::disk::{self, DiskError, WriteOutcome};
use crate::dtb_gate::{self, DtbGateError};
use crate::dtb_install::{self, DtbInstallError};
use crate::options::{BoardOptions, OptionsError};
use crate::protocol::InstallRequest;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum InstallError {
    #[error("installDisk is empty; the host must name the disk (or image file) to install to")]
    NoInstallDisk,
    #[error("artifactsPath is empty; the host must point at the overlay's artifacts directory")]
    NoArtifactsPath,
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error("cannot read the overlay artifact {path}: {source}; is the overlay image complete?")]
    Artifact {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the overlay has no DTB {name} (in {dir}); it ships {available:?}: set the overlay option dtb to one of those"
    )]
    DtbNotShipped {
        name: &'static str,
        dir: PathBuf,
        available: Vec<String>,
    },
    #[error("{path}: {source}")]
    Bootloader {
        path: PathBuf,
        #[source]
        source: BootloaderError,
    },
    #[error("{path}: {source}")]
    Dtb {
        path: PathBuf,
        #[source]
        source: DtbGateError,
    },
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error(transparent)]
    DtbInstall(#[from] DtbInstallError),
}

/// What an install did, for the log on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// `None` when `spi_boot` left the disk alone.
    pub bootloader: Option<WriteOutcome>,
    pub bootloader_len: u64,
    pub dtb_files: Vec<PathBuf>,
    /// The ESP path that was not mounted, when the DTB was left for a later upgrade.
    pub dtb_skipped: Option<PathBuf>,
    /// What the DTB gate said of the installed tree without refusing it.
    pub dtb_warnings: Vec<String>,
}

fn read_artifact(path: &Path) -> Result<Vec<u8>, InstallError> {
    std::fs::read(path).map_err(|source| InstallError::Artifact {
        path: path.to_path_buf(),
        source,
    })
}

pub fn install(request: &InstallRequest) -> Result<InstallReport, InstallError> {
    if request.install_disk.is_empty() {
        return Err(InstallError::NoInstallDisk);
    }
    if request.artifacts_path.is_empty() {
        return Err(InstallError::NoArtifactsPath);
    }
    let options = BoardOptions::from_map(&request.extra_options.clone().unwrap_or_default())?;
    let artifacts = Path::new(&request.artifacts_path);

    // Everything is read and checked before the first byte is written, so a bad
    // artifact never leaves a half-installed disk behind.
    let image = if options.spi_boot {
        None
    } else {
        let bootloader_path = artifacts.join(BOOTLOADER_ARTIFACT);
        let image = read_artifact(&bootloader_path)?;
        bootloader::validate(&image, &LAYOUT).map_err(|source| InstallError::Bootloader {
            path: bootloader_path.clone(),
            source,
        })?;
        Some(image)
    };
    let dtb_name = options.dtb.file_name();
    let dtb_path = artifacts.join(DTB_ARTIFACT_DIR).join(dtb_name);
    let dtb_dir = artifacts.join(DTB_ARTIFACT_DIR);
    if !dtb_path.exists() && dtb_dir.is_dir() {
        let mut available: Vec<String> = std::fs::read_dir(&dtb_dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        available.sort();
        return Err(InstallError::DtbNotShipped {
            name: dtb_name,
            dir: dtb_dir,
            available,
        });
    }
    let dtb = read_artifact(&dtb_path)?;
    let accepted = dtb_gate::check(&dtb).map_err(|source| InstallError::Dtb {
        path: dtb_path.clone(),
        source,
    })?;

    let outcome = match &image {
        Some(image) => Some(disk::write_bootloader(
            Path::new(&request.install_disk),
            image,
            &LAYOUT,
        )?),
        None => None,
    };
    let dtb_skipped = dtb_install::unmounted_esp(&request.mount_prefix);
    let dtb_files = match dtb_skipped {
        Some(_) => Vec::new(),
        None => dtb_install::install_dtb(&request.mount_prefix, dtb_name, &dtb)?,
    };
    Ok(InstallReport {
        bootloader: outcome,
        bootloader_len: image.as_ref().map_or(0, |i| i.len() as u64),
        dtb_files,
        dtb_skipped,
        dtb_warnings: accepted.warnings,
    })
}
