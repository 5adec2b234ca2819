//! Rockchip loader formats: the RKBOOT/LDR container, RKNS ID blocks and the SoC table.
//!
//! Entry points:
//! * [`LoaderContainer::parse`] reads and verifies a "BOOT"/"LDR " loader;
//!   [`LoaderContainer::to_bytes`] writes one.
//! * [`merge`] builds a container like boot_merger; [`ini`] reads RKBOOT ini files.
//! * [`soc`] maps chip codes, SoC names and USB PIDs, and checks loader/board matches.
//! * [`standin::build`] makes a labelled loader for the virtual board.
//! * [`raw::RawLoader`] prepares raw DDR-init + usbplug/SPL pairs; with containers it
//!   implements [`raw::MaskromStages`], the shape `boot` sends.
//! * [`upgrade::build_id_block`] makes the ID block written at LBA 64;
//!   [`idblock::inspect`] checks idbloader files.
//! * [`report::info`]/[`report::verify`] return serialisable reports;
//!   [`choose::choose_loader`] picks the newest valid loader for a SoC.
//!
//! ```
//! use rockusb_loaders::{EntryKind, LoaderContainer, soc, standin};
//!
//! let board = soc::by_usb_pid(0x350b).unwrap();
//! let bytes = standin::build(board);
//! let loader = LoaderContainer::parse(&bytes).unwrap();
//! assert_eq!(loader.chip_code().to_string(), "RK3588");
//! assert!(standin::is_standin(&loader));
//! for entry in loader.entries(EntryKind::Area471) {
//!     // Sent verbatim to control area 0x471, then wait entry.delay_ms.
//!     assert!(!entry.data.is_empty());
//! }
//! soc::check_loader_for_board(&loader, board).unwrap();
//! ```

#![forbid(unsafe_code)]

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
    PayloadEncoding, RawFileKind, ReadError,
};
pub use release_time::ReleaseTime;
