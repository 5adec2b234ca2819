//! Sparse flashing over a board that held another system: zero runs are skipped only
//! where the new image's file systems call the space free, so no old byte survives where
//! the new file systems will read.
//!
//! The fixture is made with the real tools: an old disk (XFS whose log was churned
//! through a loop mount, FAT32 and ext4 full of files, random bytes in a partition of no
//! known file system) is put on the virtual board's eMMC, then a new Talos-shaped image
//! with freshly made file systems at the same offsets is flashed over it, and each
//! partition is checked with the file system's own checker.

mod flash_support;

use flash_support::{
    compress, flash, json_result, pseudo_random, rockusb_with_stdin, standin, text, write_at, xz,
};
use rockusb::protocol::StorageKind;
use rockusb_testkit::fs::sized_file;
use rockusb_virtual::{BoardConfig, VirtualBoard};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MIB: u64 = 1024 * 1024;
const BOARD: &str = "m6";
const EMMC_LEN: u64 = 512 * MIB;
const IMAGE_LEN: u64 = 440 * MIB;

/// The partitions both disks share: (number, name, start MiB, size MiB, sgdisk type).
const PARTS: [(u32, &str, u64, u64, &str); 6] = [
    (1, "EFI", 11, 64, "EF00"),
    (2, "BIOS", 75, 1, "EF02"),
    (3, "BOOT", 76, 320, "8300"),
    (4, "META", 396, 1, "8300"),
    (5, "DATA", 397, 32, "8300"),
    (6, "OTHER", 429, 8, "8300"),
];

fn part(name: &str) -> (u64, u64) {
    let p = PARTS.iter().find(|p| p.1 == name).expect("known partition");
    (p.2 * MIB, p.3 * MIB)
}

fn tools(test: &str) -> bool {
    [
        ("sgdisk", "gdisk"),
        ("xz", "xz-utils"),
        ("gzip", "gzip"),
        ("mkfs.xfs", "xfsprogs"),
        ("xfs_repair", "xfsprogs"),
        ("mkfs.vfat", "dosfstools"),
        ("fsck.vfat", "dosfstools"),
        ("mcopy", "mtools"),
        ("mshowfat", "mtools"),
        ("mkfs.ext4", "e2fsprogs"),
        ("e2fsck", "e2fsprogs"),
        ("debugfs", "e2fsprogs"),
    ]
    .iter()
    .all(|(tool, package)| rockusb_testkit::tool(test, tool, package))
}

fn run<C: std::borrow::BorrowMut<Command>>(mut cmd: C) -> Vec<u8> {
    rockusb_testkit::run(cmd.borrow_mut().stdin(Stdio::null()))
}

/// A FAT32 file system of `len` bytes (512-byte clusters, as mkfs.vfat gives a Talos-sized
/// ESP) holding every file of `files`.
fn fat32(path: &Path, len: u64, label: &str, files: &Path) {
    let entries = rockusb_testkit::files_in(files);
    let entries: Vec<&Path> = entries.iter().map(PathBuf::as_path).collect();
    let mkfs = ["-F", "32", "-S", "512", "-s", "1", "-n", label];
    rockusb_testkit::fs::fat_with_files(path, len, &mkfs, &entries);
}

fn ext4(path: &Path, len: u64, files: &Path) {
    sized_file(path, len);
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-d"])
        .arg(files)
        .arg(path));
}

/// An XFS of `len` bytes (mkfs.xfs's defaults) holding `files`.
fn xfs(path: &Path, len: u64, files: &[(&str, PathBuf)]) {
    let files: Vec<(&str, &Path)> = files.iter().map(|(n, p)| (*n, p.as_path())).collect();
    rockusb_testkit::fs::xfs_with_files(path, len, &files, false);
}

/// Churns an XFS through a loop mount, so its log holds records with its UUID; `false`
/// (the test is skipped, or fails under CI) when this machine cannot loop-mount.
fn churn_xfs(test: &str, image: &Path, dir: &Path) -> bool {
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-o", "loop"])
        .arg(image)
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        rockusb_testkit::missing(
            test,
            "a loop mount (root and /dev/loop*)",
            "run the test as root",
        );
        return false;
    }
    for round in 0..3 {
        let sub = mnt.join(format!("d{round}"));
        std::fs::create_dir(&sub).unwrap();
        for i in 0..3000 {
            std::fs::write(sub.join(format!("f{i}")), b"").unwrap();
        }
        run(Command::new("sync"));
    }
    std::fs::write(mnt.join("data"), pseudo_random(4 * MIB as usize, 11)).unwrap();
    std::fs::remove_dir_all(mnt.join("d0")).unwrap();
    run(Command::new("umount").arg(&mnt));
    true
}

