//! The FFI boundary: no panic may cross into C (it would abort the host program), every
//! failure becomes a libusb error code, and the optional trace file records what happened.

use crate::config::ShimConfig;
use crate::ffi::*;
use rockusb::transport::TransportError;
use std::io::Write;
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Runs `f`, turning a panic into `on_panic` (after saying so on stderr).
pub fn guard<T>(name: &str, on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(_) => {
            eprintln!("rockusb libusb shim: internal error in {name}; reporting a libusb error");
            trace(format_args!("{name}: PANIC"));
            on_panic
        }
    }
}

/// Runs a call that returns a libusb status code.
pub fn guard_code(name: &str, f: impl FnOnce() -> c_int) -> c_int {
    guard(name, LIBUSB_ERROR_OTHER, f)
}

/// The libusb code for a failed transfer. The virtual board speaks libusb's terms already
/// (`TransportError` mirrors them); `Other` is an I/O failure of its backing files.
pub fn transport_code(error: &TransportError) -> c_int {
    match error {
        TransportError::Timeout => LIBUSB_ERROR_TIMEOUT,
        TransportError::Stall => LIBUSB_ERROR_PIPE,
        TransportError::Overflow => LIBUSB_ERROR_OVERFLOW,
        TransportError::Disconnected | TransportError::BackInMaskrom => LIBUSB_ERROR_NO_DEVICE,
        TransportError::Access => LIBUSB_ERROR_ACCESS,
        TransportError::Busy => LIBUSB_ERROR_BUSY,
        TransportError::NoWinUsbDriver { .. } => LIBUSB_ERROR_NOT_SUPPORTED,
        TransportError::Other(_) => LIBUSB_ERROR_IO,
    }
}

/// Locks a mutex even if a panic (caught by [`guard`]) poisoned it: the data behind it
/// is a board whose every state change is saved as it happens, so it stays consistent.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The process's configuration, read once; `Err` holds the message for a bad variable.
pub fn config() -> Result<&'static ShimConfig, &'static str> {
    static CONFIG: OnceLock<Result<ShimConfig, String>> = OnceLock::new();
    match CONFIG.get_or_init(|| {
        let config = ShimConfig::from_env();
        match &config {
            Ok(c) if c.bus.names().is_empty() => eprintln!(
                "rockusb libusb shim: no virtual boards on the bus; name them in {} (or {})",
                crate::config::ENV_BOARDS,
                rockusb_virtual::bus::ENV_BOARDS
            ),
            Ok(_) => {}
            Err(why) => eprintln!("rockusb libusb shim: {why}"),
        }
        config
    }) {
        Ok(config) => Ok(config),
        Err(why) => Err(why.as_str()),
    }
}

/// Appends one line to the trace file, if there is one. Tracing never fails a call.
pub fn trace(line: std::fmt::Arguments<'_>) {
    static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = config().ok()?.trace.as_ref()?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(Mutex::new)
    });
    if let Some(file) = file {
        let _ = writeln!(lock(file), "{} {line}", std::process::id());
    }
}
