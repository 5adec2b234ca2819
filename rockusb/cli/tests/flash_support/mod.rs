//! Shared by the flash integration tests: Talos-shaped images built with the real
//! `sgdisk` and `xz`, virtual boards with a small eMMC, and running the `rockusb` binary.
#![allow(dead_code)]

use rockusb::protocol::StorageKind;
use rockusb_virtual::{BoardConfig, VirtualBoard};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const MIB: u64 = 1024 * 1024;
/// The test image: 40 MiB, a Talos image scaled down (EFI 8 MiB, BOOT 16 MiB).
pub const IMAGE_LEN: u64 = 40 * MIB;
/// The test boards' eMMC.
pub const EMMC_LEN: u64 = 64 * MIB;
pub const BOARD: &str = "m6";

/// Partition positions in the test image (sectors), as sgdisk places them.
pub const EFI_LBA: u64 = 22528;
pub const BOOT_LBA: u64 = EFI_LBA + 8 * 2048 + 2048;
pub const META_LBA: u64 = BOOT_LBA + 16 * 2048;
pub const META_LEN: u64 = MIB;

pub use rockusb_testkit::talos::{pseudo_random, write_at};

/// True when the tools the image builder needs are installed (else the test is skipped,
/// or fails under CI).
pub fn tools(test: &str) -> bool {
    rockusb_testkit::tool(test, "sgdisk", "gdisk")
        && rockusb_testkit::tool(test, "mkfs.vfat", "dosfstools")
        && rockusb_testkit::tool(test, "mcopy", "mtools")
        && rockusb_testkit::tool(test, "mkfs.xfs", "xfsprogs")
        && rockusb_testkit::tool(test, "xfs_db", "xfsprogs")
        && rockusb_testkit::tool(test, "xz", "xz-utils")
        && rockusb_testkit::tool(test, "zstd", "zstd")
        && rockusb_testkit::tool(test, "gzip", "gzip")
}

/// Runs `body` with a temporary folder (`root`) and the image `make` writes into it
/// (`raw`); when the tools the image builders need are missing, the test is skipped
/// instead (it fails under CI).
pub fn with_image(test: &str, make: fn(&Path) -> PathBuf, body: impl FnOnce(&Path, &Path)) {
    if !tools(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = make(dir.path());
    body(dir.path(), &raw);
}

/// [`with_image`] with the Talos test image ([`talos_image`]).
pub fn with_talos_image(test: &str, body: impl FnOnce(&Path, &Path)) {
    with_image(test, talos_image, body)
}

/// A Talos-shaped image: the GPT entry array at LBA 2 + 20480, EFI/BIOS/BOOT/META as
/// docs/disk-layout.md §1 lays them out (EFI at LBA 22528), an RKNS bootloader at sector
/// 64 padded with 0xFF to 8 MiB, a FAT EFI partition and an XFS BOOT made by mkfs with a
/// few files, random bytes in BIOS (no file system) and an ADV header in META's first
/// 4 KiB.
pub fn talos_image(dir: &Path) -> PathBuf {
    let path = dir.join("talos.raw");
    rockusb_testkit::talos::partition(
        &path,
        IMAGE_LEN,
        rockusb_testkit::talos::TalosTable {
            efi_mib: 8,
            boot_mib: 16,
        },
    );
    // u-boot-rockchip.bin: the idbloader, then 0xFF padding up to u-boot.itb at 8 MiB,
    // so the first 8 MiB hold no zero block at all (as in a real image).
    let mut bootloader = vec![0xFFu8; (8 * MIB - 32768) as usize];
    bootloader[..200 * 1024].copy_from_slice(&pseudo_random(200 * 1024, 1));
    bootloader[..4].copy_from_slice(b"RKNS");
    write_at(&path, 32768, &bootloader);
    // u-boot.itb at 8 MiB, as in a real image.
    write_at(&path, 8 * MIB, &pseudo_random(300 * 1024, 2));
    let efi = efi_partition(dir);
    write_at(&path, EFI_LBA * 512, &std::fs::read(&efi).unwrap());
    write_at(
        &path,
        (EFI_LBA + 8 * 2048) * 512 + 4096,
        &pseudo_random(8192, 4),
    );
    let boot = boot_partition(dir);
    write_at(&path, BOOT_LBA * 512, &std::fs::read(&boot).unwrap());
    write_at(&path, META_LBA * 512, &pseudo_random(4096, 7));
    path
}

/// An 8 MiB FAT file system (as mkfs.vfat sizes it) holding a 256 KiB boot loader.
fn efi_partition(dir: &Path) -> PathBuf {
    let path = dir.join("efi.img");
    let loader = dir.join("BOOTAA64.EFI");
    std::fs::write(&loader, pseudo_random(256 * 1024, 3)).unwrap();
    rockusb_testkit::fs::fat_with_files(&path, 8 * MIB, &["-n", "EFI"], &[&loader]);
    path
}

/// A 16 MiB XFS with a 2 MiB and a 4 KiB file.
fn boot_partition(dir: &Path) -> PathBuf {
    let path = dir.join("boot.img");
    let (big, small) = (dir.join("big.bin"), dir.join("small.bin"));
    std::fs::write(&big, pseudo_random(2 * MIB as usize, 5)).unwrap();
    std::fs::write(&small, pseudo_random(4096, 6)).unwrap();
    let files = [("big", big.as_path()), ("small", small.as_path())];
    rockusb_testkit::fs::xfs_with_files(&path, 16 * MIB, &files, true);
    path
}

/// The free extents of the XFS at `boot` as `xfs_db` lists them: byte ranges relative
/// to its start.
pub fn xfs_free_extents(boot: &Path) -> Vec<std::ops::Range<u64>> {
    let out = rockusb_testkit::run(
        Command::new("xfs_db")
            .args(["-r", "-c", "freesp -d"])
            .arg(boot),
    );
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| {
            let n: Vec<u64> = l
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            // "agno agbno len" rows (1 AG: agbno is the block number); 4 KiB blocks.
            (n.len() == 3 && l.trim_start().starts_with('0'))
                .then(|| n[1] * 4096..(n[1] + n[2]) * 4096)
        })
        .collect()
}

