//! Finding boards and telling MaskROM from loader mode.
//!
//! Boards are named by USB port path (`bus-port.port…`), which survives the
//! re-enumeration after a loader starts; the address does not. Mode is decided by
//! probing: bcdUSB is 0x0200 for the BootROM and the RK3588 usbplug alike
//! (docs/protocol.md §1.4), so a TEST_UNIT_READY is sent and only a loader answers it.

use crate::client::Client;
use crate::transport::usb::{self, UsbTransport};
use crate::transport::{Transport, TransportError};
use crate::virtual_board::{VirtualBus, VirtualHandle};
use rusb::UsbContext;
use serde::Serialize;
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

/// One board as found on a bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardInfo {
    pub port_path: String,
    pub bus: u8,
    pub address: u8,
    pub vid: u16,
    pub pid: u16,
    pub bcd_usb: u16,
    /// The SoC the PID belongs to, from the SoC table.
    pub soc: Option<&'static str>,
    pub mode: BoardMode,
    /// Why the mode could not be probed, when it is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_error: Option<String>,
    /// The virtual board's name, for boards on the virtual bus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot use libusb: {0}")]
    Usb(#[from] rusb::Error),
    #[error("virtual board: {0}")]
    Virtual(#[from] std::io::Error),
    #[error(
        "cannot open the board at {port_path}: {source}{}",
        access_hint(source)
    )]
    Open {
        port_path: String,
        #[source]
        source: TransportError,
    },
    #[error("the board at {0} is no longer attached")]
    Gone(String),
}

fn access_hint(error: &TransportError) -> &'static str {
    match error {
        TransportError::Access => {
            ". Install the udev rules (`rockusb udev | sudo tee \
             /etc/udev/rules.d/70-rockusb.rules`), then replug the board, or run as root"
        }
        TransportError::Busy => {
            ". Another program (rkdeveloptool, upgrade_tool, another rockusb) has claimed it"
        }
        _ => "",
    }
}

/// Where boards are looked for.
///
/// Everything that differs between real boards and virtual ones is a property of the bus
/// ([`Bus::timing`], [`Bus::accepts_standin_loader`]), so the operations and the CLI have
/// one path for both.
#[derive(Clone)]
pub enum Bus {
    Usb(rusb::Context),
    Virtual(VirtualBus),
}

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
    pub fn usb() -> Result<Self, DiscoveryError> {
        Ok(Bus::Usb(rusb::Context::new()?))
    }

    /// How long to wait for boards on this bus, and how often to look.
    pub fn timing(&self) -> BusTiming {
        match self {
            Bus::Usb(_) => BusTiming::USB,
            Bus::Virtual(_) => BusTiming::VIRTUAL,
        }
    }

    /// Whether the labelled stand-in loader (`rockusb_loaders::standin`) may be sent to
    /// boards on this bus. Its areas hold labelled text, not DDR init or usbplug code, so a
    /// real BootROM would run text as code; the virtual board checks only the areas'
    /// framing and CRC, so there it stands in for the rkbin loaders rockusb cannot ship.
    pub fn accepts_standin_loader(&self) -> bool {
        match self {
            Bus::Usb(_) => false,
            Bus::Virtual(_) => true,
        }
    }

    /// Every Rockchip board on the bus, with its probed mode.
    pub fn scan(&self) -> Result<Vec<BoardInfo>, DiscoveryError> {
        let mut boards = match self {
            Bus::Usb(ctx) => scan_usb(ctx)?,
            Bus::Virtual(bus) => scan_virtual(bus)?,
        };
        boards.sort_by(|a, b| a.port_path.cmp(&b.port_path));
        Ok(boards)
    }

    /// Opens the board at `port_path`.
    pub fn open(&self, port_path: &str) -> Result<Box<dyn Transport>, DiscoveryError> {
        match self {
            Bus::Usb(ctx) => {
                let device = ctx
                    .devices()?
                    .iter()
                    .filter(is_rockusb)
                    .find(|d| usb::port_path(d) == port_path)
                    .ok_or_else(|| DiscoveryError::Gone(port_path.into()))?;
                let transport =
                    UsbTransport::open(&device).map_err(|source| DiscoveryError::Open {
                        port_path: port_path.into(),
                        source,
                    })?;
                Ok(Box::new(transport))
            }
            Bus::Virtual(bus) => {
                for board in bus.boards()? {
                    if board.config().port_path() == port_path {
                        return VirtualHandle::open(board)
                            .map(|h| Box::new(h) as Box<dyn Transport>)
                            .ok_or_else(|| DiscoveryError::Gone(port_path.into()));
                    }
                }
                Err(DiscoveryError::Gone(port_path.into()))
            }
        }
    }
}

fn is_rockusb<T: UsbContext>(device: &rusb::Device<T>) -> bool {
    device
        .device_descriptor()
        .is_ok_and(|d| d.vendor_id() == ROCKCHIP_VID)
        && usb::find_interface(device).is_some()
}

/// How long a loader may take to answer the probe; the BootROM never answers.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Probes the mode: a loader answers TEST_UNIT_READY; the BootROM's bulk endpoints never do.
pub fn probe_mode(transport: &mut dyn Transport) -> (BoardMode, Option<String>) {
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
            _ => (BoardMode::Unknown, Some(e.to_string())),
        },
    }
}

fn soc_name(pid: u16) -> Option<&'static str> {
    rockusb_loaders::soc::by_usb_pid(pid).map(|s| s.name)
}

fn scan_usb(ctx: &rusb::Context) -> Result<Vec<BoardInfo>, DiscoveryError> {
    let mut boards = Vec::new();
    for device in ctx.devices()?.iter() {
        if !is_rockusb(&device) {
            continue;
        }
        let Ok(desc) = device.device_descriptor() else {
            continue;
        };
        let version = desc.usb_version();
        let bcd_usb = (u16::from(version.major()) << 8)
            | (u16::from(version.minor()) << 4)
            | u16::from(version.sub_minor());
        let (mode, probe_error) = match UsbTransport::open(&device) {
            Ok(mut t) => probe_mode(&mut t),
            Err(e) => (BoardMode::Unknown, Some(e.to_string())),
        };
        boards.push(BoardInfo {
            port_path: usb::port_path(&device),
            bus: device.bus_number(),
            address: device.address(),
            vid: desc.vendor_id(),
            pid: desc.product_id(),
            bcd_usb,
            soc: soc_name(desc.product_id()),
            mode,
            probe_error,
            virtual_name: None,
        });
    }
    Ok(boards)
}

fn scan_virtual(bus: &VirtualBus) -> Result<Vec<BoardInfo>, DiscoveryError> {
    let mut boards = Vec::new();
    for (board, name) in bus.boards()?.into_iter().zip(bus.names()) {
        let Some(id) = board.identity() else {
            continue;
        };
        let Some(mut handle) = VirtualHandle::open(board) else {
            continue;
        };
        let (mode, probe_error) = probe_mode(&mut handle);
        boards.push(BoardInfo {
            port_path: id.port_path,
            bus: id.bus,
            address: id.address,
            vid: id.vid,
            pid: id.pid,
            bcd_usb: id.bcd_usb,
            soc: soc_name(id.pid),
            mode,
            probe_error,
            virtual_name: Some(name.clone()),
        });
    }
    Ok(boards)
}
