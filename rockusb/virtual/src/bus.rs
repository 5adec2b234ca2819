//! The virtual bus: which virtual boards are "plugged in", and where their folders live.
//!
//! Boards are named in `ROCKUSB_VIRTUAL` (comma-separated, e.g. `nanopi-m6` or
//! `m6-a,m6-b`) or on the command line; each lives in a folder under
//! `ROCKUSB_VIRTUAL_DIR`, by default `$XDG_STATE_HOME/rockusb/virtual` (or
//! `~/.local/state/rockusb/virtual`). A board that does not exist yet is created as a
//! NanoPi M6 powered on in MaskROM, on its own port of bus 1.

use super::{BoardConfig, VirtualBoard, VirtualHandle};
use rockusb::discovery::{
    Attachment, BoardInfo, BoardLister, Bus, BusTiming, DiscoveryError, UsbSpeed, probe_mode,
};
use rockusb::transport::Transport;
use std::io;
use std::path::{Path, PathBuf};

pub const ENV_BOARDS: &str = "ROCKUSB_VIRTUAL";
pub const ENV_DIR: &str = "ROCKUSB_VIRTUAL_DIR";

#[derive(Debug, Clone)]
pub struct VirtualBus {
    root: PathBuf,
    names: Vec<String>,
}

impl VirtualBus {
    pub fn new(root: PathBuf, names: Vec<String>) -> Self {
        VirtualBus { root, names }
    }

    /// The bus the environment describes, or `None` when `ROCKUSB_VIRTUAL` is unset.
    pub fn from_env() -> Option<Self> {
        let names = std::env::var(ENV_BOARDS).ok()?;
        Some(Self::new(default_root(), parse_names(&names)))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn board_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Opens every board on the bus, creating missing ones.
    pub fn boards(&self) -> io::Result<Vec<VirtualBoard>> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, name)| self.open_board(i, name))
            .collect()
    }

    fn open_board(&self, index: usize, name: &str) -> io::Result<VirtualBoard> {
        let port = u8::try_from(index + 1).unwrap_or(u8::MAX);
        VirtualBoard::open_or_create(&self.board_dir(name), || BoardConfig::nanopi_m6(port))
    }

    /// Opens one board by name.
    pub fn board(&self, name: &str) -> io::Result<VirtualBoard> {
        let index = self.names.iter().position(|n| n == name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no virtual board named {name:?} on the bus"),
            )
        })?;
        self.open_board(index, name)
    }
}

impl BoardLister for VirtualBus {
    /// No download delays to honour and no re-enumeration time: see [`BusTiming::VIRTUAL`].
    fn timing(&self) -> BusTiming {
        BusTiming::VIRTUAL
    }

    /// The virtual BootROM checks only the areas' framing and CRC, so the labelled
    /// stand-in loader stands in for the rkbin loaders that cannot ship.
    fn accepts_standin_loader(&self) -> bool {
        true
    }

    fn scan(&self) -> Result<Vec<BoardInfo>, DiscoveryError> {
        let mut found = Vec::new();
        for (board, name) in self.boards()?.into_iter().zip(self.names()) {
            let Some(id) = board.identity() else {
                continue;
            };
            let Some(mut handle) = VirtualHandle::open(board) else {
                continue;
            };
            let probe = probe_mode(&mut handle);
            let at = Attachment {
                port_path: id.port_path,
                bus: id.bus,
                address: id.address,
                vid: id.vid,
                pid: id.pid,
                bcd_usb: id.bcd_usb,
                speed: if id.superspeed {
                    UsbSpeed::Super
                } else {
                    UsbSpeed::High
                },
            };
            found.push(BoardInfo::new(at, probe, Some(name.clone())));
        }
        Ok(found)
    }

    /// The board's `port_superspeed` setting says what its host port can do.
    fn superspeed_port(&self, port_path: &str) -> Option<bool> {
        self.boards()
            .ok()?
            .into_iter()
            .find(|b| b.config().port_path() == port_path)
            .map(|b| b.config().port_superspeed)
    }

    fn open(&self, port_path: &str) -> Result<Box<dyn Transport>, DiscoveryError> {
        for board in self.boards()? {
            if board.config().port_path() == port_path {
                return VirtualHandle::open(board)
                    .map(|h| Box::new(h) as Box<dyn Transport>)
                    .ok_or_else(|| DiscoveryError::Gone(port_path.into()));
            }
        }
        Err(DiscoveryError::Gone(port_path.into()))
    }
}

impl From<VirtualBus> for Bus {
    fn from(bus: VirtualBus) -> Bus {
        Bus::new(bus)
    }
}

/// Splits a comma-separated list of board names.
pub fn parse_names(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Where virtual boards live unless `ROCKUSB_VIRTUAL_DIR` says otherwise.
pub fn default_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(ENV_DIR) {
        return PathBuf::from(dir);
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("rockusb").join("virtual")
}
