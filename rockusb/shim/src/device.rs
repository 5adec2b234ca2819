//! `libusb_device` and `libusb_device_handle` as the shim models them, and the
//! descriptors a virtual board presents.
//!
//! A device is a snapshot taken at enumeration: board name and USB identity (bus, port
//! path, address). When the board re-enumerates (after a 0x472 upload or a reset), the
//! snapshot keeps the old address and opening it fails with `LIBUSB_ERROR_NO_DEVICE`, as
//! a stale `libusb_device` does on real hardware. Devices are reference counted exactly
//! as libusb documents: the list holds one reference, `libusb_ref_device` adds one, an
//! open handle holds one.

use crate::ffi::*;
use crate::registry::SharedBoard;
use rockusb_virtual::UsbIdentity;
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The rockusb interface triple: vendor class, subclass 6, protocol 5
/// (docs/protocol.md §1.2).
const INTERFACE_CLASS: (u8, u8, u8) = (0xFF, 0x06, 0x05);
/// Bulk endpoints of the rockusb interface. Hosts read them from the descriptor, so the
/// numbers only need to be consistent with it.
pub const ENDPOINT_IN: u8 = 0x81;
pub const ENDPOINT_OUT: u8 = 0x01;
/// High-speed bulk max packet size (USB 2.0).
pub const MAX_PACKET: u16 = 512;
/// The one interface, one configuration the board has.
pub const INTERFACE: u8 = 0;
pub const CONFIGURATION: u8 = 1;

pub struct Device {
    refs: AtomicUsize,
    pub name: String,
    pub id: UsbIdentity,
}

impl Device {
    /// A new device holding one reference (the caller's).
    pub fn create(name: String, id: UsbIdentity) -> *mut Device {
        Box::into_raw(Box::new(Device {
            refs: AtomicUsize::new(1),
            name,
            id,
        }))
    }

    /// Adds a reference.
    ///
    /// # Safety
    /// `dev` must be a live device from [`Device::create`].
    pub unsafe fn add_ref(dev: *mut Device) {
        // SAFETY: the caller guarantees `dev` is live.
        unsafe { (*dev).refs.fetch_add(1, Ordering::Relaxed) };
    }

    /// Drops a reference, freeing the device with the last one.
    ///
    /// # Safety
    /// `dev` must be a live device from [`Device::create`]; the caller's reference is gone
    /// afterwards.
    pub unsafe fn release(dev: *mut Device) {
        // SAFETY: the caller guarantees `dev` is live and owns one reference.
        if unsafe { (*dev).refs.fetch_sub(1, Ordering::AcqRel) } == 1 {
            // SAFETY: that was the last reference; the box came from `create`.
            drop(unsafe { Box::from_raw(dev) });
        }
    }

    pub fn port_number(&self) -> u8 {
        self.id.ports.last().copied().unwrap_or(0)
    }

    pub fn device_descriptor(&self) -> DeviceDescriptor {
        DeviceDescriptor {
            b_length: 18,
            b_descriptor_type: 1,
            // 0x0200 in MaskROM and under the RK3588 usbplug alike (docs/protocol.md §1.4),
            // which is why rkdeveloptool lists the board as "Maskrom" in both modes.
            bcd_usb: self.id.bcd_usb,
            b_device_class: 0,
            b_device_sub_class: 0,
            b_device_protocol: 0,
            b_max_packet_size0: 64,
            id_vendor: self.id.vid,
            id_product: self.id.pid,
            bcd_device: 0x0100,
            // The BootROM has no string descriptors (docs/protocol.md §1.4).
            i_manufacturer: 0,
            i_product: 0,
            i_serial_number: 0,
            b_num_configurations: 1,
        }
    }
}

/// A configuration descriptor with everything it points to in one allocation, so
/// `libusb_free_config_descriptor` can free it from the pointer it is given. The config
/// struct comes first, so a pointer to it is a pointer to the whole block.
#[repr(C)]
pub struct ConfigBlock {
    config: ConfigDescriptor,
    interface: Interface,
    setting: InterfaceDescriptor,
    endpoints: [EndpointDescriptor; 2],
}

