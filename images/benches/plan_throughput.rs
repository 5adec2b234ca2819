//! Throughput of the zero scan and the sparse planner, in MB/s of image.
//!
//! `cargo bench -p rockusb-images --bench plan_throughput`
//!
//! The image is synthetic and Talos-shaped: mostly zeros, with ~15 % of its 4 KiB blocks
//! holding data in runs (as file data sits in a file system), planned in 1 MiB chunks as
//! the decoder delivers them. A byte-by-byte scan is timed too, for comparison.

use rockusb_images::ByteRange;
use rockusb_images::plan::{PlanConfig, Planner};
use rockusb_images::zero::is_zero;
use std::hint::black_box;
use std::time::Instant;

const MIB: usize = 1024 * 1024;
const IMAGE_LEN: usize = 512 * MIB;
const CHUNK: usize = MIB;

/// A zeroed buffer backed by real pages: a fresh `vec![0; n]` maps every page to the
/// kernel's shared zero page, which stays in cache and makes scans look impossibly fast.
fn zeroed(len: usize) -> Vec<u8> {
    let mut v = vec![0xFFu8; len];
    // Keeps the compiler from folding the two fills into one calloc.
    black_box(&mut v);
    v.fill(0);
    v
}

fn synthetic_image() -> Vec<u8> {
    let mut image = zeroed(IMAGE_LEN);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut block = 0;
    let blocks = IMAGE_LEN / 4096;
    while block < blocks {
        // Runs of 1..64 data blocks, separated by zero gaps averaging ~6x the run.
        let run = (next() % 64 + 1) as usize;
        let gap = (next() % 768) as usize;
        for b in block..(block + run).min(blocks) {
            let at = b * 4096 + (next() % 4096) as usize;
            image[at] = (next() as u8) | 1;
            image[b * 4096] = 0x5A;
        }
        block += run + gap;
    }
    image
}

fn rate(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / seconds / 1e6
}

fn time<F: FnMut()>(rounds: usize, mut f: F) -> f64 {
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed().as_secs_f64() / rounds as f64
}

fn main() {
    let image = synthetic_image();
    let zeros = zeroed(IMAGE_LEN);
    let non_zero_blocks = image.chunks(4096).filter(|b| !is_zero(b)).count();
    println!(
        "image: {} MiB, {:.1} % of 4 KiB blocks non-zero, planned in {} KiB chunks",
        IMAGE_LEN / MIB,
        100.0 * non_zero_blocks as f64 / (IMAGE_LEN / 4096) as f64,
        CHUNK / 1024
    );

    let word_scan = time(5, || {
        black_box(zeros.chunks(4096).filter(|b| is_zero(b)).count());
    });
    println!(
        "zero scan, 64-bit words, all-zero data: {:8.0} MB/s",
        rate(IMAGE_LEN, word_scan)
    );
    let one_pass = time(5, || {
        black_box(is_zero(black_box(&zeros)));
    });
    println!(
        "zero scan, 64-bit words, one call     : {:8.0} MB/s",
        rate(IMAGE_LEN, one_pass)
    );
    // In the pipeline the planner sees each chunk right after the decoder wrote it, so it
    // is still in cache: scan one 1 MiB chunk over and over.
    let hot = &zeros[..CHUNK];
    let in_cache = time(3, || {
        for _ in 0..(IMAGE_LEN / CHUNK) {
            black_box(hot.chunks(4096).filter(|b| is_zero(black_box(b))).count());
        }
    });
    println!(
        "zero scan, 64-bit words, chunk in cache: {:8.0} MB/s",
        rate(IMAGE_LEN, in_cache)
    );
    let byte_part = &zeros[..64 * MIB];
    let byte_scan = time(2, || {
        black_box(
            byte_part
                .chunks(4096)
                .filter(|b| black_box(b).iter().all(|&x| x == 0))
                .count(),
        );
    });
    println!(
        "zero scan, byte loop,    all-zero data: {:8.0} MB/s",
        rate(byte_part.len(), byte_scan)
    );

    let must_write = vec![
        ByteRange::new(0, 11 * MIB as u64),
        ByteRange::new(300 * MIB as u64, MIB as u64),
    ];
    for (label, data, config) in [
        (
            "sparse plan, Talos-shaped data",
            &image,
            PlanConfig::sparse(must_write.clone()),
        ),
        (
            "sparse plan, all-zero data     ",
            &zeros,
            PlanConfig::sparse(must_write.clone()),
        ),
        (
            "full plan (reads no data)      ",
            &image,
            PlanConfig::full(),
        ),
    ] {
        let mut extents = Vec::new();
        let mut stats = None;
        let seconds = time(5, || {
            let mut planner = Planner::new(config.clone()).unwrap();
            for (i, chunk) in data.chunks(CHUNK).enumerate() {
                planner
                    .plan_chunk((i * CHUNK) as u64, chunk, &mut extents)
                    .unwrap();
                black_box(&extents);
            }
            stats = Some(planner.stats());
        });
        let stats = stats.unwrap();
        println!(
            "{label}: {:8.0} MB/s  ({} extents, {} MiB to write, {} MiB skipped)",
            rate(IMAGE_LEN, seconds),
            stats.extents,
            stats.bytes_to_write / MIB as u64,
            stats.bytes_skipped / MIB as u64
        );
    }
}
