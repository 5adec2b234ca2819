//! The stand-in loader: a valid container for the virtual board, with no real code.
//!
//! It lets someone without rkbin files drive the virtual board through the same
//! `boot` path as a real loader. Every payload is a clearly labelled text followed by
//! zero padding, so it is obvious in a hex dump, and [`is_standin`] lets the CLI refuse
//! to send one to real hardware.

use crate::chip::ChipCode;
use crate::container::{EntryKind, LoaderContainer};
use crate::merge::{LoaderPart, MERGER_VERSION, MergeSpec, StagePart, merge};
use crate::release_time::ReleaseTime;
use crate::rkns::BootParams;
use crate::soc::Soc;

/// The text every stand-in payload starts with.
pub const STANDIN_MARKER: &str =
    "rockusb stand-in loader: for the virtual board only, not runnable on real hardware";

/// Fixed release time, so the output is the same on every machine.
pub const STANDIN_RELEASE_TIME: ReleaseTime = ReleaseTime {
    year: 2000,
    month: 1,
    day: 1,
    hour: 0,
    minute: 0,
    second: 0,
};

fn payload(soc: &Soc, stage: &str) -> Vec<u8> {
    format!("{STANDIN_MARKER}\nSoC: {}\nstage: {stage}\n", soc.name).into_bytes()
}

/// The chip code a stand-in for `soc` carries: the table's, or one derived from the name.
fn chip_for(soc: &Soc) -> ChipCode {
    soc.chip_code
        .or_else(|| ChipCode::from_ini_name(soc.name))
        .unwrap_or(ChipCode::from_file_bytes(*b"0000"))
}

/// The merge description of the stand-in for `soc` (same container flavour and
/// alignment as the SoC's real loaders).
pub fn spec(soc: &Soc) -> MergeSpec {
    let new_idb = soc.container == crate::container::ContainerTag::Ldr;
    MergeSpec {
        chip: chip_for(soc),
        version_major: 0,
        version_minor: 0,
        release_time: STANDIN_RELEASE_TIME,
        new_idb,
        rc4_off: new_idb,
        rc4_off_471: new_idb,
        align: soc.entry_align as usize,
        code471: vec![StagePart {
            name: "standin_ddr".into(),
            data: payload(soc, "471 (DDR init)"),
        }],
        code471_delay_ms: 1,
        code472: vec![StagePart {
            name: "standin_usbplug".into(),
            data: payload(soc, "472 (usbplug)"),
        }],
        code472_delay_ms: 0,
        loaders: ["FlashData", "FlashBoot"]
            .iter()
            .map(|name| LoaderPart {
                name: (*name).into(),
                data: payload(soc, &format!("{name} (ID block)")),
                load_address: None,
                flag: 0,
            })
            .collect(),
        boot_params: BootParams::default(),
        merger_version: MERGER_VERSION,
    }
}

/// The stand-in container for `soc` as it would be stored on disk.
pub fn build(soc: &Soc) -> Vec<u8> {
    build_container(soc)
        .to_bytes()
        .expect("the stand-in is a few KiB, far below every container limit")
}

/// The stand-in for `soc` as a container.
pub fn build_container(soc: &Soc) -> LoaderContainer {
    merge(&spec(soc)).expect("the stand-in spec is valid for every SoC in the table")
}

/// True when any 471/472 payload of `container` is stand-in text, i.e. it must not be
/// sent to a real board.
pub fn is_standin(container: &LoaderContainer) -> bool {
    let tag = container.tag();
    [EntryKind::Area471, EntryKind::Area472]
        .into_iter()
        .flat_map(|kind| container.entries(kind))
        .any(|e| e.decoded(tag).starts_with(STANDIN_MARKER.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soc::{SOCS, by_name};

    #[test]
    fn standin_parses_verifies_and_is_recognised() {
        for soc in SOCS {
            let bytes = build(soc);
            let parsed = LoaderContainer::parse(&bytes)
                .unwrap_or_else(|e| panic!("{}: stand-in does not parse: {e}", soc.name));
            assert!(is_standin(&parsed), "{}", soc.name);
            assert_eq!(parsed.tag(), soc.container);
            assert_eq!(parsed.to_bytes().unwrap(), bytes);
            if soc.chip_code.is_some() {
                assert_eq!(parsed.soc(), Some(soc));
            }
        }
    }

    #[test]
    fn standin_is_deterministic() {
        let soc = by_name("rk3588").unwrap();
        assert_eq!(build(soc), build(soc));
    }

    #[test]
    fn rk3588_standin_has_the_expected_shape() {
        let c = build_container(by_name("rk3588").unwrap());
        let names = |k| c.entries(k).map(|e| e.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(EntryKind::Area471), ["UsbHead", "standin_ddr"]);
        assert_eq!(names(EntryKind::Area472), ["standin_usbplug"]);
        assert_eq!(
            names(EntryKind::Loader),
            ["FlashHead", "FlashData", "FlashBoot"]
        );
        let ddr = c.entries(EntryKind::Area471).nth(1).unwrap();
        assert!(ddr.data.starts_with(STANDIN_MARKER.as_bytes()));
        assert_eq!(ddr.data.len(), 2048);
    }
}
