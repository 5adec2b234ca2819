//! Finding boards and telling MaskROM from loader mode.
//!
//! Boards are named by USB port path (`bus-port.port…`), which survives the
//! re-enumeration after a loader starts; the address does not. Mode is decided by
//! probing: bcdUSB is 0x0200 for the BootROM and the RK3588 usbplug alike
//! (docs/protocol.md §1.4), so a TEST_UNIT_READY is sent and only a loader answers it.

mod reattach;
#[cfg(feature = "libusb")]
mod usb;

pub use reattach::Reattaching;

use crate::client::Client;
use crate::transport::{Transport, TransportError};
use serde::{Serialize, Serializer};
use std::sync::Arc;
use std::time::Duration;

/// Rockchip's USB vendor id on every current SoC.
pub const ROCKCHIP_VID: u16 = 0x2207;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoardMode {
    /// The BootROM: only a loader download works.
    Maskrom,
    /// A loader (usbplug or U-Boot rockusb) answers commands.
    Loader,
    /// Could not be probed (busy or no permission).
    Unknown,
}

impl std::fmt::Display for BoardMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BoardMode::Maskrom => "maskrom",
            BoardMode::Loader => "loader",
            BoardMode::Unknown => "unknown",
        })
    }
}

/// The speed a board runs at on its bus, as the host's USB stack reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsbSpeed {
    Unknown,
    Low,
    Full,
    /// USB 2.0 high speed (480 Mb/s): MaskROM and most loaders.
    High,
    /// USB 3 SuperSpeed (5 Gb/s): a loader after the USB 3 switch (docs/protocol.md §9.2).
    Super,
    SuperPlus,
}

impl UsbSpeed {
    pub fn is_superspeed(self) -> bool {
        self >= UsbSpeed::Super
    }

    /// One word for board lists: `high-speed`, `superspeed`, …
    pub fn short(self) -> &'static str {
        match self {
            UsbSpeed::Unknown => "unknown-speed",
            UsbSpeed::Low => "low-speed",
            UsbSpeed::Full => "full-speed",
            UsbSpeed::High => "high-speed",
            UsbSpeed::Super => "superspeed",
            UsbSpeed::SuperPlus => "superspeed+",
        }
    }
}

impl std::fmt::Display for UsbSpeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UsbSpeed::Unknown => "unknown speed",
            UsbSpeed::Low => "low speed",
            UsbSpeed::Full => "full speed",
            UsbSpeed::High => "high speed (USB 2.0)",
            UsbSpeed::Super => "SuperSpeed (USB 3)",
            UsbSpeed::SuperPlus => "SuperSpeed+ (USB 3)",
        })
    }
}

/// One board as found on a bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardInfo {
    pub port_path: String,
    pub bus: u8,
    pub address: u8,
    pub vid: u16,
    pub pid: u16,
    pub bcd_usb: u16,
    pub speed: UsbSpeed,
    /// The SoC the PID belongs to, from the SoC table.
    pub soc: Option<&'static str>,
    pub mode: BoardMode,
    /// Why the mode could not be probed, when it is unknown.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "as_message")]
    pub probe_error: Option<TransportError>,
    /// The virtual board's name, for boards on the virtual bus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_name: Option<String>,
}

/// How a device sits on its bus, as enumeration tells it (before any probe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub port_path: String,
    pub bus: u8,
    pub address: u8,
    pub vid: u16,
    pub pid: u16,
    pub bcd_usb: u16,
    pub speed: UsbSpeed,
}

impl BoardInfo {
    /// A board from where it is attached, its probed mode (see [`probe_mode`]) and the
    /// name its bus gives it, if any; the SoC comes from the SoC table.
    pub fn new(
        at: Attachment,
        (mode, probe_error): (BoardMode, Option<TransportError>),
        virtual_name: Option<String>,
    ) -> Self {
        BoardInfo {
            soc: soc_name(at.pid),
            port_path: at.port_path,
            bus: at.bus,
            address: at.address,
            vid: at.vid,
            pid: at.pid,
            bcd_usb: at.bcd_usb,
            speed: at.speed,
            mode,
            probe_error,
            virtual_name,
        }
    }
}

