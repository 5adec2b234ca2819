//! Finding devices and reading what they look like: the device list, reference counts,
//! descriptors, bus / port / address.

use super::context::Context;
use crate::device::{CONFIGURATION, ConfigBlock, Device, MAX_PACKET};
use crate::ffi::*;
use crate::guard::{config, guard, guard_code, lock, trace};
use crate::registry;
use std::os::raw::{c_int, c_uchar};
use std::ptr;

/// `ssize_t libusb_get_device_list(libusb_context *ctx, libusb_device ***list)`: one
/// device per virtual board that is on the bus (not booted off it or powered down).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_device_list(
    _ctx: *mut Context,
    list: *mut *mut *mut Device,
) -> isize {
    guard(
        "libusb_get_device_list",
        LIBUSB_ERROR_OTHER as isize,
        || {
            if list.is_null() {
                return LIBUSB_ERROR_INVALID_PARAM as isize;
            }
            let Ok(config) = config() else {
                return LIBUSB_ERROR_OTHER as isize;
            };
            let mut devices: Vec<*mut Device> = Vec::new();
            for name in config.bus.names() {
                let board = match registry::board(config, name) {
                    Ok(board) => board,
                    Err(e) => {
                        // A board whose files cannot be read is not on the bus; say why once
                        // per enumeration rather than failing every other board with it.
                        eprintln!("rockusb libusb shim: virtual board {name}: {e}");
                        trace(format_args!("libusb_get_device_list: {name}: {e}"));
                        continue;
                    }
                };
                if let Some(id) = lock(&board).identity() {
                    devices.push(Device::create(name.clone(), id));
                }
            }
            let count = devices.len();
            trace(format_args!("libusb_get_device_list: {count} device(s)"));
            devices.push(ptr::null_mut());
            let array = Box::into_raw(devices.into_boxed_slice());
            // SAFETY: libusb's contract: `list` points to writable storage for the array.
            unsafe { *list = array.cast() };
            count as isize
        },
    )
}

/// `void libusb_free_device_list(libusb_device **list, int unref_devices)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_free_device_list(list: *mut *mut Device, unref_devices: c_int) {
    guard("libusb_free_device_list", (), || {
        if list.is_null() {
            return;
        }
        let mut len = 0;
        // SAFETY: the list came from `libusb_get_device_list`: NULL-terminated.
        while !unsafe { *list.add(len) }.is_null() {
            len += 1;
        }
        // SAFETY: it was allocated as a boxed slice of `len` devices plus the NULL.
        let array = unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(list, len + 1)) };
        if unref_devices != 0 {
            for &dev in &array[..len] {
                // SAFETY: each entry holds the list's reference to a live device.
                unsafe { Device::release(dev) };
            }
        }
    })
}

/// `libusb_device *libusb_ref_device(libusb_device *dev)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_ref_device(dev: *mut Device) -> *mut Device {
    if !dev.is_null() {
        // SAFETY: a non-NULL device from this library is live while referenced.
        unsafe { Device::add_ref(dev) };
    }
    dev
}

/// `void libusb_unref_device(libusb_device *dev)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_unref_device(dev: *mut Device) {
    if !dev.is_null() {
        // SAFETY: the caller gives up one reference it holds.
        unsafe { Device::release(dev) };
    }
}

/// Borrows a device passed in by the caller.
///
/// # Safety
/// `dev` must be NULL or a live device from this library.
unsafe fn device<'a>(dev: *mut Device) -> Option<&'a Device> {
    // SAFETY: see the function's contract.
    unsafe { dev.as_ref() }
}

/// `int libusb_get_device_descriptor(libusb_device *dev, struct libusb_device_descriptor *desc)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_device_descriptor(
    dev: *mut Device,
    desc: *mut DeviceDescriptor,
) -> c_int {
    guard_code("libusb_get_device_descriptor", || {
        // SAFETY: libusb's contract: a live device.
        let Some(device) = (unsafe { device(dev) }) else {
            return LIBUSB_ERROR_INVALID_PARAM;
        };
        if desc.is_null() {
            return LIBUSB_ERROR_INVALID_PARAM;
        }
        // SAFETY: `desc` points to writable storage for the struct.
        unsafe { desc.write(device.device_descriptor()) };
        LIBUSB_SUCCESS
    })
}

/// Hands out a new configuration descriptor.
///
/// # Safety
/// `dev` must be NULL or live; `config` NULL or writable.
unsafe fn give_config(dev: *mut Device, config: *mut *mut ConfigDescriptor) -> c_int {
    // SAFETY: forwarded contract.
    if unsafe { device(dev) }.is_none() || config.is_null() {
        return LIBUSB_ERROR_INVALID_PARAM;
    }
    // SAFETY: `config` is writable; the caller frees the block with
    // `libusb_free_config_descriptor`.
    unsafe { *config = ConfigBlock::create() };
    LIBUSB_SUCCESS
}

