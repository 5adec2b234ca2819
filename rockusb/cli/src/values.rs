//! Command-line values with a fixed set of choices, as clap `ValueEnum`s: clap lists them
//! in `--help`, completes them and refuses anything else with the list of valid ones,
//! before any board is touched.

use clap::ValueEnum;
use clap::builder::PossibleValue;
use rockusb::discovery::BoardMode;
use rockusb::ops::flash::layout::LayoutName;
use rockusb::protocol::StorageKind;
use rockusb_loaders::soc::{SOCS, Soc};
use std::sync::OnceLock;

/// A storage a loader can switch to, by the names the protocol notes use (`emmc`, `sd`,
/// `spinor`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageArg(pub StorageKind);

impl ValueEnum for StorageArg {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: OnceLock<Vec<StorageArg>> = OnceLock::new();
        ALL.get_or_init(|| StorageKind::ALL.iter().copied().map(StorageArg).collect())
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()))
    }
}

impl From<StorageArg> for StorageKind {
    fn from(arg: StorageArg) -> StorageKind {
        arg.0
    }
}

/// A SoC from the SoC table, by name (`RK3588`, `rk3568`, …).
#[derive(Debug, Clone, Copy)]
pub struct SocArg(pub &'static Soc);

impl ValueEnum for SocArg {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: OnceLock<Vec<SocArg>> = OnceLock::new();
        ALL.get_or_init(|| SOCS.iter().map(SocArg).collect())
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name).aliases(self.0.aliases.iter().copied()))
    }
}

/// The boards `rockusb wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WaitFor {
    /// Boards in MaskROM.
    Maskrom,
    /// Boards running a loader.
    Loader,
    /// Any Rockchip board.
    Any,
}

impl WaitFor {
    /// Whether a board in `mode` is one being waited for.
    pub fn accepts(self, mode: BoardMode) -> bool {
        match self {
            WaitFor::Maskrom => mode == BoardMode::Maskrom,
            WaitFor::Loader => mode == BoardMode::Loader,
            WaitFor::Any => true,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WaitFor::Maskrom => "maskrom",
            WaitFor::Loader => "loader",
            WaitFor::Any => "any",
        }
    }
}

/// A board layout by name (`rockusb flash --layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// The FriendlyElec NanoPi M6 with a Talos image: GPT entries at LBA 2 + 20480.
    NanopiM6,
    /// Any Rockchip board: a standard GPT, the boot chain below 16 MiB.
    Rockchip,
}

impl From<LayoutArg> for LayoutName {
    fn from(arg: LayoutArg) -> LayoutName {
        match arg {
            LayoutArg::NanopiM6 => LayoutName::NanopiM6,
            LayoutArg::Rockchip => LayoutName::Rockchip,
        }
    }
}

/// A board an image can be adapted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BoardArg {
    /// The FriendlyElec NanoPi M6 (RK3588S).
    NanopiM6,
}
