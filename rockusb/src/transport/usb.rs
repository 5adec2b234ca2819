//! Real boards through libusb (rusb).
//!
//! Every transfer has a timeout; bulk timeouts grow with the transfer's size so a large
//! write on a slow eMMC is not cut short.

use super::{Transport, TransportError};
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
        let iface = find_interface(device).ok_or_else(|| {
            TransportError::Other("the device has no rockusb interface (class ff/06/05)".into())
        })?;
        let handle = device.open()?;
        // Not every platform supports detaching; the claim below reports a real conflict.
        let _ = handle.set_auto_detach_kernel_driver(true);
        handle.claim_interface(iface.interface)?;
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
