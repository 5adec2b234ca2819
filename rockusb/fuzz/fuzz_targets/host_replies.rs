//! Everything the host parses from a device: status blocks and typed replies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rockusb::protocol::{
    Capability, ChipInfo, CommandBlock, CommandStatus, FlashId, FlashInfo, StorageMask,
};

fuzz_target!(|data: &[u8]| {
    let tag = data.first().copied().unwrap_or(0) as u32;
    if let Ok(csw) = CommandStatus::parse(data, tag) {
        assert_eq!(CommandStatus::parse(&csw.to_bytes(), tag), Ok(csw));
    }
    if let Ok(cbw) = CommandBlock::parse(data) {
        assert_eq!(CommandBlock::parse(&cbw.to_bytes()).as_ref(), Ok(&cbw));
    }
    let _ = FlashId::parse(data).map(|id| id.as_text());
    if let Ok(info) = FlashInfo::parse(data) {
        assert_eq!(FlashInfo::parse(&info.to_bytes()), Ok(info));
        let _ = info.manufacturer_name();
    }
    let _ = ChipInfo::parse(data).map(|c| c.chip_name());
    let _ = Capability::parse(data).map(|c| c.feature_names());
    let _ = StorageMask::parse(data).map(|m| m.current());
});
