//! The planner on arbitrary data, chunking and forced ranges: it must never panic, and its
//! extents must stay inside their chunk, in order, and cover every non-zero byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rockusb_images::ByteRange;
use rockusb_images::plan::{PlanConfig, Planner};

fuzz_target!(|input: (u16, u32, u32, Vec<u8>)| {
    let (chunk_blocks, forced_start, forced_len, data) = input;
    let chunk = (usize::from(chunk_blocks % 8) + 1) * 4096;
    let forced = vec![ByteRange::new(u64::from(forced_start % (1 << 20)), u64::from(forced_len % (1 << 20)))];
    let mut planner = Planner::new(PlanConfig::sparse(forced)).unwrap();
    let mut out = Vec::new();
    let mut offset = 0u64;
    for piece in data.chunks(chunk) {
        planner.plan_chunk(offset, piece, &mut out).unwrap();
        let end = offset + piece.len() as u64;
        let mut covered = offset;
        for e in &out {
            assert!(e.start >= covered && e.end() <= end && !e.is_empty());
            let gap = &piece[(covered - offset) as usize..(e.start - offset) as usize];
            assert!(gap.iter().all(|&b| b == 0), "non-zero byte skipped");
            covered = e.end();
        }
        assert!(piece[(covered - offset) as usize..].iter().all(|&b| b == 0));
        offset = end;
    }
    let stats = planner.stats();
    assert_eq!(stats.bytes_to_write + stats.bytes_skipped, data.len() as u64);
});
