//! Real boards through libusb (rusb).
//!
//! Every transfer has a timeout; bulk timeouts grow with the transfer's size so a large
//! write on a slow eMMC is not cut short.

use super::{Transport, TransportError};
use crate::discovery::ROCKCHIP_VID;
use crate::protocol::ControlSetup;
use rusb::{Context, Device, DeviceHandle, Direction, TransferType, UsbContext};
use std::time::Duration;

/// The rockusb interface triple: vendor class, subclass 6, protocol 5
/// (docs/protocol.md §1.2).
pub const INTERFACE_CLASS: u8 = 0xFF;
pub const INTERFACE_SUBCLASS: u8 = 0x06;
pub const INTERFACE_PROTOCOL: u8 = 0x05;

/// The base timeout of each transfer.
const BASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra time allowed per MiB of bulk payload (a slow eMMC commits ~1 MiB/s at worst).
const PER_MIB: Duration = Duration::from_secs(1);

impl From<rusb::Error> for TransportError {
    fn from(e: rusb::Error) -> Self {
        match e {
            rusb::Error::Timeout => TransportError::Timeout,
            rusb::Error::Pipe => TransportError::Stall,
            rusb::Error::Overflow => TransportError::Overflow,
            rusb::Error::NoDevice | rusb::Error::NotFound => TransportError::Disconnected,
            rusb::Error::Access => TransportError::Access,
            rusb::Error::Busy => TransportError::Busy,
            other => TransportError::Other(other.to_string()),
        }
    }
}

/// The system libusb runs on, where what an error means depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOs {
    Windows,
    /// Linux, macOS, the BSDs: libusb opens devices through the kernel's own USB interface.
    Other,
}

impl HostOs {
    /// The system this build runs on.
    pub const CURRENT: HostOs = if cfg!(windows) {
        HostOs::Windows
    } else {
        HostOs::Other
    };
}

/// What libusb's refusal to open or claim a device (`vid:pid`) means on `host`.
///
/// On Windows, libusb reaches a device only through a driver it can talk to (WinUSB, as
/// Zadig installs it). A Rockchip device with no driver, or with Rockchip's own
/// (DriverAssistant's, for RKDevTool), cannot be opened: libusb says "not supported", and
/// for a device that is not set up at all "not found" or "access denied". That is said as
/// [`TransportError::NoWinUsbDriver`], whose hint names Zadig and the device's USB ID.
/// Everywhere else, and for other vendors' devices, the error keeps its usual meaning.
pub fn open_error(error: rusb::Error, vid: u16, pid: u16, host: HostOs) -> TransportError {
    match (host, error) {
        (
            HostOs::Windows,
            rusb::Error::NotSupported | rusb::Error::NotFound | rusb::Error::Access,
        ) if vid == ROCKCHIP_VID => TransportError::NoWinUsbDriver {
            vid,
            pid,
            cause: error.to_string(),
        },
        _ => TransportError::from(error),
    }
}

/// Where the rockusb interface and its bulk endpoints are on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RockusbInterface {
    pub interface: u8,
    pub setting: u8,
    pub endpoint_in: u8,
    pub endpoint_out: u8,
}

/// Finds the rockusb interface in the device's active configuration.
pub fn find_interface<T: UsbContext>(device: &Device<T>) -> Option<RockusbInterface> {
    let config = device.active_config_descriptor().ok()?;
    for interface in config.interfaces() {
        for setting in interface.descriptors() {
            if (
                setting.class_code(),
                setting.sub_class_code(),
                setting.protocol_code(),
            ) != (INTERFACE_CLASS, INTERFACE_SUBCLASS, INTERFACE_PROTOCOL)
            {
                continue;
            }
            let bulk = |dir| {
                setting
                    .endpoint_descriptors()
                    .find(|e| e.transfer_type() == TransferType::Bulk && e.direction() == dir)
                    .map(|e| e.address())
            };
            if let (Some(endpoint_in), Some(endpoint_out)) =
                (bulk(Direction::In), bulk(Direction::Out))
            {
                return Some(RockusbInterface {
                    interface: setting.interface_number(),
                    setting: setting.setting_number(),
                    endpoint_in,
                    endpoint_out,
                });
            }
        }
    }
    None
}

/// An open, claimed rockusb interface on a real device.
pub struct UsbTransport {
    handle: DeviceHandle<Context>,
    iface: RockusbInterface,
    base_timeout: Duration,
}

