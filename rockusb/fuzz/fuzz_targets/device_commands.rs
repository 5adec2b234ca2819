//! The virtual board's loader side must survive any host traffic: arbitrary bulk OUT
//! transfers (command blocks and data) interleaved with bulk IN reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rockusb::protocol::{Area, MaskromUpload};
use rockusb::transport::Transport;
use rockusb_virtual::{BoardConfig, VirtualBoard, VirtualHandle};
use std::sync::OnceLock;

fn board_dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fuzz_target!(|data: &[u8]| {
    let dir = board_dir().join("m6");
    let mut board = VirtualBoard::open_or_create(&dir, || BoardConfig {
        emmc_bytes: 1 << 20,
        sd_bytes: 1 << 20,
        spinor_bytes: 1 << 20,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
    board.power_cycle().unwrap();
    let mut handle = VirtualHandle::open(board).unwrap();
    for area in [Area::Sram, Area::Dram] {
        let upload = MaskromUpload::new(area, &[0u8; 16]);
        for t in upload.transfers() {
            handle.control_out(upload.setup(), t).unwrap();
        }
    }
    let board = handle.into_board();
    let Some(mut handle) = VirtualHandle::open(VirtualBoard::open(board.dir()).unwrap()) else {
        return;
    };
    // Each step: 1 byte selects out/in and a length, then that many bytes go out.
    let mut rest = data;
    let mut buf = vec![0u8; 4096];
    while let Some((&op, tail)) = rest.split_first() {
        let len = (op as usize & 0x7f) * 4;
        if op & 0x80 == 0 {
            let len = len.min(tail.len()).max(if tail.len() >= 31 { 31 } else { 0 });
            let (chunk, tail) = tail.split_at(len.min(tail.len()));
            let _ = handle.bulk_out(chunk);
            rest = tail;
        } else {
            let _ = handle.bulk_in(&mut buf[..len.max(1)]);
            rest = tail;
        }
        if handle.board().identity().is_none() {
            break;
        }
    }
});
