//! The Talos Linux overlay for the FriendlyElec NanoPi M6 (RK3588S).
//!
//! - [`cli`]: the `nanopi-m6` executable's overlay protocol (`get-options`, `install`).
//! - [`dtb_gate`]: refuses device trees that are not the M6's or lack its hardware.
//! - [`install`]: writes `u-boot-rockchip.bin` at byte 32768 and copies the DTB.
//! - [`oci`]: packs the overlay tree into a multi-arch OCI image archive.
//! - [`profile`]: the imager profile's validation rules.
//!
//! Every disk offset comes from [`rockusb_images::NANOPI_M6`].
//!
//! The overlay itself (the installer's protocol, the disk writer, the OCI packer) is the
//! `overlay` feature, on by default; its disk and file-mode parts build on Unix only, as the
//! installer and the packer run on Linux (a Talos node, the imager, a build machine). The
//! checks `rockusb image adapt` borrows ([`bootloader`], [`dtb_gate`]) build everywhere
//! rockusb does, Windows included, and without the feature.

#![forbid(unsafe_code)]

pub mod board;
pub mod bootloader;
#[cfg(all(unix, feature = "overlay"))]
pub mod cli;
#[cfg(all(unix, feature = "overlay"))]
pub mod disk;
pub mod dtb_gate;
#[cfg(all(unix, feature = "overlay"))]
pub mod dtb_install;
pub mod fdt;
#[cfg(all(unix, feature = "overlay"))]
pub mod gpt_guard;
#[cfg(all(unix, feature = "overlay"))]
pub mod install;
#[cfg(all(unix, feature = "overlay"))]
pub mod oci;
#[cfg(feature = "overlay")]
pub mod options;
#[cfg(feature = "overlay")]
pub mod profile;
#[cfg(feature = "overlay")]
pub mod protocol;
#[cfg(feature = "overlay")]
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
