//! Prints an image's partition table, its pre-flight findings for the NanoPi M6 and its
//! sparse write plan: `cargo run -p rockusb-images --example inspect -- IMAGE [STORAGE_BYTES]`.

use rockusb_images::NANOPI_M6;
use rockusb_images::plan::{PlanConfig, Planner};
use rockusb_images::preflight::{PreflightInput, Severity, preflight};
use rockusb_images::read_at::SeekReader;
use rockusb_images::units::human_bytes;
use std::io::Read;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: inspect IMAGE [STORAGE_BYTES]")?;
    let storage_len = args.next().map(|s| s.parse::<u64>()).transpose()?;
    let image_len = std::fs::metadata(&path)?.len();

    let pf = preflight(
        SeekReader(std::fs::File::open(&path)?),
        PreflightInput {
            layout: &NANOPI_M6,
            image_len: Some(image_len),
            storage_len,
            check_backup_gpt: true,
        },
    )?;
    print!("{}", pf.gpt);
    for f in &pf.findings {
        let label = match f.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        println!("{label}: {f}");
    }

    let must_write = pf.must_write.clone().unwrap_or_default();
    for r in &must_write.regions {
        println!("must write: {} ({})", r.range, r.reason);
    }
    if let Some(w) = must_write.wipe_after_image {
        println!("wipe after the image: {w}");
    }
    let mut planner = Planner::new(PlanConfig::sparse(must_write.merged()))?;
    let mut file = std::fs::File::open(&path)?;
    let mut chunk = vec![0u8; 1 << 20];
    let (mut offset, mut extents) = (0u64, Vec::new());
    loop {
        let n = read_full(&mut file, &mut chunk)?;
        if n == 0 {
            break;
        }
        planner.plan_chunk(offset, &chunk[..n], &mut extents)?;
        offset += n as u64;
    }
    let s = planner.stats();
    println!(
        "sparse plan: write {} in {} extents, skip {}",
        human_bytes(s.bytes_to_write),
        s.extents,
        human_bytes(s.bytes_skipped)
    );
    Ok(())
}

fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
