//! Arbitrary bytes as a partition image: recognising its file system and reading the
//! free space (XFS, ext2/3/4, FAT) must never panic, and whatever comes back must be a
//! sorted, disjoint list inside the file system's declared size and the partition.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rockusb_images::ByteRange;
use rockusb_images::fs::free_space;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let mut image = data;
    if let Ok(Some(space)) = free_space(&mut image, ByteRange::new(0, len)) {
        assert!(space.fs_len <= len);
        for pair in space.free.windows(2) {
            assert!(pair[0].end() < pair[1].start);
        }
        for r in &space.free {
            assert!(r.len > 0 && r.end() <= space.fs_len);
        }
    }
});
