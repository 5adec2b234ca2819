//! Flash benchmark (not a test): `cargo bench -p rockusb-cli --bench flash`.
//!
//! Builds a 2 GiB Talos-shaped image (sgdisk GPT with the 20480-sector offset, EFI 100 MiB
//! FAT32 made by mkfs.vfat, BIOS, BOOT 1800 MiB XFS made by mkfs.xfs, META; ~300 MiB of
//! data: bootloader, EFI files, kernel and initramfs, part random, part text-like),
//! compresses it with `xz -0 -T0` as Talos does, and prints in one run:
//!
//! 1. the throughput of decode + zero scan + hashing (the flash pipeline without USB),
//!    in MB/s of image, and its ratio to `xz -dc -T0 > /dev/null` on the same file
//!    (target ≥ 0.9);
//! 2. flash time on the virtual board with the USB 2.0 link model (40 MB/s, 0.5 ms per
//!    command) and its ratio to the model's bound, bytes that must cross the link ÷
//!    link rate (target ≤ 1.10), for the sparse default and for `--full`, each with
//!    its read-back verification (the default) and with `--no-verify`;
//! 3. the peak RSS of each `rockusb flash` process (target < 100 MiB);
//! 4. bytes written by the sparse flash, which skips zeros only in the file systems'
//!    free space, against skipping every zero block (what the planner alone would do,
//!    and what corrupts a used board);
//! 5. the sparse flash of the decoded image verified three ways (`--verify readback`, `device`, `none`) on the
//!    USB 2.0 model (the rkbin usbplug personality: write parity, no USB 3) and on the USB 3
//!    model (the U-Boot-built usbplug, switched to SuperSpeed: 60 MB/s, 2 ms per command),
//!    each against the unverified bound, bytes written ÷ link rate (target for
//!    device-verified: ≤ 1.10), and USB 3 against USB 2.
//!
//! Set ROCKUSB_BENCH_DIR to keep the image between runs (it is rebuilt when missing),
//! ROCKUSB_BENCH_ONLY=sparse to leave out the (long) `--full` flash, ROCKUSB_BENCH_ONLY=verify
//! to run only part 5.