/// A folder of `count` files of `len` pseudo-random bytes, plus `extra` files.
fn files(dir: &Path, name: &str, count: usize, len: usize, extra: &[(&str, Vec<u8>)]) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..count {
        std::fs::write(
            folder.join(format!("f{i:03}.bin")),
            pseudo_random(len, 1000 + i as u64),
        )
        .unwrap();
    }
    for (file, bytes) in extra {
        std::fs::write(folder.join(file), bytes).unwrap();
    }
    folder
}

/// A Talos-shaped disk: GPT entries at LBA 2 + 20480, an RKNS bootloader at 32 KiB, and
/// the given partition images at their offsets.
fn disk(path: &Path, contents: &[(&str, &Path)]) {
    sized_file(path, IMAGE_LEN);
    let mut cmd = Command::new("sgdisk");
    cmd.arg("--move-main-table=20482");
    for (n, name, start, size, kind) in PARTS {
        cmd.args(["-n", &format!("{n}:{}:+{size}M", start * 2048)])
            .args(["-t", &format!("{n}:{kind}"), "-c", &format!("{n}:{name}")]);
    }
    run(cmd.arg(path).stdout(Stdio::null()));
    let mut bootloader = vec![0xFFu8; (8 * MIB - 32768) as usize];
    bootloader[..100 * 1024].copy_from_slice(&pseudo_random(100 * 1024, 1));
    bootloader[..4].copy_from_slice(b"RKNS");
    write_at(path, 32768, &bootloader);
    for (name, image) in contents {
        let (start, _) = part(name);
        copy_non_zero(image, |offset, data| write_at(path, start + offset, data));
    }
}

