//! Finding boards and telling MaskROM from loader mode.
//!
//! Boards are named by USB port path (`bus-port.port…`), which survives the
//! re-enumeration after a loader starts; the address does not. Mode is decided by
//! probing: bcdUSB is 0x0200 for the BootROM and the RK3588 usbplug alike (spec §1), so a
//! TEST_UNIT_READY is sent and only a loader answers it.

use crate::client::Client;
use crate::transport::usb::{self, UsbTransport};
use crate::transport::{Transport, TransportError};
use crate::virtual_board::{VirtualBus, VirtualHandle};
use rusb::UsbContext;
use serde::Serialize;

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
#[derive(Clone)]
pub enum Bus {
    Usb(rusb::Context),
    Virtual(VirtualBus),
}

impl Bus {
    pub fn usb() -> Result<Self, DiscoveryError> {
        Ok(Bus::Usb(rusb::Context::new()?))
    }

    pub fn is_virtual(&self) -> bool {
        matches!(self, Bus::Virtual(_))
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
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

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
