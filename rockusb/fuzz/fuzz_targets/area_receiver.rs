//! The BootROM side of MaskROM framing: arbitrary transfers never panic, and a payload
//! framed by the host is always reassembled exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rockusb::protocol::maskrom::{AreaOutcome, AreaReceiver, MAX_TRANSFER};
use rockusb::protocol::{Area, MaskromUpload};

fuzz_target!(|data: &[u8]| {
    // Arbitrary transfers: the first byte of each piece picks its length.
    let mut rx = AreaReceiver::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = (len as usize * 17).min(MAX_TRANSFER).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        let _ = rx.push(chunk);
        rest = tail;
    }

    // Host framing round trip.
    let upload = MaskromUpload::new(Area::Dram, data);
    let mut rx = AreaReceiver::new();
    let outcome = upload.transfers().find_map(|t| rx.push(t));
    let mut expected = data.to_vec();
    if data.len() % MAX_TRANSFER == MAX_TRANSFER - 1 {
        expected.push(0);
    }
    assert_eq!(outcome, Some(AreaOutcome::Accepted(expected)));
});
