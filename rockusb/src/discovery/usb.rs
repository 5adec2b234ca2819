//! The real USB bus, through libusb.

use super::{Attachment, BoardInfo, BoardLister, BoardMode, BusTiming, DiscoveryError};
use super::{ROCKCHIP_VID, probe_mode};
use crate::transport::usb::{self as usb_transport, UsbTransport};
use crate::transport::{Transport, TransportError};
use rusb::UsbContext;

pub(super) struct UsbLister {
    context: rusb::Context,
}

impl UsbLister {
    pub(super) fn new() -> Result<Self, DiscoveryError> {
        let context =
            rusb::Context::new().map_err(|e| DiscoveryError::Usb(TransportError::from(e)))?;
        Ok(UsbLister { context })
    }

    fn devices(&self) -> Result<rusb::DeviceList<rusb::Context>, DiscoveryError> {
        self.context
            .devices()
            .map_err(|e| DiscoveryError::Usb(TransportError::from(e)))
    }
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

    fn scan(&self) -> Result<Vec<BoardInfo>, DiscoveryError> {
        self.scan_where(&|_| true)
    }

    fn scan_where(&self, wanted: &dyn Fn(&str) -> bool) -> Result<Vec<BoardInfo>, DiscoveryError> {
        let mut boards = Vec::new();
        for device in self.devices()?.iter() {
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
        let context = self.context.clone();
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

    fn open(&self, port_path: &str) -> Result<Box<dyn Transport>, DiscoveryError> {
        let device = self
            .devices()?
            .iter()
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

fn is_rockusb<T: UsbContext>(device: &rusb::Device<T>) -> bool {
    device
        .device_descriptor()
        .is_ok_and(|d| d.vendor_id() == ROCKCHIP_VID)
        && usb_transport::find_interface(device).is_some()
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
