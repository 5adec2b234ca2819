//! How a flash checks what it wrote: by reading it back over the link (the default), by
//! letting the loader re-read each write from the medium against its write parity
//! (docs/protocol.md §9.1), or not at all.
//!
//! Write parity halves what crosses the link on a verified flash, but it is modelled from
//! the vendor U-Boot source and the rkbin usbplug's capability bit, not yet confirmed on a
//! board; so read-back stays the default, and `device` falls back to read-back, with a
//! warning saying why, on a loader that does not offer parity.

use crate::client::{Client, CommandError};
use crate::transport::Transport;
use serde::Serialize;

/// The verification a flash is asked for (`--verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMode {
    /// Read every written range back and compare digests.
    #[default]
    Readback,
    /// Send each write with its parity; the loader re-reads it from the medium and fails
    /// the command on a mismatch.
    Device,
    /// No check.
    None,
}

/// The verification the loader allows for `requested`, and the warning to give when it
/// is not the one asked for.
pub fn resolve<T: Transport>(
    client: &mut Client<T>,
    requested: VerifyMode,
) -> Result<(VerifyMode, Option<String>), CommandError> {
    if requested != VerifyMode::Device {
        return Ok((requested, None));
    }
    let why = match client.capability() {
        Ok(cap) if cap.lba_write_parity() => return Ok((VerifyMode::Device, None)),
        Ok(_) => "the loader does not offer write parity (its capability lacks byte 1 bit 2)",
        // Mainline U-Boot's rockusb has no capability command, and no parity.
        Err(CommandError::Unsupported { .. }) => {
            "the loader does not report its capabilities (mainline U-Boot's rockusb), so it \
             has no write parity"
        }
        Err(e) => return Err(e),
    };
    Ok((
        VerifyMode::Readback,
        Some(format!(
            "--verify device: {why}; verifying by reading back instead"
        )),
    ))
}
