//! Transfers: vendor control OUT for MaskROM downloads, bulk for the rockusb commands.
//!
//! Each synchronous libusb call is one call into the board. The board answers at once;
//! where a real device would stay silent (the BootROM's bulk endpoints, a reply that
//! never comes) it reports a timeout straight away instead of after the caller's
//! timeout. That also covers rkdeveloptool's timeout 0 ("wait forever"), which on a
//! silent device would hang; a prompt LIBUSB_ERROR_TIMEOUT is more useful to a test.

use super::handle::handle;
use crate::device::{self, ENDPOINT_IN, ENDPOINT_OUT, Handle};
use crate::ffi::*;
use crate::guard::{guard_code, lock, trace, transport_code};
use rockusb::protocol::ControlSetup;
use std::os::raw::{c_int, c_uchar, c_uint, c_void};
use std::ptr;

/// Standard request GET_DESCRIPTOR, device-to-host.
const GET_DESCRIPTOR: (u8, u8) = (0x80, 0x06);

/// `int libusb_control_transfer(libusb_device_handle *, uint8_t bmRequestType, uint8_t bRequest,
/// uint16_t wValue, uint16_t wIndex, unsigned char *data, uint16_t wLength, unsigned int timeout)`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // libusb's signature
pub unsafe extern "C" fn libusb_control_transfer(
    dev_handle: *mut Handle,
    request_type: u8,
    request: u8,
    value: u16,
    index: u16,
    data: *mut c_uchar,
    length: u16,
    _timeout: c_uint,
) -> c_int {
    guard_code("libusb_control_transfer", || {
        // SAFETY: libusb's contract: an open handle.
        let Some(handle) = (unsafe { handle(dev_handle) }) else {
            return LIBUSB_ERROR_INVALID_PARAM;
        };
        if data.is_null() && length > 0 {
            return LIBUSB_ERROR_INVALID_PARAM;
        }
        let len = usize::from(length);
        if request_type & 0x80 != 0 {
            // SAFETY: `data` holds `length` writable bytes (libusb's contract).
            let buf = unsafe { slice_mut(data, len) };
            return control_in(handle, (request_type, request), value, buf);
        }
        // SAFETY: `data` holds `length` readable bytes (libusb's contract).
        let payload = unsafe { slice_mut(data, len) };
        let setup = ControlSetup {
            request_type,
            request,
            value,
            index,
        };
        match lock(&handle.board).control_out(handle.address, setup, payload) {
            Ok(n) => n as c_int,
            Err(e) => {
                trace(format_args!(
                    "control OUT {request_type:02x}/{request:02x} index {index:04x}: {e}"
                ));
                transport_code(&e)
            }
        }
    })
}

/// The control IN requests a device answers without its firmware's help: the device and
/// configuration descriptors. Anything else stalls, as on a device that lacks it.
fn control_in(handle: &Handle, request: (u8, u8), value: u16, buf: &mut [u8]) -> c_int {
    if lock(&handle.board).identity().map(|id| id.address) != Some(handle.address) {
        return LIBUSB_ERROR_NO_DEVICE;
    }
    if request != GET_DESCRIPTOR {
        return LIBUSB_ERROR_PIPE;
    }
    // SAFETY: the handle holds a reference to its device.
    let dev = unsafe { &*handle.device };
    let bytes = match value >> 8 {
        1 => device::device_descriptor_bytes(&dev.device_descriptor()),
        2 if value & 0xFF == 0 => device::CONFIG_BYTES.to_vec(),
        _ => return LIBUSB_ERROR_PIPE,
    };
    let n = bytes.len().min(buf.len());
    buf[..n].copy_from_slice(&bytes[..n]);
    n as c_int
}

/// A caller's buffer as a slice (empty for length 0, whatever the pointer).
///
/// # Safety
/// When `len > 0`, `data` must point to `len` bytes valid for reads and writes.
unsafe fn slice_mut<'a>(data: *mut c_uchar, len: usize) -> &'a mut [u8] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: see the function's contract.
    unsafe { std::slice::from_raw_parts_mut(data, len) }
}

/// `int libusb_bulk_transfer(libusb_device_handle *, unsigned char endpoint, unsigned char *data,
/// int length, int *transferred, unsigned int timeout)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_bulk_transfer(
    dev_handle: *mut Handle,
    endpoint: c_uchar,
    data: *mut c_uchar,
    length: c_int,
    transferred: *mut c_int,
    _timeout: c_uint,
) -> c_int {
    guard_code("libusb_bulk_transfer", || {
        // SAFETY: libusb's contract: an open handle.
        let Some(handle) = (unsafe { handle(dev_handle) }) else {
            return LIBUSB_ERROR_INVALID_PARAM;
        };
        let Ok(len) = usize::try_from(length) else {
            return LIBUSB_ERROR_INVALID_PARAM;
        };
        if data.is_null() && len > 0 {
            return LIBUSB_ERROR_INVALID_PARAM;
        }
        if !transferred.is_null() {
            // SAFETY: a non-NULL `transferred` is writable (libusb's contract).
            unsafe { *transferred = 0 };
        }
        // SAFETY: `data` holds `length` bytes (libusb's contract).
        let buf = unsafe { slice_mut(data, len) };
        let mut board = lock(&handle.board);
        let result = match endpoint {
            ENDPOINT_IN => board.bulk_in(handle.address, buf),
            ENDPOINT_OUT => board.bulk_out(handle.address, buf),
            // libusb reports a submit that usbfs refuses (other than ENODEV/ENOMEM) as IO.
            _ => return LIBUSB_ERROR_IO,
        };
        drop(board);
        match result {
            Ok(n) => {
                if !transferred.is_null() {
                    // SAFETY: as above.
                    unsafe { *transferred = n as c_int };
                }
                LIBUSB_SUCCESS
            }
            Err(e) => {
                trace(format_args!("bulk {endpoint:02x} ({len} bytes): {e}"));
                transport_code(&e)
            }
        }
    })
}

/// `int libusb_interrupt_transfer(...)`: the rockusb interface has no interrupt endpoint.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_interrupt_transfer(
    _dev_handle: *mut Handle,
    _endpoint: c_uchar,
    _data: *mut c_uchar,
    _length: c_int,
    transferred: *mut c_int,
    _timeout: c_uint,
) -> c_int {
    if !transferred.is_null() {
        // SAFETY: a non-NULL `transferred` is writable (libusb's contract).
        unsafe { *transferred = 0 };
    }
    LIBUSB_ERROR_NOT_FOUND
}

/// `struct libusb_transfer *libusb_alloc_transfer(int iso_packets)`: the asynchronous API
/// is not offered; NULL tells the caller so (libusb's out-of-memory answer).
#[unsafe(no_mangle)]
pub extern "C" fn libusb_alloc_transfer(_iso_packets: c_int) -> *mut c_void {
    ptr::null_mut()
}

/// `void libusb_free_transfer(struct libusb_transfer *)`: nothing was ever allocated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_free_transfer(_transfer: *mut c_void) {}

/// `int libusb_submit_transfer(struct libusb_transfer *)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_submit_transfer(_transfer: *mut c_void) -> c_int {
    LIBUSB_ERROR_NOT_SUPPORTED
}

/// `int libusb_cancel_transfer(struct libusb_transfer *)`: never submitted, so not found.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_cancel_transfer(_transfer: *mut c_void) -> c_int {
    LIBUSB_ERROR_NOT_FOUND
}
