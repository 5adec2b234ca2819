//! rockusb: Rockchip MaskROM and rockusb flashing and recovery.
//!
//! Layers, each knowing nothing of the one above it:
//! - [`protocol`]: bytes only — MaskROM framing, command and status blocks, replies;
//! - [`transport`]: moves bytes — libusb for real boards (feature `libusb`, on by default);
//!   the virtual board of the tests is the `rockusb-virtual` crate;
//! - [`client`]: runs protocol commands over a transport;
//! - [`discovery`]: finds boards and tells MaskROM from loader mode;
//! - [`ops`]: whole jobs (boot a loader, flash an image, …) reporting progress through events;
//! - [`source`]: image input for flashing: format by content, xz index, decoders;
//! - `local` (Linux): local block devices and files as flash targets (`flash --to`), and
//!   the checks that keep a flash off a disk in use.

#![forbid(unsafe_code)]

pub mod client;
pub mod discovery;
#[cfg(target_os = "linux")]
pub mod local;
pub mod ops;
pub mod positional;
pub mod protocol;
pub mod source;
pub mod transport;