/// Compresses `raw` with a command such as `xz -0 -T0`, keeping the original.
pub fn compress(raw: &Path, tool: &str, args: &[&str], ext: &str) -> PathBuf {
    let out = raw.with_extension(format!("raw.{ext}"));
    let bytes = rockusb_testkit::run(Command::new(tool).args(args).arg("-c").arg(raw));
    std::fs::write(&out, bytes).unwrap();
    out
}

pub fn xz(raw: &Path) -> PathBuf {
    compress(raw, "xz", &["-0", "-T0"], "xz")
}

/// A virtual board folder under `root` with a small eMMC.
pub fn board(root: &Path, read_wall: bool) -> VirtualBoard {
    let mut board = VirtualBoard::open_or_create(&root.join(BOARD), || BoardConfig {
        emmc_bytes: EMMC_LEN,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
    board.set_read_wall(read_wall).unwrap();
    board
}

pub fn open_board(root: &Path) -> VirtualBoard {
    VirtualBoard::open(&root.join(BOARD)).unwrap()
}

pub fn emmc(root: &Path) -> Vec<u8> {
    open_board(root)
        .read_storage(StorageKind::Emmc, 0, EMMC_LEN as usize)
        .unwrap()
}

/// The stand-in loader file for the virtual board.
pub fn standin(root: &Path) -> PathBuf {
    let path = root.join("standin.bin");
    if !path.exists() {
        let out = rockusb(root, &["loader", "standin", "-o", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
    }
    path
}

/// Creates the virtual board under `root` (without the read wall) and returns its
/// stand-in loader.
pub fn board_with_standin(root: &Path) -> PathBuf {
    board(root, false);
    standin(root)
}

/// Boots the board under `root` with the stand-in loader (`rockusb boot`); returns the
/// loader.
pub fn boot_standin(root: &Path) -> PathBuf {
    let loader = standin(root);
    let boot = rockusb(root, &["boot", loader.to_str().unwrap()]);
    assert!(boot.status.success(), "{}", text(&boot));
    loader
}

/// Runs the `rockusb` binary against the virtual boards under `root`.
pub fn rockusb(root: &Path, args: &[&str]) -> Output {
    rockusb_with_stdin(root, args, None)
}

pub fn rockusb_with_stdin(root: &Path, args: &[&str], stdin: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rockusb"));
    cmd.env("ROCKUSB_VIRTUAL_DIR", root)
        .env("ROCKUSB_VIRTUAL", BOARD)
        .env_remove("ROCKUSB_LOADER_PATH")
        .args(args);
    if let Some(path) = stdin {
        cmd.stdin(Stdio::from(std::fs::File::open(path).unwrap()));
    } else {
        cmd.stdin(Stdio::null());
    }
    // A hung flash (a pipeline deadlock) fails the test instead of hanging the suite.
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out_pipe, &mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err_pipe, &mut v);
        v
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HANG_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rockusb {args:?} did not finish within {HANG_LIMIT:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Far longer than any test flash takes (a few seconds) even on a loaded machine.
const HANG_LIMIT: std::time::Duration = std::time::Duration::from_secs(180);

pub fn text(out: &Output) -> String {
    // stderr first and progress lines counted, not printed: a failure's reason must
    // survive the truncation of long test logs.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let is_progress =
        |l: &&str| l.contains("\"event\":\"progress\"") || l.contains("\"event\":\"write-totals\"");
    let progress = stdout.lines().filter(is_progress).count();
    let rest: Vec<&str> = stdout.lines().filter(|l| !is_progress(l)).collect();
    format!(
        "status {}\nstderr:\n{}\nstdout ({progress} progress lines left out):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        rest.join("\n")
    )
}

/// The `result` object of a `--json` run.
pub fn json_result(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "result")
        .unwrap_or_else(|| panic!("no result line:\n{}", text(out)))["result"]
        .clone()
}

/// Every JSON event of a `--json` run.
pub fn json_events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Asserts the eMMC holds the image over every must-write region (the first 11 MiB, the
/// whole META partition) and every non-zero 4 KiB block of the image.
pub fn assert_flashed(emmc: &[u8], image: &[u8]) {
    let prefix = (11 * MIB as usize).min(image.len());
    assert!(emmc[..prefix] == image[..prefix], "the first 11 MiB differ");
    let meta = (META_LBA * 512) as usize..(META_LBA * 512 + META_LEN) as usize;
    if meta.end <= image.len() {
        assert!(emmc[meta.clone()] == image[meta], "META differs");
    }
    for (i, block) in image.chunks(4096).enumerate() {
        if block.iter().any(|&b| b != 0) {
            let at = i * 4096;
            assert!(
                emmc[at..at + block.len()] == *block,
                "the non-zero block at byte {at} differs"
            );
        }
    }
}

/// Plants what an earlier install leaves behind: a Talos ADV in META (both copies and
/// the legacy one in its last KiB), an old backup GPT in the eMMC's last sectors, and
/// old data in a region the image leaves zero.
pub fn plant_stale(root: &Path) -> StaleRegions {
    let mut board = open_board(root);
    let mut adv = vec![0u8; 4096];
    adv[..4].copy_from_slice(&0x5A4B_3C2Du32.to_be_bytes());
    adv[4..64].copy_from_slice(&pseudo_random(60, 99));
    let meta = META_LBA * 512;
    for at in [meta, meta + 4096, meta + 256 * 1024, meta + META_LEN - 1024] {
        board
            .write_storage(StorageKind::Emmc, at, &adv[..1024])
            .unwrap();
    }
    let mut old_gpt = pseudo_random(33 * 512, 98);
    old_gpt[32 * 512..32 * 512 + 8].copy_from_slice(b"EFI PART");
    board
        .write_storage(StorageKind::Emmc, EMMC_LEN - 33 * 512, &old_gpt)
        .unwrap();
    let free = BOOT_LBA * 512 + 12 * MIB;
    let boot = root.join("boot.img");
    if boot.exists() {
        // The fixture's own check: BOOT's XFS calls this range free.
        let rel = 12 * MIB..12 * MIB + 8192;
        assert!(
            xfs_free_extents(&boot)
                .iter()
                .any(|r| r.start <= rel.start && rel.end <= r.end),
            "the planted range must lie in the XFS's free space"
        );
    }
    board
        .write_storage(StorageKind::Emmc, free, &pseudo_random(8192, 97))
        .unwrap();
    StaleRegions {
        meta: meta..meta + META_LEN,
        old_backup_gpt: EMMC_LEN - 33 * 512..EMMC_LEN,
        free_space: free..free + 8192,
    }
}

pub struct StaleRegions {
    pub meta: std::ops::Range<u64>,
    pub old_backup_gpt: std::ops::Range<u64>,
    pub free_space: std::ops::Range<u64>,
}

pub fn range(data: &[u8], r: &std::ops::Range<u64>) -> Vec<u8> {
    data[r.start as usize..r.end as usize].to_vec()
}

/// Runs `rockusb flash IMAGE --loader LOADER` with `extra` arguments (global ones such as
/// `--json` included) against the board under `root`.
pub fn flash(root: &Path, image: &Path, loader: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "flash",
        image.to_str().unwrap(),
        "--loader",
        loader.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    rockusb(root, &args)
}
