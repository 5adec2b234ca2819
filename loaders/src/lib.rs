//! Rockchip loader formats: the RKBOOT/LDR container, RKNS ID blocks and the SoC table.
//!
//! Entry points:
//! * [`LoaderContainer::parse`] reads and verifies a "BOOT"/"LDR " loader;
//!   [`LoaderContainer::to_bytes`] writes one.
//! * [`merge`] builds a container like boot_merger; [`ini`] reads RKBOOT ini files.
//! * [`soc`] maps chip codes, SoC names and USB PIDs, and checks loader/board matches.
//! * [`standin::build`] makes a labelled loader for the virtual board.

mod bytes;
pub mod chip;
pub mod choose;
pub mod container;
pub mod crc32;
pub mod idblock;
pub mod ini;
pub mod merge;
pub mod raw;
pub mod rc4;
pub mod release_time;
pub mod report;
pub mod rkns;
pub mod soc;
pub mod standin;
pub mod upgrade;

pub use chip::ChipCode;
pub use container::{
    ContainerError, ContainerHeader, ContainerTag, Entry, EntryKind, LoaderContainer,
    PayloadEncoding, RawFileKind,
};
pub use release_time::ReleaseTime;
