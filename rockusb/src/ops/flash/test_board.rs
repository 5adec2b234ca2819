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

#[test]
#[ignore = "timing probe, run by hand"]
fn link_probe() {
    use crate::client::Client;
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let (bus, board) = booted(dir.path(), 4 << 30);
    let mut vb = open(dir.path());
    vb.set_link(Some(crate::virtual_board::LinkModel::default()))
        .unwrap();
    drop(vb);
    let mut client = Client::new(bus.open(&board.port_path).unwrap());
    let data = vec![0x5Au8; 4 << 20];
    let t = std::time::Instant::now();
    for i in 0..50u32 {
        client.write_lba(i * 8192, &data).unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    let bound = 50.0 * (4.0 * 1048576.0 / 40e6 + 0.5e-3);
    eprintln!(
        "50 x 4 MiB writes: {s:.3} s, model {bound:.3} s, ratio {:.3}",
        s / bound
    );
}