/// A probe error, written as its message in `--json` output.
fn as_message<S: Serializer>(error: &Option<TransportError>, s: S) -> Result<S::Ok, S::Error> {
    match error {
        Some(e) => s.collect_str(e),
        None => s.serialize_none(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot use libusb: {0}")]
    Usb(TransportError),
    #[error("virtual board: {0}")]
    Virtual(#[from] std::io::Error),
    #[error(
        "cannot open the board at {port_path}: {source}{}",
        hint_suffix(source)
    )]
    Open {
        port_path: String,
        #[source]
        source: TransportError,
    },
    #[error("the board at {0} is no longer attached")]
    Gone(String),
}

fn hint_suffix(error: &TransportError) -> String {
    error.hint().map(|h| format!(". {h}")).unwrap_or_default()
}

/// Where boards are found: real USB through libusb, or the virtual boards of the tests
/// and of `--virtual`. Everything that differs between them is said here, so the
/// operations and the CLI have one path for both.
pub trait BoardLister: Send + Sync {
    /// How long to wait for boards on this bus, and how often to look.
    fn timing(&self) -> BusTiming;

    /// Whether the labelled stand-in loader (`rockusb_loaders::standin`) may be sent to
    /// boards on this bus. Its areas hold labelled text, not DDR init or usbplug code, so a
    /// real BootROM would run text as code; a virtual board checks only the areas'
    /// framing and CRC, so there it stands in for the rkbin loaders rockusb cannot ship.
    fn accepts_standin_loader(&self) -> bool;

    /// Every Rockchip board on the bus, with its probed mode (in any order).
    fn scan(&self) -> Result<Vec<BoardInfo>, DiscoveryError>;

    /// The boards at the ports `wanted` accepts, with their probed mode; the others are
    /// neither opened nor listed. Probing opens (and on USB claims) a board, so a program
    /// working on several boards at once scans only the ports it is not using.
    fn scan_where(&self, wanted: &dyn Fn(&str) -> bool) -> Result<Vec<BoardInfo>, DiscoveryError> {
        Ok(self
            .scan()?
            .into_iter()
            .filter(|b| wanted(&b.port_path))
            .collect())
    }

    /// Why the bus cannot show boards at all, when it cannot (libusb did not start).
    fn unavailable(&self) -> Option<String> {
        None
    }

    /// Opens the board at `port_path`.
    fn open(&self, port_path: &str) -> Result<Box<dyn Transport>, DiscoveryError>;

    /// Calls `notify`, from a thread of its own and for as long as the process runs,
    /// whenever a board may have come onto the bus or left it; false when this bus cannot
    /// tell, and the caller polls ([`BusTiming::station_poll_interval`]).
    fn watch(&self, notify: Notify) -> bool {
        let _ = notify;
        false
    }

    /// Whether the host port at `port_path` can carry SuperSpeed: `Some(false)` when it
    /// is known not to (the USB 3 switch is then not tried), `None` when the bus cannot
    /// tell.
    fn superspeed_port(&self, _port_path: &str) -> Option<bool> {
        None
    }
}

/// Told when boards may have come or gone ([`BoardLister::watch`]).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// A handle on one bus, cheap to clone and share between threads.
#[derive(Clone)]
pub struct Bus(Arc<dyn BoardLister>);

/// How long to wait for boards on a bus, and how often to look.
///
/// A real board takes its time: a loader's entries ask for a pause after each download
/// area (docs/protocol.md §2.2), and a loader needs from under 1 s (RK3588S) to over 3 s
/// (RK3576) to re-enumerate (§1.3). A virtual board re-enumerates the moment its last area
/// is in, so on the virtual bus waiting long would only delay an error, and polling slowly
/// would only add idle time to every boot and every fleet run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusTiming {
    /// Whether to pause for each download area's delay (from its loader entry) after
    /// sending it.
    pub area_delays: bool,
    /// How long a board may take to come back as a loader after its last 0x472 area.
    pub loader_timeout: Duration,
    /// How often to rescan while waiting for one board to come back as a loader.
    pub loader_poll_interval: Duration,
    /// How often a provisioning station rescans for boards attached or detached.
    pub station_poll_interval: Duration,
}

impl BusTiming {
    /// Real USB: the areas' delays are honoured, and loaders get 10 s to come up (over 3 s
    /// on RK3576 has been seen, so 10 s leaves room).
    pub const USB: BusTiming = BusTiming {
        area_delays: true,
        loader_timeout: Duration::from_secs(10),
        loader_poll_interval: Duration::from_millis(200),
        station_poll_interval: Duration::from_millis(500),
    };

