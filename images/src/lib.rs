//! Disk image layouts shared by the flasher and the Talos overlay installer.
//!
//! Every offset that both sides must agree on (where the bootloader goes, how far the
//! GPT entry array is pushed out, which regions must never be sparse-skipped) is defined
//! once here, so the two can never drift apart.

pub mod layout;

pub use layout::{BoardLayout, ByteRange, NANOPI_M6};