use rockusb::ops::flash::pipeline::{self, PlanHashConfig, ToWriter};
use rockusb::source::ImageSource;
use rockusb_images::NANOPI_M6;
use rockusb_images::plan::{PlanConfig, Planner};
use rockusb_virtual::{BoardConfig, LinkModel, Personality, VirtualBoard};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const MIB: u64 = 1 << 20;
const IMAGE_LEN: u64 = 2048 * MIB;
const RUNS: usize = 3;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without
    // it, and a test run must not spend minutes on a benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("the flash benchmark runs under `cargo bench -p rockusb-cli --bench flash`");
        return;
    }
    for tool in ["sgdisk", "xz", "mkfs.xfs", "mkfs.vfat", "mcopy"] {
        if !rockusb_testkit::tool_available(tool) {
            eprintln!(
                "the flash benchmark needs `{tool}` (gdisk, xz-utils, xfsprogs, dosfstools, mtools)"
            );
            return;
        }
    }
    let keep = std::env::var_os("ROCKUSB_BENCH_DIR").map(PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let dir = keep.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let xz = dir.join("talos-bench.raw.xz");
    let non_zero = if xz.exists() {
        eprintln!("using {}", xz.display());
        None
    } else {
        eprintln!("building a 2 GiB Talos-shaped image in {} …", dir.display());
        let raw = dir.join("talos-bench.raw");
        let n = build_image(&raw, &dir);
        let t = Instant::now();
        run(Command::new("xz").args(["-0", "-T0", "-f"]).arg(&raw));
        eprintln!("xz -0 -T0: {:.1} s", t.elapsed().as_secs_f64());
        Some(n)
    };
    let stored = std::fs::metadata(&xz).unwrap().len();
    println!(
        "image: 2048 MiB Talos-shaped, {} as .raw.xz (xz -0 -T0)",
        mb(stored)
    );
    if let Some(n) = non_zero {
        println!("non-zero data: {}", mb(n));
    }

    let only = std::env::var("ROCKUSB_BENCH_ONLY").unwrap_or_default();
    if only == "verify" {
        verify_modes(&xz, &dir);
        drop(temp);
        return;
    }

    // 1. Decode + zero scan + hashing against xz -dc -T0.
    let xz_secs = best_of(|| {
        let t = Instant::now();
        let status = Command::new("xz")
            .args(["-dc", "-T0"])
            .arg(&xz)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        t.elapsed().as_secs_f64()
    });
    let decode_only = best_of(|| {
        let t = Instant::now();
        let mut r = ImageSource::open(&xz).unwrap().into_decoded().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        while r.read(&mut buf).unwrap() > 0 {}
        t.elapsed().as_secs_f64()
    });
    let mut planned = (0u64, 0u64);
    let pipeline_secs = best_of(|| {
        let t = Instant::now();
        planned = pipeline_only(&xz);
        t.elapsed().as_secs_f64()
    });
    let rate = |secs: f64| IMAGE_LEN as f64 / secs / 1e6;
    println!(
        "xz -dc -T0 > /dev/null:                 {:6.2} s  {:7.0} MB/s of image",
        xz_secs,
        rate(xz_secs)
    );
    println!(
        "rockusb xz decode only:                 {:6.2} s  {:7.0} MB/s",
        decode_only,
        rate(decode_only)
    );
    println!(
        "rockusb decode + zero scan + hashing:   {:6.2} s  {:7.0} MB/s  = {:.2} x xz -dc -T0 (target >= 0.9)",
        pipeline_secs,
        rate(pipeline_secs),
        xz_secs / pipeline_secs
    );
    println!(
        "  skipping every zero block (no file-system awareness): {} to write, {} skipped",
        mb(planned.0),
        mb(planned.1)
    );

    // 2 and 3. Flash on the virtual board with the USB 2.0 link model.
    let link = LinkModel::default();
    println!(
        "link model: {:.0} MB/s, {:.1} ms per command",
        link.bytes_per_second / 1e6,
        link.command_overhead * 1e3
    );
    let only_sparse = std::env::var("ROCKUSB_BENCH_ONLY").is_ok_and(|v| v == "sparse");
    for (label, args) in [
        ("sparse (default), --no-verify", vec!["--no-verify"]),
        ("sparse (default), verified", vec![]),
        ("--full, --no-verify", vec!["--full", "--no-verify"]),
        ("--full, verified", vec!["--full"]),
    ] {
        if only_sparse && !label.starts_with("sparse") {
            continue;
        }
        // The virtual board writes its backing file after sleeping off the wire time, so
        // the file's write cost adds to every command: on ext4 here ~13 % of a 4 MiB
        // command, on tmpfs ~1.5 %. A board in RAM measures the flasher, not the disk.
        let shm = Path::new("/dev/shm");
        let board_root = if shm.is_dir() {
            shm.join(format!("rockusb-bench-{}", std::process::id()))
        } else {
            dir.join("boards")
        };
        let _ = std::fs::remove_dir_all(&board_root);
        let mut board = VirtualBoard::open_or_create(&board_root.join("m6"), || BoardConfig {
            emmc_bytes: 4096 * MIB,
            ..BoardConfig::nanopi_m6(1)
        })
        .unwrap();
        board.set_link(Some(link)).unwrap();
        drop(board);
        let loader = board_root.join("standin.bin");
        let boot_loader =
            rockusb_loaders::standin::build(rockusb_loaders::soc::by_name("RK3588").unwrap());
        std::fs::write(&loader, boot_loader).unwrap();
        let out = rockusb(&board_root, &["boot", loader.to_str().unwrap()]).0;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let mut cli = vec!["--json", "flash", xz.to_str().unwrap()];
        cli.extend(args);
        let t = Instant::now();
        let (out, max_rss_kib) = rockusb(&board_root, &cli);
        let wall = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["event"] == "result")
            .unwrap()["result"]
            .clone();
        let written = result["bytes_written"].as_u64().unwrap();
        let verified = match result["verify"]["verify"].as_str() {
            Some("verified") => result["verify"]["bytes"].as_u64().unwrap(),
            _ => 0,
        };
        let bound = (written + verified) as f64 / link.bytes_per_second;
        let write_s = result["write_seconds"].as_f64().unwrap();
        let write_bound = written as f64 / link.bytes_per_second;
        println!("flash {label}:");
        println!(
            "  crossed the link: {} written{}, {} commands of up to {} sectors",
            mb(written),
            if verified > 0 {
                format!(" + {} read back", mb(verified))
            } else {
                String::new()
            },
            result["commands"],
            result["command_sectors"]
        );
        println!(
            "  whole command {:6.2} s, bound {:6.2} s: {:.3} x bound (target <= 1.10)",
            wall,
            bound,
            wall / bound
        );
        println!(
            "  write phase   {:6.2} s, bound {:6.2} s: {:.3} x bound",
            write_s,
            write_bound,
            write_s / write_bound
        );
        println!(
            "  writer idle (waiting for the pipeline) {:.2} s; read back while waiting: {}",
            result["writer_idle_seconds"].as_f64().unwrap(),
            mb(result["verified_during_write"].as_u64().unwrap())
        );
        println!(
            "  peak RSS {:.1} MiB (target < 100)",
            max_rss_kib as f64 / 1024.0
        );
        if let Some(parts) = result["partitions"].as_array().filter(|p| !p.is_empty()) {
            println!(
                "  written {} vs {} when every zero block is skipped (+{}):",
                mb(written),
                mb(planned.0),
                mb(written.saturating_sub(planned.0))
            );
            for p in parts {
                println!(
                    "    {:>5} {:<6} wrote {:>10}, skipped {:>10} ({})",
                    p["name"].as_str().unwrap_or(""),
                    p["file_system"].as_str().unwrap_or("-"),
                    mb(p["bytes_written"].as_u64().unwrap_or(0)),
                    mb(p["bytes_skipped"].as_u64().unwrap_or(0)),
                    p["writes"].as_str().unwrap_or("")
                );
            }
        }
        let _ = std::fs::remove_dir_all(&board_root);
    }
    verify_modes(&xz, &dir);
    drop(temp);
}

