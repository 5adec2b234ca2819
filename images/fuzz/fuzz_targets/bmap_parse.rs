//! Arbitrary bytes as a bmap file: parsing must never panic, and a parsed bmap's
//! verifier must accept any stream of data without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rockusb_images::bmap::Bmap;

fuzz_target!(|data: &[u8]| {
    let _ = Bmap::parse(data);
    if let Ok(bmap) = Bmap::parse_unverified(data) {
        let _ = bmap.mapped_byte_ranges();
        let mut v = bmap.verifier();
        let len = bmap.image_size.min(1 << 20);
        let zeros = vec![0u8; 4096];
        let mut offset = 0;
        while offset < len {
            if v.feed(offset, &zeros).is_err() {
                break;
            }
            offset += zeros.len() as u64;
        }
        let _ = v.finish();
    }
});
