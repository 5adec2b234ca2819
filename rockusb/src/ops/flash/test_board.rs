//! A booted virtual NanoPi M6 with a small eMMC, for the library's own tests.

use crate::discovery::{BoardInfo, Bus};
use crate::ops::boot::{self, BootPlan};
use crate::virtual_board::{BoardConfig, VirtualBoard, VirtualBus};
use std::path::Path;

const NAME: &str = "m6";

/// Creates the board in `root` with an eMMC of `emmc_bytes` and boots the stand-in loader.
pub fn booted(root: &Path, emmc_bytes: u64) -> (Bus, BoardInfo) {
    VirtualBoard::open_or_create(&root.join(NAME), || BoardConfig {
        emmc_bytes,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
    let bus = Bus::Virtual(VirtualBus::new(root.to_path_buf(), vec![NAME.into()]));
    let board = bus.scan().unwrap().remove(0);
    let soc = rockusb_loaders::soc::by_name("RK3588").unwrap();
    let container =
        rockusb_loaders::LoaderContainer::parse(&rockusb_loaders::standin::build(soc)).unwrap();
    let plan = BootPlan::from_container(&container);
    let up = boot::boot(&bus, &board, &plan, &mut crate::ops::Quiet).unwrap();
    (bus, up)
}

/// The same board, opened directly to inspect its storage.
pub fn open(root: &Path) -> VirtualBoard {
    VirtualBoard::open(&root.join(NAME)).unwrap()
}
