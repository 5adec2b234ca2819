//! A virtual NanoPi M6 that powers on in MaskROM, for tests and for trying the tool
//! without hardware.
//!
//! It is the device side of the same protocol: the BootROM accepts 0x471/0x472 uploads
//! ([`bootrom`]); after a complete 0x472 upload it re-enumerates at a new address, same
//! port path, as a loader answering bulk commands ([`loader`]) with RK3588 values, backed
//! by sparse files for eMMC, SD and SPI-NOR ([`storage`]). Its state lives in a folder
//! ([`state`]), so it survives from one process to the next, and everything it received
//! is kept there for tests to inspect.

#![forbid(unsafe_code)]

pub mod arrivals;
pub mod bootrom;
pub mod bus;
pub mod config;
pub mod faults;
pub mod link;
pub mod loader;
pub mod state;
pub mod storage;
pub mod transport;

pub use bus::VirtualBus;
pub use config::{BoardConfig, Personality};
pub use link::LinkModel;
pub use state::{BoardState, Mode};
pub use transport::VirtualHandle;

use link::Pacer;
use loader::BulkEngine;
use rockusb::protocol::{AreaReceiver, StorageKind};
use std::io;
use std::path::{Path, PathBuf};
use storage::BackingStore;

const CONFIG_FILE: &str = "config.json";
const STATE_FILE: &str = "state.json";

/// How the board looks on the bus right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbIdentity {
    pub vid: u16,
    pub pid: u16,
    /// 0x0200 in MaskROM and for the RK3588 usbplug alike, which is why mode is probed;
    /// 0x0300 for a loader after the USB 3 switch.
    pub bcd_usb: u16,
    /// The board runs at SuperSpeed (after the USB 3 switch), else at high speed.
    pub superspeed: bool,
    pub bus: u8,
    pub address: u8,
    pub ports: Vec<u8>,
    pub port_path: String,
}

/// A virtual board, opened from its folder.
pub struct VirtualBoard {
    dir: PathBuf,
    config: BoardConfig,
    state: BoardState,
    receiver: AreaReceiver,
    engine: BulkEngine,
    pacer: Option<Pacer>,
    stores: Vec<(StorageKind, BackingStore)>,
    /// Faults to inject into data commands ([`faults`]), shared by this process's handles.
    faults: std::sync::Arc<std::sync::Mutex<faults::Faults>>,
    /// Modification time of the state file when last read or written, to notice
    /// changes made through another handle or process.
    state_stamp: Option<std::time::SystemTime>,
}

impl VirtualBoard {
    /// Creates a board in `dir` (powered on in MaskROM) or opens the one already there.
    pub fn open_or_create(dir: &Path, config: impl FnOnce() -> BoardConfig) -> io::Result<Self> {
        if dir.join(CONFIG_FILE).is_file() {
            return Self::open(dir);
        }
        std::fs::create_dir_all(dir.join("received"))?;
        let config = config();
        state::save_json(&dir.join(CONFIG_FILE), &config)?;
        BoardState::powered_on(initial_address(&config)).save(&dir.join(STATE_FILE))?;
        if let Some(root) = dir.parent() {
            arrivals::announce(root);
        }
        Self::open(dir)
    }

