//! Loader container parser: never panics, and whatever it accepts writes back to bytes
//! that parse to the same container (identical bytes when the layout was canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rockusb_loaders::LoaderContainer;

fuzz_target!(|data: &[u8]| {
    let Ok(container) = LoaderContainer::parse(data) else {
        return;
    };
    let _ = rockusb_loaders::report::info(&container);
    let _ = rockusb_loaders::upgrade::build_id_block(&container);
    let written = container
        .to_bytes()
        .expect("a parsed container fits the format");
    if container.has_canonical_layout() {
        assert_eq!(
            written, data,
            "canonical container did not write back identically"
        );
    }
    let again = LoaderContainer::parse(&written).expect("written container parses");
    assert_eq!(again.all_entries().len(), container.all_entries().len());
    let _ = rockusb_loaders::report::verify(data);
});
