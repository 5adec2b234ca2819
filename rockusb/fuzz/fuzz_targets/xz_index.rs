//! Arbitrary bytes as an .xz file: reading its stream footers, indexes and block list from
//! the end (what `rockusb flash` does before decoding anything) must never panic, and the
//! blocks it lists must lie inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rockusb::source::xz_index::read_index;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let read_at = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let end = start
            .checked_add(buf.len())
            .filter(|&end| end <= data.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(&data[start..end]);
        Ok(())
    };
    if let Ok(info) = read_index(len, read_at) {
        for block in &info.block_list {
            assert!(block.offset <= len, "a block starts past the end of the file");
        }
    }
});
