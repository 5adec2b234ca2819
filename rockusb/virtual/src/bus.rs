//! The virtual bus: which virtual boards are "plugged in", and where their folders live.
//!
//! Boards are named in `ROCKUSB_VIRTUAL` (comma-separated, e.g. `nanopi-m6` or
//! `m6-a,m6-b`) or on the command line; each lives in a folder under
//! `ROCKUSB_VIRTUAL_DIR`, by default `$XDG_STATE_HOME/rockusb/virtual` (or
//! `~/.local/state/rockusb/virtual`). A board that does not exist yet is created as a
//! NanoPi M6 powered on in MaskROM, on its own port of bus 1.
//!
//! A name may say which virtual hub the board sits behind: `a@hub1,b@hub1,c` puts a hub on
//! root port 1 with `a` on its port 1 (`1-1.1`) and `b` on its port 2 (`1-1.2`), and `c`
//! beside it on root port 2 (`1-2`). Root ports go to hubs and to boards without one in
//! the order they first appear. Boards behind one hub share its link: with the link model
//! on, their transfers take turns on one simulated USB 2.0 wire ([`crate::link`]).

use super::{BoardConfig, VirtualBoard, VirtualHandle};
use rockusb::discovery::{
    Attachment, BoardInfo, BoardLister, Bus, BusTiming, DiscoveryError, Notify, UsbSpeed,
    probe_mode,
};
use rockusb::transport::Transport;
use std::io;
use std::path::{Path, PathBuf};

pub const ENV_BOARDS: &str = "ROCKUSB_VIRTUAL";
pub const ENV_DIR: &str = "ROCKUSB_VIRTUAL_DIR";

#[derive(Debug, Clone)]
pub struct VirtualBus {
    root: PathBuf,
    /// Board names, without their `@HUB`.
    names: Vec<String>,
    /// Where each board sits, in the order of `names`.
    places: Vec<Place>,
}

/// Where a board sits on the virtual bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The hub it sits behind, by the name the list gives it.
    pub hub: Option<String>,
    /// Port numbers from the root hub down.
    pub ports: Vec<u8>,
}

impl VirtualBus {
    /// A bus of the boards `names` (each `NAME` or `NAME@HUB`) kept under `root`.
    pub fn new(root: PathBuf, names: Vec<String>) -> Self {
        let (names, places) = topology(&names);
        VirtualBus {
            root,
            names,
            places,
        }
    }

    /// Where the board `name` sits, if it is on the bus.
    pub fn place(&self, name: &str) -> Option<&Place> {
        let index = self.names.iter().position(|n| n == name)?;
        self.places.get(index)
    }

    /// The configuration a board on the bus is created with: a NanoPi M6 at its place.
    pub fn new_board_config(&self, name: &str) -> Option<BoardConfig> {
        let place = self.place(name)?;
        Some(BoardConfig {
            ports: place.ports.clone(),
            hub: place.hub.clone(),
            ..BoardConfig::nanopi_m6(place.ports[0])
        })
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
        self.names.iter().map(|name| self.board(name)).collect()
    }

    /// Opens one board by name, creating it (a NanoPi M6 at its place) if it is new.
    ///
    /// A board the list puts behind a hub is moved there: its configured ports and hub
    /// are those of the list, as plugging a real board into another port would make them.
    /// Other boards keep the ports they were created with.
    pub fn board(&self, name: &str) -> io::Result<VirtualBoard> {
        let config = self.new_board_config(name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no virtual board named {name:?} on the bus"),
            )
        })?;
        self.open_or_place(name, config)
    }

    /// Opens the board `name` (creating it from `config`), moved to the hub the list puts
    /// it behind.
    pub fn open_or_place(&self, name: &str, config: BoardConfig) -> io::Result<VirtualBoard> {
        let (hub, ports) = (config.hub.clone(), config.ports.clone());
        let mut board = VirtualBoard::open_or_create(&self.board_dir(name), || config)?;
        if hub.is_some() && (board.config().hub != hub || board.config().ports != ports) {
            board.set_place(hub, ports)?;
        }
        Ok(board)
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
        self.scan_where(&|_| true)
    }

    fn scan_where(&self, wanted: &dyn Fn(&str) -> bool) -> Result<Vec<BoardInfo>, DiscoveryError> {
        let mut found = Vec::new();
        for (board, name) in self.boards()?.into_iter().zip(self.names()) {
            let Some(id) = board.identity().filter(|id| wanted(&id.port_path)) else {
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

    /// Every board under the bus's folder announces its changes ([`crate::arrivals`]).
    fn watch(&self, notify: Notify) -> bool {
        crate::arrivals::watch(&self.root, notify)
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

/// Splits `NAME@HUB` entries and gives each board its ports: root ports in order of first
/// appearance (of a hub, or of a board without one), hub ports in order within a hub.
fn topology(entries: &[String]) -> (Vec<String>, Vec<Place>) {
    let mut hubs: Vec<(String, u8, u8)> = Vec::new(); // name, root port, ports used
    let mut next_root = 0u8;
    let mut names = Vec::new();
    let mut places = Vec::new();
    for entry in entries {
        let (name, hub) = match entry.split_once('@') {
            Some((name, hub)) if !hub.trim().is_empty() => {
                (name.trim().to_string(), Some(hub.trim().to_string()))
            }
            Some((name, _)) => (name.trim().to_string(), None),
            None => (entry.clone(), None),
        };
        let ports = match &hub {
            Some(hub) => match hubs.iter_mut().find(|(h, _, _)| h == hub) {
                Some((_, root, used)) => {
                    *used = used.saturating_add(1);
                    vec![*root, *used]
                }
                None => {
                    next_root = next_root.saturating_add(1);
                    hubs.push((hub.clone(), next_root, 1));
                    vec![next_root, 1]
                }
            },
            None => {
                next_root = next_root.saturating_add(1);
                vec![next_root]
            }
        };
        names.push(name);
        places.push(Place { hub, ports });
    }
    (names, places)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hubs_take_one_root_port_and_number_their_boards() {
        let bus = VirtualBus::new(PathBuf::new(), parse_names("a@hub1,b@hub1,c,d@hub2,e@hub1"));
        assert_eq!(bus.names(), ["a", "b", "c", "d", "e"]);
        let paths: Vec<String> = bus
            .names()
            .iter()
            .map(|n| bus.new_board_config(n).unwrap().port_path())
            .collect();
        assert_eq!(paths, ["1-1.1", "1-1.2", "1-2", "1-3.1", "1-1.3"]);
        assert_eq!(bus.place("d").unwrap().hub.as_deref(), Some("hub2"));
        assert_eq!(bus.place("c").unwrap().hub, None);
        // Without hubs, as before: one root port per board in order.
        let plain = VirtualBus::new(PathBuf::new(), parse_names("x,y"));
        assert_eq!(plain.new_board_config("y").unwrap().port_path(), "1-2");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_board_plugged_in_is_announced_to_the_bus_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let bus = VirtualBus::new(dir.path().to_path_buf(), parse_names("a,b"));
        let mut b = bus.board("b").unwrap();
        b.unplug().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        assert!(BoardLister::watch(
            &bus,
            std::sync::Arc::new(move || {
                let _ = tx.send(());
            })
        ));
        assert_eq!(bus.scan().unwrap().len(), 1);
        b.power_cycle().unwrap();
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the arrival was announced");
        assert_eq!(bus.scan().unwrap().len(), 2);
    }
}
