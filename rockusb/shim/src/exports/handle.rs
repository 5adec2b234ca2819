//! Opening a device and the calls on an open handle that are not transfers.

use super::context::Context;
use crate::device::{CONFIGURATION, Device, Handle, INTERFACE};
use crate::ffi::*;
use crate::guard::{config, guard, guard_code, lock, trace, transport_code};
use crate::registry;
use std::os::raw::{c_int, c_uchar};
use std::ptr;
use std::sync::Mutex;

/// `int libusb_open(libusb_device *dev, libusb_device_handle **dev_handle)`. Fails with
/// `LIBUSB_ERROR_NO_DEVICE` when the board has left the bus or re-enumerated since `dev`
/// was listed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_open(dev: *mut Device, dev_handle: *mut *mut Handle) -> c_int {
    guard_code("libusb_open", || {
        // SAFETY: libusb's contract: a live device.
        let Some(device) = (unsafe { dev.as_ref() }) else {
            return LIBUSB_ERROR_INVALID_PARAM;
        };
        if dev_handle.is_null() {
            return LIBUSB_ERROR_INVALID_PARAM;
        }
        let Ok(config) = config() else {
            return LIBUSB_ERROR_OTHER;
        };
        let board = match registry::board(config, &device.name) {
            Ok(board) => board,
            Err(e) => {
                trace(format_args!("libusb_open {}: {e}", device.name));
                return LIBUSB_ERROR_IO;
            }
        };
        let now = lock(&board).identity().map(|id| id.address);
        if now != Some(device.id.address) {
            trace(format_args!(
                "libusb_open {} @{}: gone (now {now:?})",
                device.name, device.id.address
            ));
            return LIBUSB_ERROR_NO_DEVICE;
        }
        trace(format_args!(
            "libusb_open {} @{}",
            device.name, device.id.address
        ));
        // SAFETY: the handle holds its own reference to the device until closed.
        unsafe { Device::add_ref(dev) };
        let handle = Box::new(Handle {
            device: dev,
            board,
            address: device.id.address,
            claim: Mutex::new(None),
        });
        // SAFETY: `dev_handle` points to writable storage.
        unsafe { *dev_handle = Box::into_raw(handle) };
        LIBUSB_SUCCESS
    })
}

/// `void libusb_close(libusb_device_handle *dev_handle)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_close(dev_handle: *mut Handle) {
    guard("libusb_close", (), || {
        if dev_handle.is_null() {
            return;
        }
        // SAFETY: handles come from `libusb_open` and are closed once.
        let handle = unsafe { Box::from_raw(dev_handle) };
        // SAFETY: the handle's reference to its device is released with it.
        unsafe { Device::release(handle.device) };
    })
}

/// Borrows an open handle passed in by the caller.
///
/// # Safety
/// `dev_handle` must be NULL or an open handle from `libusb_open`.
pub(super) unsafe fn handle<'a>(dev_handle: *mut Handle) -> Option<&'a Handle> {
    // SAFETY: see the function's contract.
    unsafe { dev_handle.as_ref() }
}

/// `libusb_device *libusb_get_device(libusb_device_handle *dev_handle)` (no new reference).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_device(dev_handle: *mut Handle) -> *mut Device {
    // SAFETY: libusb's contract: an open handle.
    unsafe { handle(dev_handle) }.map_or(ptr::null_mut(), |h| h.device)
}

/// `libusb_device_handle *libusb_open_device_with_vid_pid(libusb_context *, uint16_t, uint16_t)`:
/// the first board on the bus with that identity, or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_open_device_with_vid_pid(
    ctx: *mut Context,
    vid: u16,
    pid: u16,
) -> *mut Handle {
    guard("libusb_open_device_with_vid_pid", ptr::null_mut(), || {
        let mut list = ptr::null_mut();
        // SAFETY: our own list functions, used as libusb documents them.
        unsafe {
            let count = super::enumerate::libusb_get_device_list(ctx, &mut list);
            let mut opened = ptr::null_mut();
            for i in 0..usize::try_from(count).unwrap_or(0) {
                let dev = *list.add(i);
                let id = &(*dev).id;
                if id.vid == vid && id.pid == pid && libusb_open(dev, &mut opened) == 0 {
                    break;
                }
            }
            super::enumerate::libusb_free_device_list(list, 1);
            opened
        }
    })
}

/// Claims or releases interface `number`.
fn set_claimed(dev_handle: *mut Handle, number: c_int, claim: bool) -> c_int {
    // SAFETY: libusb's contract: an open handle.
    let Some(handle) = (unsafe { handle(dev_handle) }) else {
        return LIBUSB_ERROR_INVALID_PARAM;
    };
    if number != c_int::from(INTERFACE) {
        return LIBUSB_ERROR_NOT_FOUND;
    }
    let mut held = lock(&handle.claim);
    if !claim {
        // libusb: releasing an interface that is not claimed is LIBUSB_ERROR_NOT_FOUND.
        return match held.take() {
            Some(_) => LIBUSB_SUCCESS,
            None => LIBUSB_ERROR_NOT_FOUND,
        };
    }
    if held.is_some() {
        return LIBUSB_SUCCESS; // libusb: claiming again through the same handle is a no-op
    }
    let dir = lock(&handle.board).dir().to_path_buf();
    match crate::claim::try_claim(&dir, handle.address) {
        Ok(Some(claim)) => {
            *held = Some(claim);
            LIBUSB_SUCCESS
        }
        Ok(None) => {
            trace(format_args!("claim {}: busy", dir.display()));
            LIBUSB_ERROR_BUSY
        }
        Err(e) => {
            trace(format_args!("claim {}: {e}", dir.display()));
            LIBUSB_ERROR_IO
        }
    }
}

