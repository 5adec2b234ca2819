//! Which board layout a flash is checked and planned against.
//!
//! USB tells only the SoC (by product id), not the board. The NanoPi M6 is the RK3588
//! board this project is built for, so an RK3588 gets its layout (Talos's GPT entries at
//! LBA 2 + 20480); any other SoC gets the generic Rockchip layout at its BootROM's ID-block
//! sector, so an RK3568 board is never checked against the M6's offsets. `--layout`
//! overrides the choice either way.

use rockusb_images::{BoardLayout, NANOPI_M6};
use rockusb_loaders::soc::{self, Soc};
use serde::Serialize;

/// The layouts that can be asked for by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutName {
    /// The FriendlyElec NanoPi M6 with a Talos image ([`NANOPI_M6`]).
    NanopiM6,
    /// Any Rockchip board: [`BoardLayout::rockchip_generic`].
    Rockchip,
}

/// A chosen layout and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutChoice {
    pub layout: BoardLayout,
    pub reason: String,
}

impl LayoutChoice {
    /// The `layout` event that says which layout a flash uses and why.
    pub fn event(&self) -> crate::ops::Event {
        crate::ops::Event::Layout {
            name: self.layout.name.into(),
            display_name: self.layout.display_name.into(),
            reason: self.reason.clone(),
        }
    }
}

/// The layout for a board whose SoC is `soc_name` (from its USB product id), or the one
/// `requested` by name.
pub fn choose(soc_name: Option<&str>, requested: Option<LayoutName>) -> LayoutChoice {
    let soc = soc_name.and_then(soc::by_name);
    match requested {
        Some(LayoutName::NanopiM6) => LayoutChoice {
            layout: NANOPI_M6,
            reason: "asked for with --layout".into(),
        },
        Some(LayoutName::Rockchip) => LayoutChoice {
            layout: generic(soc),
            reason: "asked for with --layout".into(),
        },
        None => match soc {
            Some(soc) if soc.is_named(NANOPI_M6.soc) => LayoutChoice {
                layout: NANOPI_M6,
                reason: format!(
                    "the board is an {}; --layout rockchip for a standard layout",
                    soc.name
                ),
            },
            Some(soc) => LayoutChoice {
                layout: generic(Some(soc)),
                reason: format!("the board is an {}; --layout to choose another", soc.name),
            },
            None => LayoutChoice {
                layout: generic(None),
                reason: "the board's SoC is unknown; --layout to choose another".into(),
            },
        },
    }
}

fn generic(soc: Option<&'static Soc>) -> BoardLayout {
    match soc {
        Some(soc) => BoardLayout::rockchip_generic(soc.name, u64::from(soc.layout.idb_lba)),
        None => BoardLayout::rockchip_generic("unknown", 64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rk3588_gets_the_nanopi_m6_layout_and_others_the_generic_one() {
        assert_eq!(choose(Some("RK3588"), None).layout, NANOPI_M6);
        let rk3568 = choose(Some("RK3568"), None);
        assert_eq!(rk3568.layout.name, "rockchip");
        assert_eq!(rk3568.layout.gpt_entries_lba(), 2);
        assert!(rk3568.reason.contains("RK3568"), "{}", rk3568.reason);
        assert_eq!(choose(None, None).layout.name, "rockchip");
    }

    #[test]
    fn the_request_wins_over_the_soc() {
        let m6 = choose(Some("RK3568"), Some(LayoutName::NanopiM6));
        assert_eq!(m6.layout, NANOPI_M6);
        let generic = choose(Some("RK3588"), Some(LayoutName::Rockchip));
        assert_eq!(generic.layout.name, "rockchip");
        assert_eq!(generic.layout.soc, "RK3588");
    }
}