impl ConfigBlock {
    /// A new block, owned by the caller, returned as the `libusb_config_descriptor *`.
    pub fn create() -> *mut ConfigDescriptor {
        let endpoint = |address| EndpointDescriptor {
            b_length: 7,
            b_descriptor_type: 5,
            b_endpoint_address: address,
            bm_attributes: 2, // bulk
            w_max_packet_size: MAX_PACKET,
            b_interval: 0,
            b_refresh: 0,
            b_synch_address: 0,
            extra: ptr::null(),
            extra_length: 0,
        };
        let block = Box::into_raw(Box::new(ConfigBlock {
            config: ConfigDescriptor {
                b_length: 9,
                b_descriptor_type: 2,
                w_total_length: CONFIG_BYTES.len() as u16,
                b_num_interfaces: 1,
                b_configuration_value: CONFIGURATION,
                i_configuration: 0,
                bm_attributes: 0xC0, // self-powered
                max_power: 1,
                interface: ptr::null(),
                extra: ptr::null(),
                extra_length: 0,
            },
            interface: Interface {
                altsetting: ptr::null(),
                num_altsetting: 1,
            },
            setting: InterfaceDescriptor {
                b_length: 9,
                b_descriptor_type: 4,
                b_interface_number: INTERFACE,
                b_alternate_setting: 0,
                b_num_endpoints: 2,
                b_interface_class: INTERFACE_CLASS.0,
                b_interface_sub_class: INTERFACE_CLASS.1,
                b_interface_protocol: INTERFACE_CLASS.2,
                i_interface: 0,
                endpoint: ptr::null(),
                extra: ptr::null(),
                extra_length: 0,
            },
            endpoints: [endpoint(ENDPOINT_IN), endpoint(ENDPOINT_OUT)],
        }));
        // SAFETY: `block` was just allocated and is not shared; the pointers set here
        // point into the same allocation, which does not move until it is freed.
        unsafe {
            (*block).config.interface = &raw const (*block).interface;
            (*block).interface.altsetting = &raw const (*block).setting;
            (*block).setting.endpoint = (&raw const (*block).endpoints).cast();
        }
        block.cast()
    }

    /// Frees a block made by [`ConfigBlock::create`].
    ///
    /// # Safety
    /// `config` must come from [`ConfigBlock::create`] and not be used afterwards.
    pub unsafe fn free(config: *mut ConfigDescriptor) {
        // SAFETY: the caller guarantees it came from `create`, i.e. from a boxed block.
        drop(unsafe { Box::from_raw(config.cast::<ConfigBlock>()) });
    }
}

/// The device descriptor as bytes on the wire (GET_DESCRIPTOR, type 1).
pub fn device_descriptor_bytes(d: &DeviceDescriptor) -> Vec<u8> {
    let mut out = vec![d.b_length, d.b_descriptor_type];
    out.extend_from_slice(&d.bcd_usb.to_le_bytes());
    out.extend_from_slice(&[
        d.b_device_class,
        d.b_device_sub_class,
        d.b_device_protocol,
        d.b_max_packet_size0,
    ]);
    out.extend_from_slice(&d.id_vendor.to_le_bytes());
    out.extend_from_slice(&d.id_product.to_le_bytes());
    out.extend_from_slice(&d.bcd_device.to_le_bytes());
    out.extend_from_slice(&[
        d.i_manufacturer,
        d.i_product,
        d.i_serial_number,
        d.b_num_configurations,
    ]);
    out
}

/// The full configuration descriptor as bytes on the wire (GET_DESCRIPTOR, type 2):
/// configuration, interface, then the two bulk endpoints, as [`ConfigBlock`] describes.
#[rustfmt::skip]
pub const CONFIG_BYTES: [u8; 32] = [
    9, 2, 32, 0, 1, CONFIGURATION, 0, 0xC0, 1, // configuration
    9, 4, INTERFACE, 0, 2, INTERFACE_CLASS.0, INTERFACE_CLASS.1, INTERFACE_CLASS.2, 0,
    7, 5, ENDPOINT_IN, 2, (MAX_PACKET & 0xFF) as u8, (MAX_PACKET >> 8) as u8, 0,
    7, 5, ENDPOINT_OUT, 2, (MAX_PACKET & 0xFF) as u8, (MAX_PACKET >> 8) as u8, 0,
];

/// An open device: the board it talks to and the address it was opened at.
pub struct Handle {
    /// The device this handle holds a reference to.
    pub device: *mut Device,
    pub board: SharedBoard,
    pub address: u8,
    /// The claim on interface 0, while claimed.
    pub claim: Mutex<Option<crate::claim::Claim>>,
}
