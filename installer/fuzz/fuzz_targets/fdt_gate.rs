//! Arbitrary bytes as a device tree: parsing it, walking every node and running the DTB
//! gate must never panic (a user hands the overlay any file as the DTB).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nanopi_m6_installer::dtb_gate;
use nanopi_m6_installer::fdt::Fdt;

fuzz_target!(|data: &[u8]| {
    if let Ok(fdt) = Fdt::parse(data) {
        for index in 0..fdt.nodes().len() {
            let _ = fdt.path_of(index);
            let _ = fdt.is_enabled(index);
        }
    }
    let _ = dtb_gate::check(data);
});
