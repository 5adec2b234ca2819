//! The virtual board's persistent state: which mode it is in, its USB address and what it
//! has received. Kept in a JSON file beside the storage, so the board survives from one
//! process to the next (one run sends the loader, the next writes the eMMC).

use rockusb::protocol::StorageKind;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The BootROM: only 0x471/0x472 control transfers work.
    Maskrom,
    /// A loader (usbplug or U-Boot rockusb) answers bulk commands.
    Loader,
    /// Booted from its storage or powered off: not on the USB bus.
    Off,
}

/// One complete area the BootROM accepted, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedArea {
    pub area: u16,
    pub file: String,
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardState {
    pub mode: Mode,
    /// USB device address; changes at every enumeration.
    pub address: u8,
    /// The DDR init blob ran, so DRAM is usable for a 0x472 upload.
    pub dram_ready: bool,
    /// The BootROM refuses uploads until power-cycled (a corrupt or partial upload).
    pub wedged: bool,
    /// An area upload was started and not finished.
    pub upload_in_progress: bool,
    pub received: Vec<ReceivedArea>,
    pub storage: StorageKind,
    /// Why the board left the bus or re-entered MaskROM last, for diagnostics.
    pub last_event: String,
    /// The loader runs at SuperSpeed (after the USB 3 switch); every other enumeration
    /// is at high speed.
    #[serde(default)]
    pub superspeed: bool,
}

impl BoardState {
    pub fn powered_on(address: u8) -> Self {
        BoardState {
            mode: Mode::Maskrom,
            address,
            dram_ready: false,
            wedged: false,
            upload_in_progress: false,
            received: Vec::new(),
            storage: StorageKind::Emmc,
            last_event: "powered on in MaskROM".into(),
            superspeed: false,
        }
    }

    pub fn load(path: &Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Saves atomically (write then rename), so a crash never leaves half a state file.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        save_json(path, self)
    }
}

pub(crate) fn save_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
