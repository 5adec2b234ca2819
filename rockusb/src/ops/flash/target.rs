//! The storage a job acts on: making sure it is the one the user meant, its size, and the
//! write command size that suits the loader.

use crate::client::{Client, CommandError};
use crate::protocol::{SECTOR_SIZE, StorageKind};
use crate::transport::Transport;
use serde::Serialize;

/// What answers the commands, as far as it matters for flashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoaderKind {
    /// Rockchip's usbplug / vendor U-Boot rockusb: the full command set.
    Vendor,
    /// Mainline U-Boot's rockusb gadget: no READ_FLASH_INFO, CAPABILITY or storage
    /// commands (docs/protocol.md §5.2); bound to the device `rockusb 0 mmc N` named.
    MainlineUboot,
    /// No loader: a local block device or file written through the host's kernel
    /// (`flash --to`, [`crate::local`]).
    LocalDisk,
}

impl LoaderKind {
    /// Default sectors per write command.
    ///
    /// Vendor usbplug: 8192 sectors (4 MiB). At 40 MB/s a command then costs ~105 ms of
    /// payload against ~0.5 ms of fixed overhead; xrock sends 8 MiB commands to the same
    /// loaders, rkdeveloptool 64 KiB (which spends a quarter of the link on overhead).
    /// Mainline U-Boot: 2048 sectors (1 MiB): it loops over its small buffer per command,
    /// so larger commands gain nothing and risk its timeouts. A local disk: 4 MiB.
    pub fn default_command_sectors(self) -> u32 {
        match self {
            LoaderKind::Vendor => 8192,
            LoaderKind::MainlineUboot => 2048,
            // 4 MiB writes: large enough for an SD card's erase blocks, small enough for
            // progress to move steadily.
            LoaderKind::LocalDisk => 8192,
        }
    }
}

/// The chosen storage.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub storage: StorageKind,
    pub loader: LoaderKind,
    /// What READ_FLASH_ID returns, as text (e.g. "EMMC ").
    pub flash_id: String,
    /// Bytes, when the loader reports them.
    pub capacity: Option<u64>,
    /// The transfer size the loader announced when asked with TEST_UNIT_READY 0xF7
    /// (docs/protocol.md §9.3), in bytes; `None` when it does not answer that way.
    pub transfer_size: Option<u32>,
}

impl Target {
    /// Sectors per read or write command: the loader's announced transfer size where it
    /// gave one (as upgrade_tool sizes its commands), else the loader kind's default.
    pub fn command_sectors(&self) -> u32 {
        match self.transfer_size {
            Some(bytes) => (bytes / SECTOR_SIZE as u32).clamp(
                crate::ops::sector_io::MIN_COMMAND_SECTORS,
                crate::client::MAX_SECTORS_PER_COMMAND,
            ),
            None => self.loader.default_command_sectors(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("cannot ask the loader about its storage: {0}")]
    Command(CommandError),
    #[error(
        "the loader did not switch to {wanted} (it still uses {current}): the board has no {wanted}, or it is not detected (is the SD card or eMMC module seated?). Nothing was written"
    )]
    NoSuchStorage {
        wanted: StorageKind,
        current: String,
    },
    #[error(
        "this loader is mainline U-Boot's rockusb, bound to the device its `rockusb` command named; it cannot switch to {wanted}. Nothing was written; use a vendor loader (rk3588_spl_loader) to reach {wanted}"
    )]
    CannotSwitch { wanted: StorageKind },
    #[error(
        "asked to flash the eMMC, but the loader reports its storage as {flash_id:?}, not \"EMMC\": refusing to write to the wrong device. Nothing was written; check the board, or choose the storage with --storage"
    )]
    NotEmmc { flash_id: String },
}

impl From<CommandError> for TargetError {
    fn from(e: CommandError) -> Self {
        TargetError::Command(e)
    }
}

/// Selects `wanted` on the loader and reads what it reports about it.
pub fn prepare<T: Transport>(
    client: &mut Client<T>,
    wanted: StorageKind,
) -> Result<Target, TargetError> {
    let loader = match client.storage() {
        Ok(mask) => {
            if mask.current() != Some(wanted) {
                match client.change_storage(wanted) {
                    Ok(_) => {}
                    Err(CommandError::NotSwitched { wanted, current }) => {
                        return Err(TargetError::NoSuchStorage {
                            wanted,
                            current: current.map_or("nothing".to_string(), |k| k.to_string()),
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            LoaderKind::Vendor
        }
        Err(CommandError::Unsupported { .. }) => {
            if wanted != StorageKind::Emmc {
                return Err(TargetError::CannotSwitch { wanted });
            }
            LoaderKind::MainlineUboot
        }
        Err(e) => return Err(e.into()),
    };
    let flash_id = client.flash_id()?;
    if wanted == StorageKind::Emmc && !flash_id.is_emmc() {
        return Err(TargetError::NotEmmc {
            flash_id: flash_id.as_text(),
        });
    }
    let capacity = match client.flash_info() {
        Ok(info) => Some(u64::from(info.sectors) * SECTOR_SIZE as u64),
        Err(CommandError::Unsupported { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    // Asked after the storage switch: vendor U-Boot answers a smaller size for SPI-NOR.
    // A loader that fails the question simply has no answer to give.
    let transfer_size = client.negotiate_transfer_size().ok().flatten();
    Ok(Target {
        storage: wanted,
        loader,
        flash_id: flash_id.as_text(),
        capacity,
        transfer_size,
    })
}
