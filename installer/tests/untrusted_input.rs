//! Mutated inputs the overlay is handed by users and by Talos — a DTB file, the YAML on the
//! executable's stdin — never panic the parsers: the same property the cargo-fuzz targets
//! in installer/fuzz check for longer, run here on every `cargo test` from real seeds.

use nanopi_m6_installer::dtb_gate;
use nanopi_m6_installer::fdt::Fdt;
use nanopi_m6_installer::protocol::{decode_extra_options, decode_install_request};

/// Deterministic mutations of `seed`: bytes flipped, runs overwritten with 0x00/0xFF (the
/// values that make lengths and offsets extreme), truncations.
fn mutations(seed: &[u8], count: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count).map(move |i| {
        let mut bytes = seed.to_vec();
        if bytes.is_empty() {
            return bytes;
        }
        match i % 4 {
            0 => {
                for _ in 0..1 + next() % 8 {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] ^= 1 << (next() % 8);
                }
            }
            1 => {
                let at = (next() % bytes.len() as u64) as usize;
                let fill = if next() % 2 == 0 { 0x00 } else { 0xFF };
                let end = (at + 4 + (next() % 16) as usize).min(bytes.len());
                bytes[at..end].fill(fill);
            }
            2 => bytes.truncate((next() % bytes.len() as u64) as usize),
            _ => {
                let at = (next() % bytes.len() as u64) as usize;
                let byte = next() as u8;
                bytes.insert(at, byte);
            }
        }
        bytes
    })
}

#[test]
fn mutated_dtbs_are_refused_or_parsed_never_a_panic() {
    let Some(testdata) = rockusb_testkit::testdata("mutated_dtbs") else {
        return;
    };
    let dtb =
        std::fs::read(testdata.join("dtb/nanopi-m6__friendlyelec-vendor__rk3588s-nanopi-m6.dtb"))
            .unwrap();
    let mut parsed = 0;
    for bytes in mutations(&dtb, 1000) {
        if let Ok(fdt) = Fdt::parse(&bytes) {
            parsed += 1;
            for index in 0..fdt.nodes().len() {
                let _ = fdt.path_of(index);
                let _ = fdt.is_enabled(index);
            }
        }
        let _ = dtb_gate::check(&bytes);
    }
    // Flipped bits inside property values leave a parsable tree: the walk above ran.
    assert!(parsed > 0, "no mutation parsed at all");
}

#[test]
fn mutated_overlay_requests_are_refused_or_decoded_never_a_panic() {
    let seeds: [&[u8]; 3] = [
        b"options:\n  dtb: rk3588s-nanopi-m6.dtb\n  cma: 128MB\n  spi_boot: \"true\"\n",
        b"installDisk: /dev/mmcblk0\nmountPrefix: /tmp/m\narch: arm64\nartifactsPath: /a\n\
          extraOptions:\n  console: ttyS2\n",
        b"{}\n",
    ];
    for seed in seeds {
        for bytes in mutations(seed, 2000) {
            let _ = decode_extra_options(&bytes);
            let _ = decode_install_request(&bytes);
        }
    }
}