    /// Opens an existing board.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(dir.join(CONFIG_FILE))?;
        let config: BoardConfig = serde_json::from_str(&text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let state = BoardState::load(&dir.join(STATE_FILE))?;
        Ok(VirtualBoard {
            dir: dir.to_path_buf(),
            pacer: pacer(dir, &config, state.superspeed),
            config,
            state,
            receiver: AreaReceiver::new(),
            engine: BulkEngine::default(),
            stores: Vec::new(),
            faults: faults::for_board(dir),
            state_stamp: std::fs::metadata(dir.join(STATE_FILE))
                .and_then(|m| m.modified())
                .ok(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &BoardConfig {
        &self.config
    }

    pub fn state(&self) -> &BoardState {
        &self.state
    }

    /// Re-reads the state file, for a handle that outlived another process's changes.
    pub fn reload(&mut self) -> io::Result<()> {
        self.state_stamp = None;
        self.refresh()
    }

    fn save(&mut self) -> io::Result<()> {
        let path = self.dir.join(STATE_FILE);
        self.state.save(&path)?;
        self.state_stamp = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        // Whatever changed (a board on or off the bus, a new address), watchers rescan.
        if let Some(root) = self.dir.parent() {
            arrivals::announce(root);
        }
        Ok(())
    }

    /// Re-reads the state if another handle or process changed it (a re-enumeration
    /// makes this handle's address stale, as on a real bus).
    pub(crate) fn refresh(&mut self) -> io::Result<()> {
        let path = self.dir.join(STATE_FILE);
        let stamp = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if stamp != self.state_stamp {
            self.state = BoardState::load(&path)?;
            self.state_stamp = stamp;
        }
        Ok(())
    }

    /// The board's USB identity, or `None` when it is not on the bus.
    pub fn identity(&self) -> Option<UsbIdentity> {
        if self.state.mode == Mode::Off {
            return None;
        }
        Some(UsbIdentity {
            vid: self.config.usb_vid,
            pid: self.config.usb_pid,
            // Vendor U-Boot reports bcdUSB 0x0300 at SuperSpeed (f_rockusb.c:90).
            bcd_usb: if self.state.superspeed {
                0x0300
            } else {
                0x0200
            },
            superspeed: self.state.superspeed,
            bus: self.config.bus,
            address: self.state.address,
            ports: self.config.ports.clone(),
            port_path: self.config.port_path(),
        })
    }

    /// Power-cycles the board: back to MaskROM with a fresh BootROM, at a new address.
    /// The storage keeps its contents; the record of received areas is cleared.
    pub fn power_cycle(&mut self) -> io::Result<()> {
        let address = next_address(self.state.address);
        self.state = BoardState::powered_on(address);
        self.receiver = AreaReceiver::new();
        self.engine = BulkEngine::default();
        self.save()
    }

    /// Unplugs the board: it leaves the bus until [`VirtualBoard::power_cycle`] plugs it
    /// in again (in MaskROM). The storage keeps its contents.
    pub fn unplug(&mut self) -> io::Result<()> {
        self.leave_bus(Mode::Off, "unplugged")
    }

    /// Changes the link model (benchmarks), persisting it in the board's config.
    pub fn set_link(&mut self, link: Option<LinkModel>) -> io::Result<()> {
        self.config.link = link;
        self.pacer = pacer(&self.dir, &self.config, self.state.superspeed);
        state::save_json(&self.dir.join(CONFIG_FILE), &self.config)
    }

    /// Moves the board behind a hub (or off one) at these ports, persisting it.
    pub fn set_place(&mut self, hub: Option<String>, ports: Vec<u8>) -> io::Result<()> {
        self.config.hub = hub;
        self.config.ports = ports;
        self.pacer = pacer(&self.dir, &self.config, self.state.superspeed);
        state::save_json(&self.dir.join(CONFIG_FILE), &self.config)
    }

    /// Says whether the host port can carry SuperSpeed, persisting it.
    pub fn set_port_superspeed(&mut self, on: bool) -> io::Result<()> {
        self.config.port_superspeed = on;
        state::save_json(&self.dir.join(CONFIG_FILE), &self.config)
    }

    /// Keeps the pacer on the model of the current speed (the speed changes when the board
    /// re-enumerates, perhaps through another handle).
    pub(crate) fn sync_pacer(&mut self) {
        let shared = self.config.hub.is_some() && !self.state.superspeed;
        let model = self.config.link.map(|link| {
            if self.state.superspeed {
                LinkModel::usb3()
            } else {
                link
            }
        });
        let current = self.pacer.as_ref().map(|p| (p.model(), p.is_shared()));
        if current != model.map(|m| (m, shared)) {
            self.pacer = pacer(&self.dir, &self.config, self.state.superspeed);
        }
    }

    /// Replaces the faults planned for this board in this process, counting afresh, for
    /// tests that hold the board in-process (the binaries read `ROCKUSB_VIRTUAL_FAULTS`,
    /// [`faults`]).
    pub fn set_faults(&mut self, faults: faults::Faults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// Turns the 32 MiB read wall on or off, persisting it.
    pub fn set_read_wall(&mut self, on: bool) -> io::Result<()> {
        self.config.read_wall = on;
        state::save_json(&self.dir.join(CONFIG_FILE), &self.config)
    }

    /// The bytes of every area the BootROM accepted for `area_index` (0x471 or 0x472), in order.
    pub fn received(&self, area_index: u16) -> io::Result<Vec<Vec<u8>>> {
        self.state
            .received
            .iter()
            .filter(|r| r.area == area_index)
            .map(|r| std::fs::read(self.dir.join("received").join(&r.file)))
            .collect()
    }

    /// The size of a storage device, or `None` if the board has none of that kind.
    pub fn storage_len(&self, kind: StorageKind) -> Option<u64> {
        let len = match kind {
            StorageKind::Emmc => self.config.emmc_bytes,
            StorageKind::Sd => self.config.sd_bytes,
            StorageKind::SpiNor => self.config.spinor_bytes,
            _ => 0,
        };
        (len > 0).then_some(len)
    }

    /// The backing file of a storage device.
    pub fn storage_path(&self, kind: StorageKind) -> PathBuf {
        self.dir.join(format!("{}.img", kind.name()))
    }

    /// Opens (creating if needed) a storage device's backing store.
    pub fn store(&mut self, kind: StorageKind) -> io::Result<&BackingStore> {
        let Some(len) = self.storage_len(kind) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("the board has no {kind} storage"),
            ));
        };
        if let Some(i) = self.stores.iter().position(|(k, _)| *k == kind) {
            return Ok(&self.stores[i].1);
        }
        let store = BackingStore::open_or_create(&self.storage_path(kind), len)?;
        self.stores.push((kind, store));
        Ok(&self.stores.last().expect("just pushed").1)
    }

    /// Reads storage bytes directly, for tests.
    pub fn read_storage(
        &mut self,
        kind: StorageKind,
        offset: u64,
        len: usize,
    ) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.store(kind)?.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// Writes storage bytes directly, for tests that plant old contents.
    pub fn write_storage(&mut self, kind: StorageKind, offset: u64, data: &[u8]) -> io::Result<()> {
        self.store(kind)?.write_at(offset, data)
    }

    /// Leaves the bus and comes back (or not) in `mode`, at high speed: only the USB 3
    /// switch brings a board back at SuperSpeed ([`Self::switch_usb3`]).
    fn leave_bus(&mut self, mode: Mode, why: &str) -> io::Result<()> {
        self.state.superspeed = false;
        self.state.mode = mode;
        self.state.address = next_address(self.state.address);
        self.state.last_event = why.to_string();
        self.engine = BulkEngine::default();
        self.save()
    }
}

impl VirtualBoard {
    /// Command 0xBB, once its status block has gone out: the loader re-enumerates on the
    /// same port path, at SuperSpeed where the host port can carry it and back at high
    /// speed where it cannot (vendor U-Boot waits for the SuperSpeed link, then falls back).
    fn switch_usb3(&mut self) -> io::Result<()> {
        let superspeed = self.config.port_superspeed;
        let why = if superspeed {
            "USB 3 switch: back at SuperSpeed"
        } else {
            "USB 3 switch: no SuperSpeed link on this port, back at high speed"
        };
        self.leave_bus(Mode::Loader, why)?;
        self.state.superspeed = superspeed;
        self.save()?;
        self.sync_pacer();
        Ok(())
    }
}

/// The board's link pacer, if its link is modelled: shared with the boards behind the
/// same hub (whose folder sits beside the boards' folders).
///
/// At SuperSpeed the board paces on its own USB 3 model: the fleet keeps boards behind
/// hubs at high speed, and a SuperSpeed hub's wire is not modelled.
fn pacer(dir: &Path, config: &BoardConfig, superspeed: bool) -> Option<Pacer> {
    let model = config.link?;
    if superspeed {
        return Some(Pacer::new(LinkModel::usb3(), None));
    }
    let hub_dir = config
        .hub
        .as_deref()
        .map(|hub| link::hub_dir(dir.parent().unwrap_or(dir), hub));
    Some(Pacer::new(model, hub_dir))
}

fn initial_address(config: &BoardConfig) -> u8 {
    // Distinct boards on one bus get distinct addresses.
    10u8.wrapping_add(config.ports.last().copied().unwrap_or(0).wrapping_mul(10))
}

fn next_address(address: u8) -> u8 {
    // USB addresses run 1..=127.
    if address >= 127 { 1 } else { address + 1 }
}
