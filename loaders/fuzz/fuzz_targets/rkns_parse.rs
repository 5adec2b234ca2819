//! RKNS header parser and ID block inspection: never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rockusb_loaders::rkns::RknsHeader;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = RknsHeader::parse(data) {
        let checks = header.check_images(data);
        assert_eq!(checks.len(), header.images.len());
        let _ = header.declared_end();
    }
    let _ = rockusb_loaders::idblock::inspect(data);
    let _ = rockusb_loaders::idblock::parse_v1(data);
});