/// `int libusb_claim_interface(libusb_device_handle *dev_handle, int interface_number)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_claim_interface(dev_handle: *mut Handle, number: c_int) -> c_int {
    guard_code("libusb_claim_interface", || {
        set_claimed(dev_handle, number, true)
    })
}

/// `int libusb_release_interface(libusb_device_handle *dev_handle, int interface_number)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_release_interface(dev_handle: *mut Handle, number: c_int) -> c_int {
    guard_code("libusb_release_interface", || {
        set_claimed(dev_handle, number, false)
    })
}

/// `int libusb_set_interface_alt_setting(libusb_device_handle *, int interface_number, int alternate_setting)`:
/// the interface has alternate setting 0 only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_set_interface_alt_setting(
    dev_handle: *mut Handle,
    number: c_int,
    setting: c_int,
) -> c_int {
    // SAFETY: libusb's contract: an open handle.
    if unsafe { handle(dev_handle) }.is_none() {
        return LIBUSB_ERROR_INVALID_PARAM;
    }
    if number == c_int::from(INTERFACE) && setting == 0 {
        LIBUSB_SUCCESS
    } else {
        LIBUSB_ERROR_NOT_FOUND
    }
}

/// `int libusb_get_configuration(libusb_device_handle *dev_handle, int *config)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_configuration(
    dev_handle: *mut Handle,
    config: *mut c_int,
) -> c_int {
    // SAFETY: libusb's contract: an open handle and writable `config`.
    if unsafe { handle(dev_handle) }.is_none() || config.is_null() {
        return LIBUSB_ERROR_INVALID_PARAM;
    }
    // SAFETY: checked non-NULL; the caller provides the storage.
    unsafe { *config = c_int::from(CONFIGURATION) };
    LIBUSB_SUCCESS
}

/// `int libusb_set_configuration(libusb_device_handle *dev_handle, int configuration)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_set_configuration(
    dev_handle: *mut Handle,
    configuration: c_int,
) -> c_int {
    // SAFETY: libusb's contract: an open handle.
    if unsafe { handle(dev_handle) }.is_none() {
        return LIBUSB_ERROR_INVALID_PARAM;
    }
    if configuration == c_int::from(CONFIGURATION) {
        LIBUSB_SUCCESS
    } else {
        LIBUSB_ERROR_NOT_FOUND
    }
}

/// `int libusb_set_auto_detach_kernel_driver(libusb_device_handle *, int enable)`: no
/// kernel driver ever binds a virtual board, so there is nothing to detach.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_set_auto_detach_kernel_driver(
    _dev_handle: *mut Handle,
    _enable: c_int,
) -> c_int {
    LIBUSB_SUCCESS
}

/// `int libusb_kernel_driver_active(libusb_device_handle *, int interface_number)`: 0, none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_kernel_driver_active(
    _dev_handle: *mut Handle,
    _number: c_int,
) -> c_int {
    0
}

/// `int libusb_detach_kernel_driver(...)`: libusb says NOT_FOUND when no driver is active.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_detach_kernel_driver(
    _dev_handle: *mut Handle,
    _number: c_int,
) -> c_int {
    LIBUSB_ERROR_NOT_FOUND
}

/// `int libusb_attach_kernel_driver(...)`: there is no driver to re-attach.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_attach_kernel_driver(
    _dev_handle: *mut Handle,
    _number: c_int,
) -> c_int {
    LIBUSB_ERROR_NOT_FOUND
}

/// Clears the board's bulk state, as a port reset or a clear-halt does on the device.
fn recover(name: &str, dev_handle: *mut Handle) -> c_int {
    // SAFETY: libusb's contract: an open handle.
    let Some(handle) = (unsafe { handle(dev_handle) }) else {
        return LIBUSB_ERROR_INVALID_PARAM;
    };
    match lock(&handle.board).recover(handle.address) {
        Ok(()) => LIBUSB_SUCCESS,
        Err(e) => {
            trace(format_args!("{name}: {e}"));
            transport_code(&e)
        }
    }
}

/// `int libusb_reset_device(libusb_device_handle *dev_handle)`: a port reset. The board
/// keeps its address (its descriptors do not change), so the handle stays valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_reset_device(dev_handle: *mut Handle) -> c_int {
    guard_code("libusb_reset_device", || {
        recover("libusb_reset_device", dev_handle)
    })
}

/// `int libusb_clear_halt(libusb_device_handle *dev_handle, unsigned char endpoint)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_clear_halt(dev_handle: *mut Handle, endpoint: c_uchar) -> c_int {
    guard_code("libusb_clear_halt", || {
        if endpoint != crate::device::ENDPOINT_IN && endpoint != crate::device::ENDPOINT_OUT {
            return LIBUSB_ERROR_NOT_FOUND;
        }
        recover("libusb_clear_halt", dev_handle)
    })
}

/// `int libusb_get_string_descriptor_ascii(libusb_device_handle *, uint8_t desc_index, unsigned char *data, int length)`:
/// the board has no strings (the BootROM has none, docs/protocol.md §1.4), so the request
/// stalls.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_get_string_descriptor_ascii(
    _dev_handle: *mut Handle,
    _index: u8,
    _data: *mut c_uchar,
    _length: c_int,
) -> c_int {
    LIBUSB_ERROR_PIPE
}