/// A fresh virtual board in RAM where possible (see the note in `main`), booted with the
/// stand-in loader, its link model on.
fn fresh_board(dir: &Path, personality: Personality) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let board_root = if shm.is_dir() {
        shm.join(format!("rockusb-bench-{}", std::process::id()))
    } else {
        dir.join("boards")
    };
    let _ = std::fs::remove_dir_all(&board_root);
    let mut board = VirtualBoard::open_or_create(&board_root.join("m6"), || BoardConfig {
        emmc_bytes: 4096 * MIB,
        personality,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
    board.set_link(Some(LinkModel::default())).unwrap();
    drop(board);
    let loader = board_root.join("standin.bin");
    let soc = rockusb_loaders::soc::by_name("RK3588").unwrap();
    std::fs::write(&loader, rockusb_loaders::standin::build(soc)).unwrap();
    let out = rockusb(&board_root, &["boot", loader.to_str().unwrap()]).0;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    board_root
}

/// Part 5 of the benchmark: the same sparse flash verified by reading back, on the device,
/// and not at all, on the USB 2.0 and the USB 3 link models.
///
/// It flashes the decoded `.raw` (kept beside the `.raw.xz`): part 2 already measures the
/// `.raw.xz` against the link, and on a machine with two busy cores the xz decoder, not the
/// link, would set the pace, hiding the differences this part is about.
fn verify_modes(xz: &Path, dir: &Path) {
    let raw = xz.with_extension("");
    if !raw.exists() {
        run(Command::new("xz").args(["-dk", "-T0"]).arg(xz));
    }
    let image = raw.to_str().unwrap();
    let usb2 = LinkModel::default();
    let usb3 = LinkModel::usb3();
    println!(
        "verification, sparse flash: USB 2.0 model {:.0} MB/s + {:.1} ms per command (rkbin \
         usbplug personality); USB 3 model {:.0} MB/s + {:.1} ms per command (U-Boot-built \
         usbplug, switched to SuperSpeed); parity re-read on the board at {:.0} MB/s",
        usb2.bytes_per_second / 1e6,
        usb2.command_overhead * 1e3,
        usb3.bytes_per_second / 1e6,
        usb3.command_overhead * 1e3,
        rockusb_virtual::link::MEDIUM_READ_BYTES_PER_SECOND / 1e6
    );
    let mut times = Vec::new();
    for (link_name, link, personality) in [
        ("USB 2.0", usb2, Personality::Usbplug),
        ("USB 3", usb3, Personality::UbootUsbplug),
    ] {
        for verify in ["readback", "device", "none"] {
            let board_root = fresh_board(dir, personality);
            let t = Instant::now();
            let (out, _) = rockusb(&board_root, &["--json", "flash", image, "--verify", verify]);
            let wall = t.elapsed().as_secs_f64();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let result = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| v["event"] == "result")
                .unwrap()["result"]
                .clone();
            let written = result["bytes_written"].as_u64().unwrap();
            let read_back = match result["verify"]["verify"].as_str() {
                Some("verified") => result["verify"]["bytes"].as_u64().unwrap(),
                _ => 0,
            };
            let unverified_bound = written as f64 / link.bytes_per_second;
            let own_bound = (written + read_back) as f64 / link.bytes_per_second;
            println!(
                "  {link_name:7} --verify {verify:8} {wall:6.2} s at {} ({} commands of up to {} \
                 sectors): {:.3} x its own bound {:.2} s, {:.3} x the unverified bound {:.2} s{}",
                result["usb_speed"].as_str().unwrap_or("?"),
                result["commands"],
                result["command_sectors"],
                wall / own_bound,
                own_bound,
                wall / unverified_bound,
                unverified_bound,
                if verify == "device" {
                    " (target <= 1.10)"
                } else {
                    ""
                }
            );
            if verify == "device" {
                let checked = result["verify"]["bytes"].as_u64().unwrap_or(0);
                let reread = checked as f64 / rockusb_virtual::link::MEDIUM_READ_BYTES_PER_SECOND;
                println!(
                    "    of which the board re-reading {} for parity: {reread:.2} s (modelled); \
                     without it {:.3} x the unverified bound",
                    mb(checked),
                    (wall - reread) / unverified_bound
                );
            }
            times.push((link_name, verify, wall));
            let _ = std::fs::remove_dir_all(&board_root);
        }
    }
    for verify in ["readback", "device", "none"] {
        let of = |link| {
            times
                .iter()
                .find(|(l, v, _)| *l == link && *v == verify)
                .map_or(f64::NAN, |t| t.2)
        };
        println!(
            "  --verify {verify:8} USB 3 {:6.2} s vs USB 2.0 {:6.2} s: {:.2} x faster",
            of("USB 3"),
            of("USB 2.0"),
            of("USB 2.0") / of("USB 3")
        );
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

fn best_of(mut f: impl FnMut() -> f64) -> f64 {
    (0..RUNS).map(|_| f()).fold(f64::INFINITY, f64::min)
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap();
    assert!(status.success(), "{cmd:?} failed");
}

/// The flash pipeline up to the writer (decode, plan, hash, runs), without USB; returns
/// (bytes to write, bytes skipped).
fn pipeline_only(xz: &Path) -> (u64, u64) {
    let mut source = ImageSource::open(xz).unwrap();
    let blocks = source.xz_blocks.take();
    let (input, spec) = source.into_parts();
    let feed = pipeline::start_decode(input, spec, blocks, 0);
    let must_write = vec![rockusb_images::ByteRange::new(
        0,
        NANOPI_M6.must_write_prefix,
    )];
    let planner = Planner::new(PlanConfig {
        min_gap: rockusb::ops::flash::SPARSE_MIN_GAP,
        ..PlanConfig::sparse(must_write)
    })
    .unwrap();
    let run_max = 8192 * 512;
    let (rx, recycler, _more) = pipeline::start_plan_hash(
        Vec::new(),
        None,
        feed.decoded,
        feed.chunk_pool,
        PlanHashConfig {
            planner,
            bmap: None,
            held_len: NANOPI_M6.must_write_prefix,
            run_max,
            run_pool: feed.buffering.run_budget / run_max,
            surplus_chunks: feed.buffering.surplus_chunks,
        },
    );
    let mut written = 0u64;
    for msg in rx {
        match msg {
            ToWriter::Run(run) => {
                written += run.data.len() as u64;
                recycler.recycle(run);
            }
            ToWriter::End(end) => {
                written += end.held.iter().map(|r| r.data.len() as u64).sum::<u64>();
                return (written, end.stats.bytes_skipped);
            }
            ToWriter::Failed(f) => panic!("{f:?}"),
            _ => {}
        }
    }
    panic!("the pipeline ended without its end");
}

/// Runs the `rockusb` binary on the virtual boards under `root`; returns its output and
/// peak RSS in KiB.
///
/// The peak is the child's VmHWM, polled from /proc while it runs: `ru_maxrss` (wait4,
/// getrusage) would not do, because Linux folds the address space the child had before
/// `exec` (here the benchmark's own, shared through vfork) into it.
fn rockusb(root: &Path, args: &[&str]) -> (std::process::Output, i64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rockusb"))
        .env("ROCKUSB_VIRTUAL_DIR", root)
        .env("ROCKUSB_VIRTUAL", "m6")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0i64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
                if let Some(kib) = status.ok().and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
                }) {
                    peak = peak.max(kib);
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            peak
        })
    };
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let mut out = Vec::new();
    let _ = stdout.read_to_end(&mut out);
    let err = err_thread.join().unwrap();
    let status = child.wait().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = watcher.join().unwrap();
    (
        std::process::Output {
            status,
            stdout: out,
            stderr: err,
        },
        peak,
    )
}

