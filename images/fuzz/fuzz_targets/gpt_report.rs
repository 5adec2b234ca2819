//! Arbitrary bytes as a disk image: reading its GPT, printing it, running the pre-flight
//! check and computing must-write regions must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rockusb_images::NANOPI_M6;
use rockusb_images::gpt::{GptHeader, GptReadOptions, GptReport};
use rockusb_images::preflight::{PreflightInput, preflight};
use rockusb_images::regions::must_write;

fuzz_target!(|data: &[u8]| {
    let _ = GptHeader::parse(data);
    for sector_size in [None, Some(512), Some(4096)] {
        let options = GptReadOptions {
            sector_size,
            len: Some(data.len() as u64),
            ..GptReadOptions::default()
        };
        if let Ok(report) = GptReport::read(data, options) {
            let _ = report.to_string();
            let _ = must_write(&NANOPI_M6, Some(&report), data.len() as u64, Some(1 << 40));
        }
    }
    // Without a length the backup is found through the primary's alternate LBA.
    let _ = GptReport::read(data, GptReadOptions::default());
    let input = PreflightInput {
        layout: &NANOPI_M6,
        image_len: None,
        storage_len: Some(1 << 30),
        check_backup_gpt: true,
    };
    if let Ok(pf) = preflight(data, input) {
        for f in &pf.findings {
            let _ = f.to_string();
        }
    }
});