    /// Virtual boards: no delays to honour (the model needs none) and no re-enumeration
    /// time to allow for.
    pub const VIRTUAL: BusTiming = BusTiming {
        area_delays: false,
        loader_timeout: Duration::from_secs(2),
        loader_poll_interval: Duration::from_millis(10),
        station_poll_interval: Duration::from_millis(20),
    };
}

impl Bus {
    pub fn new(lister: impl BoardLister + 'static) -> Self {
        Bus(Arc::new(lister))
    }

    /// The real USB bus, through libusb.
    #[cfg(feature = "libusb")]
    pub fn usb() -> Result<Self, DiscoveryError> {
        Ok(Bus::new(usb::UsbLister::new()?))
    }

    /// How long to wait for boards on this bus, and how often to look.
    pub fn timing(&self) -> BusTiming {
        self.0.timing()
    }

    /// See [`BoardLister::accepts_standin_loader`].
    pub fn accepts_standin_loader(&self) -> bool {
        self.0.accepts_standin_loader()
    }

    /// See [`BoardLister::unavailable`].
    pub fn unavailable(&self) -> Option<String> {
        self.0.unavailable()
    }

    /// Every Rockchip board on the bus, with its probed mode, in port-path order.
    pub fn scan(&self) -> Result<Vec<BoardInfo>, DiscoveryError> {
        let mut boards = self.0.scan()?;
        boards.sort_by(|a, b| a.port_path.cmp(&b.port_path));
        Ok(boards)
    }

    /// The boards at the ports `wanted` accepts, in port-path order, without opening
    /// the others ([`BoardLister::scan_where`]).
    pub fn scan_where(
        &self,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<BoardInfo>, DiscoveryError> {
        let mut boards = self.0.scan_where(wanted)?;
        boards.sort_by(|a, b| a.port_path.cmp(&b.port_path));
        Ok(boards)
    }

    /// The board at `port_path`, if one is attached there, probed without opening any
    /// other board.
    pub fn scan_port(&self, port_path: &str) -> Result<Option<BoardInfo>, DiscoveryError> {
        Ok(self.0.scan_where(&|p| p == port_path)?.into_iter().next())
    }

    /// Opens the board at `port_path`.
    pub fn open(&self, port_path: &str) -> Result<Box<dyn Transport>, DiscoveryError> {
        self.0.open(port_path)
    }

    /// See [`BoardLister::watch`].
    pub fn watch(&self, notify: Notify) -> bool {
        self.0.watch(notify)
    }

    /// See [`BoardLister::superspeed_port`].
    pub fn superspeed_port(&self, port_path: &str) -> Option<bool> {
        self.0.superspeed_port(port_path)
    }

    /// Opens the board at `port_path` as a transport that finds it again on the same
    /// port after it drops off the bus ([`Reattaching`]).
    pub fn open_reattaching(&self, port_path: &str) -> Result<Reattaching, DiscoveryError> {
        Ok(Reattaching::new(
            self.clone(),
            port_path,
            self.0.open(port_path)?,
        ))
    }
}

/// How long a loader may take to answer the probe; the BootROM never answers.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Probes the mode: a loader answers TEST_UNIT_READY; the BootROM's bulk endpoints never do.
pub fn probe_mode(transport: &mut dyn Transport) -> (BoardMode, Option<TransportError>) {
    transport.set_timeout(Some(PROBE_TIMEOUT));
    let result = Client::new(&mut *transport).test_unit_ready();
    transport.set_timeout(None);
    match result {
        Ok(()) => (BoardMode::Loader, None),
        // A loader that answers with a failure status is still a loader.
        Err(e) if e.transport().is_none() => (BoardMode::Loader, None),
        Err(e) => match e.transport() {
            Some(TransportError::Timeout) => {
                let _ = transport.recover();
                (BoardMode::Maskrom, None)
            }
            other => (BoardMode::Unknown, other.cloned()),
        },
    }
}

/// The SoC a Rockchip USB product id belongs to, from the SoC table.
pub fn soc_name(pid: u16) -> Option<&'static str> {
    rockusb_loaders::soc::by_usb_pid(pid).map(|s| s.name)
}
