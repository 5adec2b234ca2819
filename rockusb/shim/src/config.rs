//! What the shim serves, read from the environment once per process.
//!
//! - `ROCKUSB_SHIM_BOARDS`: comma-separated board names. Falls back to `ROCKUSB_VIRTUAL`,
//!   the variable `rockusb --virtual` reads, so both see the same boards. The shim has its
//!   own variable because a `rockusb` run through the shim must have `ROCKUSB_VIRTUAL`
//!   unset (or it would talk to the boards in-process and never call libusb). `NAME@HUB`
//!   puts a board behind a virtual hub, as `--virtual` does (see `rockusb_virtual::bus`).
//! - `ROCKUSB_SHIM_DIR`: the folder holding the boards. Falls back to
//!   `ROCKUSB_VIRTUAL_DIR`, then `$XDG_STATE_HOME/rockusb/virtual`, as the CLI does.
//! - `ROCKUSB_SHIM_LINK`: `usb2` turns the USB 2.0 link model on (40 MB/s, 0.5 ms per
//!   command), `off` turns it off, `RATE,OVERHEAD` (bytes per second, seconds per command)
//!   sets both. It is stored in each board's config.json, as the board's own setting. Unset:
//!   the boards keep what their config says (off unless set).
//! - `ROCKUSB_SHIM_PERSONALITY`: what answers after a usbplug upload on boards the shim
//!   creates (`usbplug`, the default, `uboot-usbplug` or `mainline-uboot`). A board that
//!   exists keeps the personality in its config.json.
//! - `ROCKUSB_SHIM_TRACE`: a file to append a line to for each libusb call that matters
//!   (init, enumeration, open, errors), for tests and debugging.
//!
//! A board named but not yet created is created as a NanoPi M6 in MaskROM, exactly as the
//! CLI's virtual bus does (`VirtualBus`), so its port path is the same either way.

use rockusb_virtual::bus::{self as vbus, VirtualBus};
use rockusb_virtual::{LinkModel, Personality};
use std::path::PathBuf;

pub const ENV_BOARDS: &str = "ROCKUSB_SHIM_BOARDS";
pub const ENV_DIR: &str = "ROCKUSB_SHIM_DIR";
pub const ENV_LINK: &str = "ROCKUSB_SHIM_LINK";
pub const ENV_TRACE: &str = "ROCKUSB_SHIM_TRACE";
pub const ENV_PERSONALITY: &str = "ROCKUSB_SHIM_PERSONALITY";

/// What to do with the boards' link model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkSetting {
    /// Leave each board's configured link alone.
    Keep,
    /// Set (or clear, with `None`) the link model of every board the shim opens.
    Set(Option<LinkModel>),
}

#[derive(Debug, Clone)]
pub struct ShimConfig {
    pub bus: VirtualBus,
    pub link: LinkSetting,
    /// The personality of boards created by the shim; `None`: the NanoPi M6 default.
    pub personality: Option<Personality>,
    pub trace: Option<PathBuf>,
}

impl ShimConfig {
    /// Reads the environment; a malformed value is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        let names = std::env::var(ENV_BOARDS)
            .or_else(|_| std::env::var(vbus::ENV_BOARDS))
            .map(|list| vbus::parse_names(&list))
            .unwrap_or_default();
        let root = std::env::var_os(ENV_DIR)
            .map(PathBuf::from)
            .unwrap_or_else(vbus::default_root);
        let link = match std::env::var(ENV_LINK) {
            Ok(text) => parse_link(&text).map_err(|why| format!("{ENV_LINK}={text:?}: {why}"))?,
            Err(_) => LinkSetting::Keep,
        };
        let personality = match std::env::var(ENV_PERSONALITY) {
            Ok(text) => Some(
                text.trim()
                    .parse::<Personality>()
                    .map_err(|why| format!("{ENV_PERSONALITY}={text:?}: {why}"))?,
            ),
            Err(_) => None,
        };
        Ok(ShimConfig {
            bus: VirtualBus::new(root, names),
            link,
            personality,
            trace: std::env::var_os(ENV_TRACE).map(PathBuf::from),
        })
    }
}

/// Parses `usb2`, `off` or `RATE,OVERHEAD`.
pub fn parse_link(text: &str) -> Result<LinkSetting, String> {
    const HELP: &str =
        "expected usb2, off, or BYTES_PER_SECOND,SECONDS_PER_COMMAND (e.g. 40e6,0.5e-3)";
    match text.trim() {
        "usb2" | "on" => Ok(LinkSetting::Set(Some(LinkModel::default()))),
        "off" | "none" => Ok(LinkSetting::Set(None)),
        custom => {
            let (rate, overhead) = custom.split_once(',').ok_or(HELP)?;
            let rate: f64 = rate.trim().parse().map_err(|_| HELP)?;
            let overhead: f64 = overhead.trim().parse().map_err(|_| HELP)?;
            if !(rate.is_finite() && rate > 0.0 && overhead.is_finite() && overhead >= 0.0) {
                return Err(format!(
                    "{HELP}; the rate must be > 0 and the overhead >= 0"
                ));
            }
            Ok(LinkSetting::Set(Some(LinkModel {
                bytes_per_second: rate,
                command_overhead: overhead,
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_values() {
        assert_eq!(
            parse_link("usb2").unwrap(),
            LinkSetting::Set(Some(LinkModel::default()))
        );
        assert_eq!(parse_link("off").unwrap(), LinkSetting::Set(None));
        assert_eq!(
            parse_link("20e6, 1e-3").unwrap(),
            LinkSetting::Set(Some(LinkModel {
                bytes_per_second: 20e6,
                command_overhead: 1e-3
            }))
        );
        for bad in ["fast", "40e6", "0,0", "-1,0", "1,-1", "x,1"] {
            assert!(parse_link(bad).is_err(), "{bad} was accepted");
        }
    }
}
