//! The real USB bus, through libusb.

use super::{Attachment, BoardInfo, BoardLister, BoardMode, BusTiming, DiscoveryError, UsbSpeed};
use super::{ROCKCHIP_VID, probe_mode, soc_name};
use crate::transport::usb::{self as usb_transport, HostOs, UsbTransport};
use crate::transport::{Transport, TransportError};
use rusb::UsbContext;

pub(super) struct UsbLister {
    /// `None` on a machine without USB devices, where libusb cannot start.
    context: Option<rusb::Context>,
    /// Why libusb did not start, when it did not.
    startup_error: Option<String>,
}

impl UsbLister {
    pub(super) fn new() -> Result<Self, DiscoveryError> {
        match rusb::Context::new() {
            Ok(context) => Ok(UsbLister {
                context: Some(context),
                startup_error: None,
            }),
            // A libusb built without udev (the static build's) fails to start where there
            // is no /dev/bus/usb at all (a container, a VM without USB): no boards there.
            Err(e) if no_usb_devices() => Ok(UsbLister {
                context: None,
                startup_error: Some(format!(
                    "libusb could not start ({e}) and this machine shows no USB devices \
                     (/dev/bus/usb is missing; in a container, pass the USB bus through)"
                )),
            }),
            Err(e) => Err(DiscoveryError::Usb(TransportError::from(e))),
        }
    }

    fn devices(&self) -> Result<Vec<rusb::Device<rusb::Context>>, DiscoveryError> {
        let Some(context) = &self.context else {
            return Ok(Vec::new());
        };
        context
            .devices()
            .map(|list| list.iter().collect())
            .map_err(|e| DiscoveryError::Usb(TransportError::from(e)))
    }
}

/// True on Linux when the kernel shows no USB device nodes at all.
fn no_usb_devices() -> bool {
    cfg!(target_os = "linux") && !std::path::Path::new("/dev/bus/usb").exists()
}

impl BoardLister for UsbLister {
    /// A real board takes its time: see [`BusTiming::USB`].
    fn timing(&self) -> BusTiming {
        BusTiming::USB
    }

    /// A real BootROM would run the stand-in's labelled text as code.
    fn accepts_standin_loader(&self) -> bool {
        false
    }

    fn unavailable(&self) -> Option<String> {
        self.startup_error.clone()
    }

    fn scan(&self) -> Result<Vec<BoardInfo>, DiscoveryError> {
        self.scan_where(&|_| true)
    }

    fn scan_where(&self, wanted: &dyn Fn(&str) -> bool) -> Result<Vec<BoardInfo>, DiscoveryError> {
        let mut boards = Vec::new();
        for device in self.devices()? {
            if !is_rockusb(&device) || !wanted(&usb_transport::port_path(&device)) {
                continue;
            }
            let Ok(desc) = device.device_descriptor() else {
                continue;
            };
            let version = desc.usb_version();
            let bcd_usb = (u16::from(version.major()) << 8)
                | (u16::from(version.minor()) << 4)
                | u16::from(version.sub_minor());
            let probe = match UsbTransport::open(&device) {
                Ok(mut t) => probe_mode(&mut t),
                Err(e) => (BoardMode::Unknown, Some(e)),
            };
            let at = Attachment {
                port_path: usb_transport::port_path(&device),
                bus: device.bus_number(),
                address: device.address(),
                vid: desc.vendor_id(),
                pid: desc.product_id(),
                bcd_usb,
                speed: speed_of(&device),
            };
            boards.push(BoardInfo::new(at, probe, None));
        }
        Ok(boards)
    }

    /// libusb's hotplug events where the platform has them (Linux, macOS), for Rockchip
    /// devices; a thread of its own handles libusb's events for them.
    fn watch(&self, notify: super::Notify) -> bool {
        if !rusb::has_hotplug() {
            return false;
        }
        let Some(context) = self.context.clone() else {
            return false;
        };
        let (registered, result) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("usb-hotplug".into())
            .spawn(move || {
                let mut builder = rusb::HotplugBuilder::new();
                builder.vendor_id(ROCKCHIP_VID).enumerate(false);
                let registration =
                    builder.register::<rusb::Context, _>(&context, Box::new(Arrivals(notify)));
                let ok = registration.is_ok();
                let _ = registered.send(ok);
                if !ok {
                    return;
                }
                let _keep = registration;
                loop {
                    if context
                        .handle_events(Some(std::time::Duration::from_secs(1)))
                        .is_err()
                    {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
            });
        spawned.is_ok() && result.recv().unwrap_or(false)
    }

    /// libusb reports the speed of the hub a device hangs from: a SuperSpeed hub says yes.
    /// A high-speed parent says nothing, because an xHCI controller shows each USB 3 port
    /// twice, as a high-speed port on one root hub and a SuperSpeed port on another, and a
    /// board at high speed hangs from the first: so the switch is tried, and the board
    /// comes back at high speed where the port or cable cannot do better.
    fn superspeed_port(&self, port_path: &str) -> Option<bool> {
        let devices = self.devices().ok()?;
        let device = devices
            .iter()
            .find(|d| usb_transport::port_path(d) == port_path)?;
        let parent = device.get_parent()?;
        speed_of(&parent).is_superspeed().then_some(true)
    }

    fn open(&self, port_path: &str) -> Result<Box<dyn Transport>, DiscoveryError> {
        let device = self
            .devices()?
            .into_iter()
            .filter(is_rockusb)
            .find(|d| usb_transport::port_path(d) == port_path)
            .ok_or_else(|| DiscoveryError::Gone(port_path.into()))?;
        let transport = UsbTransport::open(&device).map_err(|source| DiscoveryError::Open {
            port_path: port_path.into(),
            source,
        })?;
        Ok(Box::new(transport))
    }
}

fn speed_of<T: UsbContext>(device: &rusb::Device<T>) -> UsbSpeed {
    match device.speed() {
        rusb::Speed::Low => UsbSpeed::Low,
        rusb::Speed::Full => UsbSpeed::Full,
        rusb::Speed::High => UsbSpeed::High,
        rusb::Speed::Super => UsbSpeed::Super,
        rusb::Speed::SuperPlus => UsbSpeed::SuperPlus,
        _ => UsbSpeed::Unknown,
    }
}

fn is_rockusb<T: UsbContext>(device: &rusb::Device<T>) -> bool {
    let Ok(desc) = device.device_descriptor() else {
        return false;
    };
    desc.vendor_id() == ROCKCHIP_VID
        && (usb_transport::find_interface(device).is_some()
            // Windows shows no configuration of a device that has no driver bound: a
            // Rockchip SoC's PID is listed all the same, so that opening it says which
            // driver is missing rather than the board being invisible.
            || (HostOs::CURRENT == HostOs::Windows
                && soc_name(desc.product_id()).is_some()
                && device.active_config_descriptor().is_err()))
}

/// Passes libusb's hotplug events on.
struct Arrivals(super::Notify);

impl<T: UsbContext> rusb::Hotplug<T> for Arrivals {
    fn device_arrived(&mut self, _device: rusb::Device<T>) {
        (self.0)();
    }

    fn device_left(&mut self, _device: rusb::Device<T>) {
        (self.0)();
    }
}
