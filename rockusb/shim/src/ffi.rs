//! The parts of libusb-1.0's C interface the shim implements: error codes and the
//! descriptor structs, laid out exactly as `libusb.h` declares them (libusb 1.0.26).

use std::os::raw::{c_int, c_uchar};

pub const LIBUSB_SUCCESS: c_int = 0;
pub const LIBUSB_ERROR_IO: c_int = -1;
pub const LIBUSB_ERROR_INVALID_PARAM: c_int = -2;
pub const LIBUSB_ERROR_ACCESS: c_int = -3;
pub const LIBUSB_ERROR_NO_DEVICE: c_int = -4;
pub const LIBUSB_ERROR_NOT_FOUND: c_int = -5;
pub const LIBUSB_ERROR_BUSY: c_int = -6;
pub const LIBUSB_ERROR_TIMEOUT: c_int = -7;
pub const LIBUSB_ERROR_OVERFLOW: c_int = -8;
pub const LIBUSB_ERROR_PIPE: c_int = -9;
pub const LIBUSB_ERROR_INTERRUPTED: c_int = -10;
pub const LIBUSB_ERROR_NO_MEM: c_int = -11;
pub const LIBUSB_ERROR_NOT_SUPPORTED: c_int = -12;
pub const LIBUSB_ERROR_OTHER: c_int = -99;

/// `enum libusb_speed`: boards are high-speed devices (USB 2.0, docs/protocol.md §6.3) until a
/// loader switches to SuperSpeed (§9.2).
pub const LIBUSB_SPEED_HIGH: c_int = 3;
pub const LIBUSB_SPEED_SUPER: c_int = 4;

/// The name libusb gives an error code (`libusb_error_name`).
pub fn error_name(code: c_int) -> &'static str {
    match code {
        LIBUSB_SUCCESS => "LIBUSB_SUCCESS\0",
        LIBUSB_ERROR_IO => "LIBUSB_ERROR_IO\0",
        LIBUSB_ERROR_INVALID_PARAM => "LIBUSB_ERROR_INVALID_PARAM\0",
        LIBUSB_ERROR_ACCESS => "LIBUSB_ERROR_ACCESS\0",
        LIBUSB_ERROR_NO_DEVICE => "LIBUSB_ERROR_NO_DEVICE\0",
        LIBUSB_ERROR_NOT_FOUND => "LIBUSB_ERROR_NOT_FOUND\0",
        LIBUSB_ERROR_BUSY => "LIBUSB_ERROR_BUSY\0",
        LIBUSB_ERROR_TIMEOUT => "LIBUSB_ERROR_TIMEOUT\0",
        LIBUSB_ERROR_OVERFLOW => "LIBUSB_ERROR_OVERFLOW\0",
        LIBUSB_ERROR_PIPE => "LIBUSB_ERROR_PIPE\0",
        LIBUSB_ERROR_INTERRUPTED => "LIBUSB_ERROR_INTERRUPTED\0",
        LIBUSB_ERROR_NO_MEM => "LIBUSB_ERROR_NO_MEM\0",
        LIBUSB_ERROR_NOT_SUPPORTED => "LIBUSB_ERROR_NOT_SUPPORTED\0",
        _ => "LIBUSB_ERROR_OTHER\0",
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DeviceDescriptor {
    pub b_length: u8,
    pub b_descriptor_type: u8,
    pub bcd_usb: u16,
    pub b_device_class: u8,
    pub b_device_sub_class: u8,
    pub b_device_protocol: u8,
    pub b_max_packet_size0: u8,
    pub id_vendor: u16,
    pub id_product: u16,
    pub bcd_device: u16,
    pub i_manufacturer: u8,
    pub i_product: u8,
    pub i_serial_number: u8,
    pub b_num_configurations: u8,
}

#[repr(C)]
#[derive(Debug)]
pub struct EndpointDescriptor {
    pub b_length: u8,
    pub b_descriptor_type: u8,
    pub b_endpoint_address: u8,
    pub bm_attributes: u8,
    pub w_max_packet_size: u16,
    pub b_interval: u8,
    pub b_refresh: u8,
    pub b_synch_address: u8,
    pub extra: *const c_uchar,
    pub extra_length: c_int,
}

#[repr(C)]
#[derive(Debug)]
pub struct InterfaceDescriptor {
    pub b_length: u8,
    pub b_descriptor_type: u8,
    pub b_interface_number: u8,
    pub b_alternate_setting: u8,
    pub b_num_endpoints: u8,
    pub b_interface_class: u8,
    pub b_interface_sub_class: u8,
    pub b_interface_protocol: u8,
    pub i_interface: u8,
    pub endpoint: *const EndpointDescriptor,
    pub extra: *const c_uchar,
    pub extra_length: c_int,
}

#[repr(C)]
#[derive(Debug)]
pub struct Interface {
    pub altsetting: *const InterfaceDescriptor,
    pub num_altsetting: c_int,
}

#[repr(C)]
#[derive(Debug)]
pub struct ConfigDescriptor {
    pub b_length: u8,
    pub b_descriptor_type: u8,
    pub w_total_length: u16,
    pub b_num_interfaces: u8,
    pub b_configuration_value: u8,
    pub i_configuration: u8,
    pub bm_attributes: u8,
    pub max_power: u8,
    pub interface: *const Interface,
    pub extra: *const c_uchar,
    pub extra_length: c_int,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// Offsets a C compiler gives the libusb.h structs on LP64 targets.
    #[test]
    fn layouts_match_libusb_h() {
        assert_eq!(size_of::<DeviceDescriptor>(), 18);
        assert_eq!(offset_of!(DeviceDescriptor, id_vendor), 8);
        assert_eq!(offset_of!(DeviceDescriptor, b_num_configurations), 17);
        assert_eq!(offset_of!(EndpointDescriptor, w_max_packet_size), 4);
        assert_eq!(offset_of!(EndpointDescriptor, extra), 16);
        assert_eq!(size_of::<EndpointDescriptor>(), 32);
        assert_eq!(offset_of!(InterfaceDescriptor, endpoint), 16);
        assert_eq!(size_of::<InterfaceDescriptor>(), 40);
        assert_eq!(size_of::<Interface>(), 16);
        assert_eq!(offset_of!(ConfigDescriptor, interface), 16);
        assert_eq!(size_of::<ConfigDescriptor>(), 40);
    }
}
