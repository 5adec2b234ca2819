//! Library set-up and the calls that describe libusb itself.

use crate::ffi::*;
use crate::guard::{config, guard, guard_code, trace};
use std::os::raw::{c_char, c_int, c_void};

/// A `libusb_context`. The shim keeps no per-context state (the boards are per process,
/// see [`crate::registry`]); a context only has to be a distinct pointer to free.
pub struct Context {
    _private: u8,
}

/// `int libusb_init(libusb_context **ctx)`. Fails with `LIBUSB_ERROR_OTHER` when a shim
/// environment variable is malformed (the message is on stderr).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_init(ctx: *mut *mut Context) -> c_int {
    guard_code("libusb_init", || {
        if let Err(why) = config() {
            trace(format_args!("libusb_init: bad environment: {why}"));
            return LIBUSB_ERROR_OTHER;
        }
        trace(format_args!("libusb_init"));
        if !ctx.is_null() {
            let context = Box::into_raw(Box::new(Context { _private: 0 }));
            // SAFETY: libusb's contract: `ctx`, when not NULL, points to writable storage.
            unsafe { *ctx = context };
        }
        LIBUSB_SUCCESS
    })
}

/// `int libusb_init_context(libusb_context **ctx, const struct libusb_init_option options[], int num_options)`
/// (libusb 1.0.27): as `libusb_init`; the options (log level, Windows back-ends) change
/// nothing here.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_init_context(
    ctx: *mut *mut Context,
    _options: *const c_void,
    _num_options: c_int,
) -> c_int {
    // SAFETY: same contract as `libusb_init`.
    unsafe { libusb_init(ctx) }
}

/// `void libusb_exit(libusb_context *ctx)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_exit(ctx: *mut Context) {
    guard("libusb_exit", (), || {
        trace(format_args!("libusb_exit"));
        if !ctx.is_null() {
            // SAFETY: a non-NULL context comes from `libusb_init` and is exited once.
            drop(unsafe { Box::from_raw(ctx) });
        }
    })
}

/// `int libusb_set_option(libusb_context *ctx, enum libusb_option option, ...)`. Options
/// (log level, Windows back-ends) change nothing here. Declared without the variadic
/// part: the callee never reads it, and on the System V ABIs that is call-compatible.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_set_option(_ctx: *mut Context, _option: c_int) -> c_int {
    LIBUSB_SUCCESS
}

/// `void libusb_set_debug(libusb_context *ctx, int level)` (deprecated): nothing to log.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_set_debug(_ctx: *mut Context, _level: c_int) {}

/// `int libusb_has_capability(uint32_t capability)`: none of the optional ones (hotplug,
/// HID access, detaching kernel drivers) is offered.
#[unsafe(no_mangle)]
pub extern "C" fn libusb_has_capability(_capability: u32) -> c_int {
    0
}

/// `const char *libusb_error_name(int code)`.
#[unsafe(no_mangle)]
pub extern "C" fn libusb_error_name(code: c_int) -> *const c_char {
    error_name(code).as_ptr().cast()
}

/// `const char *libusb_strerror(int code)`: the names double as messages.
#[unsafe(no_mangle)]
pub extern "C" fn libusb_strerror(code: c_int) -> *const c_char {
    error_name(code).as_ptr().cast()
}

/// `struct libusb_version`.
#[repr(C)]
pub struct Version {
    major: u16,
    minor: u16,
    micro: u16,
    nano: u16,
    rc: *const c_char,
    describe: *const c_char,
}

struct StaticVersion(Version);
// SAFETY: the pointers are to static, immutable strings.
unsafe impl Sync for StaticVersion {}

static VERSION: StaticVersion = StaticVersion(Version {
    major: 1,
    minor: 0,
    micro: 26,
    nano: 0,
    rc: c"".as_ptr(),
    describe: c"rockusb libusb shim (virtual boards)".as_ptr(),
});

/// `const struct libusb_version *libusb_get_version(void)`: the libusb API level the
/// shim implements (Debian 12's 1.0.26).
#[unsafe(no_mangle)]
pub extern "C" fn libusb_get_version() -> *const Version {
    &VERSION.0
}

/// `int libusb_hotplug_register_callback(...)`: no hotplug events (virtual boards appear
/// and vanish between enumerations, which callers poll for anyway).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_hotplug_register_callback(_ctx: *mut Context) -> c_int {
    LIBUSB_ERROR_NOT_SUPPORTED
}

/// `void libusb_hotplug_deregister_callback(libusb_context *, int)`: nothing registered.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_hotplug_deregister_callback(_ctx: *mut Context, _handle: c_int) {}

/// Event handling for the asynchronous API, which the shim does not offer: there is never
/// an event to handle, so these return at once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_handle_events(_ctx: *mut Context) -> c_int {
    LIBUSB_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_handle_events_completed(
    _ctx: *mut Context,
    _completed: *mut c_int,
) -> c_int {
    LIBUSB_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_handle_events_timeout(
    _ctx: *mut Context,
    _tv: *const c_void,
) -> c_int {
    LIBUSB_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn libusb_handle_events_timeout_completed(
    _ctx: *mut Context,
    _tv: *const c_void,
    _completed: *mut c_int,
) -> c_int {
    LIBUSB_SUCCESS
}
