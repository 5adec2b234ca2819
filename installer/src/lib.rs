//! The Talos Linux overlay for the FriendlyElec NanoPi M6 (RK3588S).
//!
//! - [`cli`]: the `nanopi-m6` executable's overlay protocol (`get-options`, `install`).
//! - [`dtb_gate`]: refuses device trees that are not the M6's or lack its hardware.
//! - [`install`]: writes `u-boot-rockchip.bin` at byte 32768 and copies the DTB.
//! - [`oci`]: packs the overlay tree into a multi-arch OCI image archive.
//! - [`profile`]: the imager profile's validation rules.
//!
//! Every disk offset comes from [`rockusb_images::NANOPI_M6`].

#![forbid(unsafe_code)]

pub mod board;
pub mod bootloader;
pub mod cli;
pub mod disk;
pub mod dtb_gate;
pub mod dtb_install;
pub mod fdt;
pub mod gpt_guard;
pub mod install;
pub mod oci;
pub mod options;
pub mod profile;
pub mod protocol;
pub mod tar;

/// An error and its causes on one line, `outer: inner: innermost`, skipping causes
/// whose text the outer message already contains.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
