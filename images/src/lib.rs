//! Disk image layouts shared by the flasher and the Talos overlay installer.
//! (Full API guide written below.)

pub mod gpt;
pub mod layout;
pub mod read_at;
pub mod units;

pub use layout::{BoardLayout, ByteRange, NANOPI_M6};
pub mod plan;
pub mod regions;
pub mod zero;
pub mod bmap;
pub mod bootloader;
pub mod preflight;