/// `int libusb_get_active_config_descriptor(libusb_device *dev, struct libusb_config_descriptor **config)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_active_config_descriptor(
    dev: *mut Device,
    config: *mut *mut ConfigDescriptor,
) -> c_int {
    // SAFETY: libusb's contract.
    guard_code("libusb_get_active_config_descriptor", || unsafe {
        give_config(dev, config)
    })
}

/// `int libusb_get_config_descriptor(libusb_device *dev, uint8_t config_index, ...)`:
/// there is one configuration, index 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_config_descriptor(
    dev: *mut Device,
    config_index: u8,
    config: *mut *mut ConfigDescriptor,
) -> c_int {
    guard_code("libusb_get_config_descriptor", || {
        if config_index != 0 {
            return LIBUSB_ERROR_NOT_FOUND;
        }
        // SAFETY: libusb's contract.
        unsafe { give_config(dev, config) }
    })
}

/// `int libusb_get_config_descriptor_by_value(libusb_device *dev, uint8_t bConfigurationValue, ...)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_config_descriptor_by_value(
    dev: *mut Device,
    value: u8,
    config: *mut *mut ConfigDescriptor,
) -> c_int {
    guard_code("libusb_get_config_descriptor_by_value", || {
        if value != CONFIGURATION {
            return LIBUSB_ERROR_NOT_FOUND;
        }
        // SAFETY: libusb's contract.
        unsafe { give_config(dev, config) }
    })
}

/// `void libusb_free_config_descriptor(struct libusb_config_descriptor *config)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_free_config_descriptor(config: *mut ConfigDescriptor) {
    if !config.is_null() {
        // SAFETY: descriptors are only handed out by `give_config`.
        unsafe { ConfigBlock::free(config) };
    }
}

/// `uint8_t libusb_get_bus_number(libusb_device *dev)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_bus_number(dev: *mut Device) -> u8 {
    // SAFETY: libusb's contract: a live device.
    unsafe { device(dev) }.map_or(0, |d| d.id.bus)
}

/// `uint8_t libusb_get_device_address(libusb_device *dev)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_device_address(dev: *mut Device) -> u8 {
    // SAFETY: libusb's contract: a live device.
    unsafe { device(dev) }.map_or(0, |d| d.id.address)
}

/// `uint8_t libusb_get_port_number(libusb_device *dev)`: the port on the parent hub.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_port_number(dev: *mut Device) -> u8 {
    // SAFETY: libusb's contract: a live device.
    unsafe { device(dev) }.map_or(0, Device::port_number)
}

/// `int libusb_get_port_numbers(libusb_device *dev, uint8_t *port_numbers, int port_numbers_len)`:
/// the ports from the root hub down; `LIBUSB_ERROR_OVERFLOW` when the array is too short.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_port_numbers(
    dev: *mut Device,
    port_numbers: *mut u8,
    port_numbers_len: c_int,
) -> c_int {
    guard_code("libusb_get_port_numbers", || {
        // SAFETY: libusb's contract: a live device.
        let Some(device) = (unsafe { device(dev) }) else {
            return LIBUSB_ERROR_INVALID_PARAM;
        };
        let ports = &device.id.ports;
        let Ok(room) = usize::try_from(port_numbers_len) else {
            return LIBUSB_ERROR_INVALID_PARAM;
        };
        if ports.len() > room {
            return LIBUSB_ERROR_OVERFLOW;
        }
        if port_numbers.is_null() && !ports.is_empty() {
            return LIBUSB_ERROR_INVALID_PARAM;
        }
        // SAFETY: the caller's array holds `room` >= `ports.len()` bytes.
        unsafe { ptr::copy_nonoverlapping(ports.as_ptr(), port_numbers, ports.len()) };
        ports.len() as c_int
    })
}

/// `int libusb_get_port_path(libusb_context *, libusb_device *, uint8_t *path, uint8_t len)`
/// (deprecated alias of `libusb_get_port_numbers`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_port_path(
    _ctx: *mut Context,
    dev: *mut Device,
    path: *mut u8,
    path_len: u8,
) -> c_int {
    // SAFETY: same contract as `libusb_get_port_numbers`.
    unsafe { libusb_get_port_numbers(dev, path, c_int::from(path_len)) }
}

/// `libusb_device *libusb_get_parent(libusb_device *dev)`: the root hub is not modelled.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_parent(_dev: *mut Device) -> *mut Device {
    ptr::null_mut()
}

/// `int libusb_get_device_speed(libusb_device *dev)`: SuperSpeed after the USB 3 switch,
/// high speed otherwise.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_device_speed(dev: *mut Device) -> c_int {
    // SAFETY: libusb's contract: a live device (or NULL).
    match unsafe { device(dev) } {
        Some(d) if d.id.superspeed => LIBUSB_SPEED_SUPER,
        _ => LIBUSB_SPEED_HIGH,
    }
}

/// `int libusb_get_max_packet_size(libusb_device *dev, unsigned char endpoint)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_max_packet_size(_dev: *mut Device, endpoint: c_uchar) -> c_int {
    match endpoint {
        crate::device::ENDPOINT_IN | crate::device::ENDPOINT_OUT => c_int::from(MAX_PACKET),
        _ => LIBUSB_ERROR_NOT_FOUND,
    }
}