impl UsbTransport {
    pub fn open(device: &Device<Context>) -> Result<Self, TransportError> {
        let (vid, pid) = device
            .device_descriptor()
            .map(|d| (d.vendor_id(), d.product_id()))
            .map_err(TransportError::from)?;
        let refused = |e| open_error(e, vid, pid, HostOs::CURRENT);
        let iface = match find_interface(device) {
            Some(iface) => iface,
            // No configuration to read: on Windows, a device with no driver bound.
            None => match device.active_config_descriptor() {
                Err(e) => return Err(refused(e)),
                Ok(_) => {
                    return Err(TransportError::Other(
                        "the device has no rockusb interface (class ff/06/05)".into(),
                    ));
                }
            },
        };
        let handle = device.open().map_err(refused)?;
        // Not every platform supports detaching; the claim below reports a real conflict.
        let _ = handle.set_auto_detach_kernel_driver(true);
        handle.claim_interface(iface.interface).map_err(refused)?;
        if iface.setting != 0 {
            handle.set_alternate_setting(iface.interface, iface.setting)?;
        }
        Ok(UsbTransport {
            handle,
            iface,
            base_timeout: BASE_TIMEOUT,
        })
    }

    fn bulk_timeout(&self, len: usize) -> Duration {
        self.base_timeout + PER_MIB * (len >> 20) as u32
    }
}

impl Transport for UsbTransport {
    fn control_out(&mut self, setup: ControlSetup, data: &[u8]) -> Result<usize, TransportError> {
        Ok(self.handle.write_control(
            setup.request_type,
            setup.request,
            setup.value,
            setup.index,
            data,
            self.base_timeout,
        )?)
    }

    fn bulk_out(&mut self, data: &[u8]) -> Result<usize, TransportError> {
        let mut sent = 0;
        while sent < data.len() || (data.is_empty() && sent == 0) {
            let n = self.handle.write_bulk(
                self.iface.endpoint_out,
                &data[sent..],
                self.bulk_timeout(data.len() - sent),
            )?;
            if n == 0 {
                break;
            }
            sent += n;
        }
        Ok(sent)
    }

    fn bulk_in(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        let timeout = self.bulk_timeout(buf.len());
        Ok(self
            .handle
            .read_bulk(self.iface.endpoint_in, buf, timeout)?)
    }

    fn recover(&mut self) -> Result<(), TransportError> {
        self.handle.clear_halt(self.iface.endpoint_in)?;
        self.handle.clear_halt(self.iface.endpoint_out)?;
        Ok(())
    }

    fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.base_timeout = timeout.unwrap_or(BASE_TIMEOUT);
    }
}

impl Drop for UsbTransport {
    fn drop(&mut self) {
        let _ = self.handle.release_interface(self.iface.interface);
    }
}

/// The port path `bus-port.port…` of a device, stable across re-enumeration.
pub fn port_path<T: UsbContext>(device: &Device<T>) -> String {
    let ports = device.port_numbers().unwrap_or_default();
    if ports.is_empty() {
        return format!("{}-0", device.bus_number());
    }
    let ports: Vec<String> = ports.iter().map(u8::to_string).collect();
    format!("{}-{}", device.bus_number(), ports.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_without_winusb_says_so_and_names_zadig_and_the_usb_id() {
        for libusb in [
            rusb::Error::NotSupported,
            rusb::Error::NotFound,
            rusb::Error::Access,
        ] {
            let error = open_error(libusb, ROCKCHIP_VID, 0x350b, HostOs::Windows);
            assert!(
                matches!(error, TransportError::NoWinUsbDriver { pid: 0x350b, .. }),
                "{libusb:?}: {error:?}"
            );
            let message = error.to_string();
            assert!(
                message
                    .contains("the board was found, but Windows has no WinUSB driver bound to it"),
                "{message}"
            );
            assert!(message.contains(&libusb.to_string()), "{message}");
            let hint = error.hint().expect("a hint");
            for words in [
                "Zadig",
                "2207:350b",
                "WinUSB",
                "DriverAssistant driver (for RKDevTool) is not libusb-compatible",
            ] {
                assert!(hint.contains(words), "{words:?} missing from: {hint}");
            }
        }
        // Another loader PID (RK3576) is named as it is.
        let hint = open_error(
            rusb::Error::NotSupported,
            ROCKCHIP_VID,
            0x350e,
            HostOs::Windows,
        )
        .hint()
        .unwrap();
        assert!(hint.contains("2207:350e"), "{hint}");
    }

    #[test]
    fn other_errors_systems_and_vendors_keep_their_meaning() {
        // Linux and macOS: access denied is the udev rules' business.
        let error = open_error(rusb::Error::Access, ROCKCHIP_VID, 0x350b, HostOs::Other);
        assert_eq!(error, TransportError::Access);
        assert!(error.hint().unwrap().contains("udev"));
        assert!(matches!(
            open_error(
                rusb::Error::NotSupported,
                ROCKCHIP_VID,
                0x350b,
                HostOs::Other
            ),
            TransportError::Other(_)
        ));
        // On Windows, a busy device is busy, and a device of another vendor is not a board.
        assert_eq!(
            open_error(rusb::Error::Busy, ROCKCHIP_VID, 0x350b, HostOs::Windows),
            TransportError::Busy
        );
        assert_eq!(
            open_error(rusb::Error::Access, 0x1d6b, 0x0002, HostOs::Windows),
            TransportError::Access
        );
    }
}
