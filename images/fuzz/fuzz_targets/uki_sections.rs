//! Arbitrary bytes as a UKI: reading its PE section table, its `.cmdline` and `.osrel`,
//! and assessing the command line must never panic, whatever length is claimed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rockusb_images::uki::UkiInfo;
use rockusb_images::uki::pe::SectionTable;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = SectionTable::parse(data) {
        for section in &table.sections {
            let _ = section.data_range();
        }
    }
    for len in [data.len() as u64, (data.len() as u64).saturating_mul(2), u64::MAX] {
        if let Ok(info) = UkiInfo::read(&mut &data[..], len) {
            let _ = info.talos_version();
            if let Some(assessment) = info.assessment() {
                let _ = assessment.notes();
            }
        }
    }
});