/// Calls `write` for every non-zero 64 KiB piece of the file (keeps targets sparse).
fn copy_non_zero(file: &Path, mut write: impl FnMut(u64, &[u8])) {
    let bytes = std::fs::read(file).unwrap();
    for (i, piece) in bytes.chunks(64 * 1024).enumerate() {
        if piece.iter().any(|&b| b != 0) {
            write(i as u64 * 64 * 1024, piece);
        }
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    new_disk: PathBuf,
    old: Vec<(&'static str, PathBuf)>,
    new: Vec<(&'static str, PathBuf)>,
    /// Bytes of the new DATA (ext4) and EFI (FAT32) `zeros.bin`, as absolute disk ranges.
    zero_file_ranges: Vec<(u64, u64)>,
    new_other: Vec<u8>,
}

const ZEROS_LEN: usize = 512 * 1024;

fn fixture(test: &str) -> Option<Fixture> {
    if !tools(test) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The old system.
    let old_boot = d.join("old-boot.img");
    sized_file(&old_boot, part("BOOT").1);
    run(Command::new("mkfs.xfs").arg("-q").arg(&old_boot));
    if !churn_xfs(test, &old_boot, d) {
        return None;
    }
    let old_efi = d.join("old-efi.img");
    fat32(
        &old_efi,
        part("EFI").1,
        "OLD",
        &files(d, "old-efi-files", 300, 150 * 1024, &[]),
    );
    let old_data = d.join("old-data.img");
    ext4(
        &old_data,
        part("DATA").1,
        &files(d, "old-data-files", 200, 100 * 1024, &[]),
    );
    let old_other = d.join("old-other.img");
    std::fs::write(&old_other, pseudo_random(part("OTHER").1 as usize, 21)).unwrap();

    // The new image: fresh file systems with a few files and a file of zeros in each.
    let zeros = vec![0u8; ZEROS_LEN];
    let new_boot = d.join("new-boot.img");
    let boot_files = files(
        d,
        "new-boot-files",
        2,
        300 * 1024,
        &[("zeros.bin", zeros.clone())],
    );
    xfs(
        &new_boot,
        part("BOOT").1,
        &[
            ("a", boot_files.join("f000.bin")),
            ("zeros", boot_files.join("zeros.bin")),
        ],
    );
    let new_efi = d.join("new-efi.img");
    fat32(
        &new_efi,
        part("EFI").1,
        "NEW",
        &files(
            d,
            "new-efi-files",
            3,
            200 * 1024,
            &[("zeros.bin", zeros.clone())],
        ),
    );
    // mke2fs -d leaves zero blocks of a file as holes: store random bytes, then zero the
    // file's blocks in place, so the file owns blocks that hold zeros.
    let new_data = d.join("new-data.img");
    let random_zeros = pseudo_random(ZEROS_LEN, 23);
    ext4(
        &new_data,
        part("DATA").1,
        &files(
            d,
            "new-data-files",
            4,
            100 * 1024,
            &[("zeros.bin", random_zeros)],
        ),
    );
    for (at, len) in ext4_file_ranges(&new_data, "/zeros.bin", 0) {
        write_at(&new_data, at, &vec![0u8; len as usize]);
    }
    // No file system: data blocks with zero gaps between them.
    let mut other = pseudo_random(part("OTHER").1 as usize, 22);
    for (i, block) in other.chunks_mut(64 * 1024).enumerate() {
        if i % 2 == 1 {
            block.fill(0);
        }
    }
    let new_other = d.join("new-other.img");
    std::fs::write(&new_other, &other).unwrap();

    let new_disk = d.join("new.raw");
    disk(
        &new_disk,
        &[
            ("EFI", &new_efi),
            ("BOOT", &new_boot),
            ("DATA", &new_data),
            ("OTHER", &new_other),
        ],
    );
    let mut zero_file_ranges = ext4_file_ranges(&new_data, "/zeros.bin", part("DATA").0);
    zero_file_ranges.extend(fat_file_ranges(&new_efi, "zeros.bin", part("EFI").0));
    Some(Fixture {
        new_disk,
        old: vec![
            ("BOOT", old_boot),
            ("EFI", old_efi),
            ("DATA", old_data),
            ("OTHER", old_other),
        ],
        new: vec![
            ("BOOT", new_boot),
            ("EFI", new_efi),
            ("DATA", new_data),
            ("OTHER", new_other),
        ],
        zero_file_ranges,
        new_other: other,
        dir,
    })
}

/// The disk ranges of an ext4 file's blocks (debugfs `blocks`).
fn ext4_file_ranges(image: &Path, file: &str, base: u64) -> Vec<(u64, u64)> {
    let out = run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("blocks {file}"))
        .arg(image));
    let blocks: Vec<u64> = String::from_utf8_lossy(&out)
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(
        blocks.len() * 4096,
        ZEROS_LEN,
        "{file} has every block allocated"
    );
    blocks.iter().map(|b| (base + b * 4096, 4096)).collect()
}

/// The disk ranges of a FAT file's clusters (mtools `mshowfat`: `<first-last> …`).
fn fat_file_ranges(image: &Path, file: &str, base: u64) -> Vec<(u64, u64)> {
    let out = run(Command::new("mshowfat")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(image)
        .arg(format!("::{file}")));
    let text = String::from_utf8_lossy(&out).to_string();
    // 512-byte clusters; data starts after 32 reserved sectors and two FATs.
    let boot = std::fs::read(image).unwrap();
    let fat_sectors = u32::from_le_bytes(boot[36..40].try_into().unwrap()) as u64;
    let reserved = u16::from_le_bytes(boot[14..16].try_into().unwrap()) as u64;
    let data = (reserved + 2 * fat_sectors) * 512;
    let mut ranges = Vec::new();
    for span in text
        .split(['<', '>'])
        .filter(|s| s.contains('-') || s.trim().parse::<u64>().is_ok())
    {
        let mut ends = span.split('-').filter_map(|n| n.trim().parse::<u64>().ok());
        if let Some(first) = ends.next() {
            let last = ends.next().unwrap_or(first);
            ranges.push((base + data + (first - 2) * 512, (last - first + 1) * 512));
        }
    }
    let total: u64 = ranges.iter().map(|r| r.1).sum();
    assert_eq!(total, ZEROS_LEN as u64, "clusters of {file}: {text}");
    ranges
}

/// A board whose eMMC holds the old disk, with random bytes planted under every block of
/// the new image's zero-filled files; returns the stand-in loader for it.
fn used_board(fx: &Fixture) -> PathBuf {
    let root = fx.dir.path();
    let mut board = VirtualBoard::open_or_create(&root.join(BOARD), || BoardConfig {
        emmc_bytes: EMMC_LEN,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
    let old_disk = root.join("old.raw");
    let old: Vec<(&str, &Path)> = fx.old.iter().map(|(n, p)| (*n, p.as_path())).collect();
    disk(&old_disk, &old);
    copy_non_zero(&old_disk, |offset, data| {
        board
            .write_storage(StorageKind::Emmc, offset, data)
            .unwrap()
    });
    for (i, &(at, len)) in fx.zero_file_ranges.iter().enumerate() {
        board
            .write_storage(
                StorageKind::Emmc,
                at,
                &pseudo_random(len as usize, 500 + i as u64),
            )
            .unwrap();
    }
    standin(root)
}

/// Runs `body` with the fixture, its folder and the stand-in loader of the board
/// [`used_board`] sets up; skipped like [`fixture`].
fn on_used_board(test: &str, body: impl FnOnce(&Fixture, &Path, &Path)) {
    if let Some(fx) = fixture(test) {
        let loader = used_board(&fx);
        body(&fx, fx.dir.path(), &loader);
    }
}

/// The board as the flash left it.
fn flashed_board(root: &Path) -> VirtualBoard {
    VirtualBoard::open(&root.join(BOARD)).unwrap()
}

/// The board's bytes of one partition, in a file for the checkers.
fn extract(board: &mut VirtualBoard, dir: &Path, name: &str) -> PathBuf {
    let (start, len) = part(name);
    let bytes = board
        .read_storage(StorageKind::Emmc, start, len as usize)
        .unwrap();
    let path = dir.join(format!("board-{name}.img"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Runs a checker; returns (exit code, stdout + stderr).
fn check(cmd: &mut Command) -> (i32, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn xfs_repair(image: &Path) -> (i32, String) {
    check(Command::new("xfs_repair").arg("-n").arg(image))
}

fn fsck_vfat(image: &Path) -> (i32, String) {
    check(Command::new("fsck.vfat").arg("-n").arg(image))
}

fn e2fsck(image: &Path) -> (i32, String) {
    check(Command::new("e2fsck").arg("-fn").arg(image))
}

fn assert_clean(board: &mut VirtualBoard, dir: &Path) {
    let (code, out) = xfs_repair(&extract(board, dir, "BOOT"));
    assert!(
        code == 0 && !out.contains("mismatched uuid") && !out.contains("ERROR"),
        "XFS after flashing:\n{out}"
    );
    let (code, out) = fsck_vfat(&extract(board, dir, "EFI"));
    assert!(
        code == 0 && !out.contains("Reclaimed"),
        "FAT32 after flashing:\n{out}"
    );
    let (code, out) = e2fsck(&extract(board, dir, "DATA"));
    assert_eq!(code, 0, "ext4 after flashing:\n{out}");
}

#[test]
fn the_fixture_reproduces_the_corruption_of_skipping_every_zero_block() {
    // The old planner's result, made offline: the new image's non-zero 4 KiB blocks laid
    // over the old partitions. Each checker must object, or the other tests prove nothing.
    let Some(fx) = fixture("naive_zero_skipping_corrupts") else {
        return;
    };
    let naive = |name: &str| -> PathBuf {
        let old = &fx.old.iter().find(|p| p.0 == name).unwrap().1;
        let new = std::fs::read(&fx.new.iter().find(|p| p.0 == name).unwrap().1).unwrap();
        let mut bytes = std::fs::read(old).unwrap();
        // The random bytes the used board holds under the new zero-filled files.
        let (base, _) = part(name);
        for (i, &(at, len)) in fx.zero_file_ranges.iter().enumerate() {
            if let Some(rel) = at.checked_sub(base).filter(|&r| r < bytes.len() as u64) {
                let r = rel as usize..(rel + len) as usize;
                bytes[r].copy_from_slice(&pseudo_random(len as usize, 500 + i as u64));
            }
        }
        for (i, block) in new.chunks(4096).enumerate() {
            if block.iter().any(|&b| b != 0) {
                bytes[i * 4096..i * 4096 + block.len()].copy_from_slice(block);
            }
        }
        let path = fx.dir.path().join(format!("naive-{name}.img"));
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let (_, out) = xfs_repair(&naive("BOOT"));
    assert!(
        out.contains("mismatched uuid in log"),
        "xfs_repair -n:\n{out}"
    );
    let (code, out) = fsck_vfat(&naive("EFI"));
    assert!(
        code != 0 || out.contains("Reclaimed"),
        "fsck.vfat -n:\n{out}"
    );
    // e2fsck passes this one (it trusts the group's unused-inode count and does not
    // read file contents), but the zero-filled file now reads the old bytes.
    let dumped = fx.dir.path().join("naive-zeros.bin");
    run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("dump /zeros.bin {}", dumped.display()))
        .arg(naive("DATA")));
    let contents = std::fs::read(&dumped).unwrap();
    assert_eq!(contents.len(), ZEROS_LEN);
    assert!(
        contents.iter().any(|&b| b != 0),
        "zeros.bin kept no old byte"
    );
}

#[test]
fn sparse_xz_flash_over_a_used_board_leaves_every_file_system_clean() {
    on_used_board("sparse_flash_over_used_board", |fx, root, loader| {
        let xz = xz(&fx.new_disk);
        let out = flash(root, &xz, loader, &["--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let mut board = flashed_board(root);
        assert_clean(&mut board, root);

        // The zero-filled files read as zeros, though random old bytes lay under them.
        let efi = extract(&mut board, root, "EFI");
        let zeros = run(Command::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(&efi)
            .args(["::zeros.bin", "-"]));
        assert!(
            zeros.len() == ZEROS_LEN && zeros.iter().all(|&b| b == 0),
            "FAT32 zeros.bin"
        );
        let data = extract(&mut board, root, "DATA");
        let dumped = root.join("dumped.bin");
        run(Command::new("debugfs")
            .arg("-R")
            .arg(format!("dump /zeros.bin {}", dumped.display()))
            .arg(&data));
        let zeros = std::fs::read(&dumped).unwrap();
        assert!(
            zeros.len() == ZEROS_LEN && zeros.iter().all(|&b| b == 0),
            "ext4 zeros.bin"
        );

        // No file system: written in full, zeros included, and reported so.
        let (start, len) = part("OTHER");
        let other = board
            .read_storage(StorageKind::Emmc, start, len as usize)
            .unwrap();
        assert!(
            other == fx.new_other,
            "the unknown partition equals the image"
        );

        let result = json_result(&out);
        let parts = result["partitions"]
            .as_array()
            .expect("partitions in the result");
        let by_name = |name: &str| {
            parts
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{name} in {parts:?}"))
        };
        for (name, fs) in [("EFI", "FAT32"), ("BOOT", "XFS"), ("DATA", "ext4")] {
            let p = by_name(name);
            assert_eq!(p["file_system"], fs, "{p}");
            assert_eq!(p["writes"], "free-space", "{p}");
            assert!(p["bytes_skipped"].as_u64().unwrap() > 0, "{p}");
            assert!(
                p["bytes_skipped"].as_u64() <= p["free_bytes"].as_u64(),
                "{p}"
            );
        }
        // Most of BOOT is free and skipped: the sparse flash still pays only for data.
        assert!(by_name("BOOT")["bytes_skipped"].as_u64().unwrap() > 200 * MIB);
        let other = by_name("OTHER");
        assert_eq!(other["writes"], "full");
        assert!(other["file_system"].is_null());
        assert!(
            other["reason"].as_str().unwrap().contains("no file system"),
            "{other}"
        );
        assert_eq!(other["bytes_written"], len);
        assert_eq!(result["verify"]["verify"], "verified");
    });
}

#[test]
fn a_gzip_stream_over_a_used_board_writes_each_partition_in_full_and_says_why() {
    on_used_board("gzip_flash_over_used_board", |fx, root, loader| {
        let gz = compress(&fx.new_disk, "gzip", &["-1"], "gz");
        let out = rockusb_with_stdin(
            root,
            &["flash", "-", "--loader", loader.to_str().unwrap(), "--json"],
            Some(&gz),
        );
        assert!(out.status.success(), "{}", text(&out));
        let mut board = flashed_board(root);
        assert_clean(&mut board, root);
        let result = json_result(&out);
        for p in result["partitions"].as_array().unwrap() {
            assert_eq!(p["writes"], "full", "{p}");
            assert!(
                p["reason"].as_str().unwrap().contains("standard input"),
                "{p}"
            );
            assert_eq!(p["bytes_written"], p["len"], "{p}");
        }
    });
}