/// Deterministic filler: `random_part` of every 64 KiB is random, the rest text-like
/// (16 letters: ~4 bits per byte, as compressible as a kernel image).
fn filler(len: usize, seed: u64, random_part: f64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = vec![0u8; len];
    let split = (65536.0 * random_part) as usize;
    for (i, block) in out.chunks_mut(65536).enumerate() {
        let _ = i;
        for (j, word) in block.chunks_mut(8).enumerate() {
            let r = next().to_le_bytes();
            if j * 8 < split {
                word.copy_from_slice(&r[..word.len()]);
            } else {
                for (b, v) in word.iter_mut().zip(r) {
                    *b = b"etaoinshrdlucmfw"[(v & 15) as usize];
                }
            }
        }
    }
    out
}

/// Writes the image; returns its non-zero byte count.
fn build_image(path: &Path, dir: &Path) -> u64 {
    rockusb_testkit::talos::partition(
        path,
        IMAGE_LEN,
        rockusb_testkit::talos::TalosTable {
            efi_mib: 100,
            boot_mib: 1800,
        },
    );
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let put = |offset: u64, data: &[u8]| f.write_all_at(data, offset).unwrap();
    // u-boot-rockchip.bin at sector 64: idbloader, 0xFF padding, u-boot.itb at 8 MiB.
    let mut uboot = vec![0xFFu8; (8 * MIB - 32768) as usize];
    uboot[..256 * 1024].copy_from_slice(&filler(256 * 1024, 1, 1.0));
    uboot[..4].copy_from_slice(b"RKNS");
    put(32768, &uboot);
    put(8 * MIB, &filler(1536 * 1024, 2, 0.6));
    // EFI (FAT32 at 11 MiB): GRUB and friends, 30 MiB in three files.
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let efi = dir.join("efi.img");
    let efi_files: Vec<PathBuf> = (0..3u64)
        .map(|i| {
            let file = files.join(format!("efi{i}.bin"));
            std::fs::write(&file, filler(10 * MIB as usize, 3 + i, 0.5)).unwrap();
            file
        })
        .collect();
    let efi_files: Vec<&Path> = efi_files.iter().map(PathBuf::as_path).collect();
    rockusb_testkit::fs::fat_with_files(&efi, 100 * MIB, &["-F", "32", "-n", "EFI"], &efi_files);
    copy_into(&efi, &f, 11 * MIB);
    // BOOT (XFS at 112 MiB): kernel, then initramfs.xz (already compressed).
    let kernel = files.join("vmlinuz");
    std::fs::write(&kernel, filler(70 * MIB as usize, 4, 0.4)).unwrap();
    let initramfs = files.join("initramfs.xz");
    std::fs::write(&initramfs, filler(190 * MIB as usize, 5, 1.0)).unwrap();
    let boot = dir.join("boot.img");
    let boot_files = [
        ("vmlinuz", kernel.as_path()),
        ("initramfs.xz", initramfs.as_path()),
    ];
    rockusb_testkit::fs::xfs_with_files(&boot, 1800 * MIB, &boot_files, false);
    copy_into(&boot, &f, 112 * MIB);
    let _ = std::fs::remove_dir_all(&files);
    let _ = std::fs::remove_file(&efi);
    let _ = std::fs::remove_file(&boot);
    drop(f);
    non_zero_bytes(path)
}

/// Copies the non-zero 1 MiB pieces of `from` into `to` at `offset` (keeps it sparse).
fn copy_into(from: &Path, to: &std::fs::File, offset: u64) {
    let src = std::fs::File::open(from).unwrap();
    let len = src.metadata().unwrap().len();
    let mut buf = vec![0u8; MIB as usize];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(MIB) as usize;
        src.read_exact_at(&mut buf[..n], at).unwrap();
        if buf[..n].iter().any(|&b| b != 0) {
            to.write_all_at(&buf[..n], offset + at).unwrap();
        }
        at += n as u64;
    }
}

/// Bytes in the image's non-zero 4 KiB blocks.
fn non_zero_bytes(path: &Path) -> u64 {
    let file = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; MIB as usize];
    let mut total = 0;
    for i in 0..IMAGE_LEN / MIB {
        file.read_exact_at(&mut buf, i * MIB).unwrap();
        total += buf
            .chunks(4096)
            .filter(|b| b.iter().any(|&x| x != 0))
            .count() as u64
            * 4096;
    }
    total
}
