//! Arbitrary bytes on the overlay executable's stdin (the YAML Talos sends): decoding the
//! `get-options` extra options and an `install` request, and reading the board options
//! from them, must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nanopi_m6_installer::protocol::{decode_extra_options, decode_install_request};

fuzz_target!(|data: &[u8]| {
    let _ = decode_extra_options(data);
    let _ = decode_install_request(data);
});
