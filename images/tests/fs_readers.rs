//! The XFS and ext2/3/4 free-space readers on file systems made by the real tools
//! (`mkfs.xfs`, `mke2fs`), checked against what the tools' own debuggers report
//! (`xfs_db`, `dumpe2fs`, `debugfs`), on damaged copies, and on thousands of
//! pseudo-random mutations.
//!
//! Every image is a sparse file in a temporary folder. `mkfs.xfs` refuses file systems
//! under 300 MB unless `TEST_DIR`, `TEST_DEV` and `QA_CHECK_FS` are set (the escape hatch
//! fstests uses); the small images use it, one test uses a 320 MiB default.

use rockusb_images::ByteRange;
use rockusb_images::fs::{self, FreeSpace, FsError, FsKind};
use rockusb_images::read_at::{ReadAt, SeekReader};
use rockusb_testkit::run;
use rockusb_testkit::talos::pseudo_random;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// True if every tool is installed; otherwise the test is reported as skipped.
fn tools(test: &str, needed: &[(&str, &str)]) -> bool {
    needed
        .iter()
        .all(|(tool, package)| rockusb_testkit::tool(test, tool, package))
}

const XFS_TOOLS: &[(&str, &str)] = &[
    ("mkfs.xfs", "xfsprogs"),
    ("xfs_db", "xfsprogs"),
    ("xfs_repair", "xfsprogs"),
];
const EXT_TOOLS: &[(&str, &str)] = &[
    ("mke2fs", "e2fsprogs"),
    ("dumpe2fs", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
];

fn sparse_file(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// Files to put into the file systems: `zeros` (1 MiB of zero bytes, many blocks),
/// random files of odd sizes, and one in a subdirectory.
fn make_content(dir: &Path) -> PathBuf {
    let content = dir.join("content");
    std::fs::create_dir_all(content.join("sub")).unwrap();
    std::fs::write(content.join("zeros"), vec![0u8; MIB as usize]).unwrap();
    std::fs::write(content.join("random-a"), pseudo_random(300_000, 1)).unwrap();
    std::fs::write(content.join("random-b"), pseudo_random(5_000, 2)).unwrap();
    std::fs::write(content.join("sub/random-c"), pseudo_random(70_000, 3)).unwrap();
    content
}

/// Runs the readers over the whole file as one partition.
fn read_free(path: &Path) -> Result<Option<FreeSpace>, FsError> {
    let len = std::fs::metadata(path).unwrap().len();
    let mut reader = SeekReader(std::fs::File::open(path).unwrap());
    fs::free_space(&mut reader, ByteRange::new(0, len))
}

fn free_of(path: &Path) -> FreeSpace {
    let space = read_free(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .unwrap_or_else(|| panic!("{}: no file system recognised", path.display()));
    assert_well_formed(&space);
    space
}

fn free_of_bytes(image: &[u8]) -> Result<Option<FreeSpace>, FsError> {
    let mut src = image;
    fs::free_space(&mut src, ByteRange::new(0, image.len() as u64))
}

/// Sorted, disjoint, never touching (touching runs are merged), inside `fs_len`.
fn assert_well_formed(space: &FreeSpace) {
    for pair in space.free.windows(2) {
        assert!(
            pair[0].end() < pair[1].start,
            "{} then {}",
            pair[0],
            pair[1]
        );
    }
    for r in &space.free {
        assert!(
            !r.is_empty() && r.end() <= space.fs_len,
            "{r} in {}",
            space.fs_len
        );
    }
}

/// Sorts and joins touching or overlapping ranges.
fn merged(mut ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<ByteRange> = Vec::new();
    for r in ranges.into_iter().filter(|r| !r.is_empty()) {
        match out.last_mut() {
            Some(last) if r.start <= last.end() => {
                last.len = last.len.max(r.end() - last.start);
            }
            _ => out.push(r),
        }
    }
    out
}

fn assert_not_free(space: &FreeSpace, used: ByteRange, what: &str) {
    if let Some(r) = space.free.iter().find(|r| r.overlaps(&used)) {
        panic!("{what} ({used}) is reported free ({r})");
    }
}

fn text(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd)).unwrap()
}

/// The first number after `label` in `text` (`label` ends the text before it).
fn number_after(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"));
    text[at + label.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

/// A copy of `image` with `bytes` written at `offset`.
fn patched(image: &[u8], offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut copy = image.to_vec();
    copy[offset..offset + bytes.len()].copy_from_slice(bytes);
    copy
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

// ---------------------------------------------------------------------------------------
// XFS
// ---------------------------------------------------------------------------------------

/// A `mkfs.xfs -p` prototype file naming the files of `content` (see mkfs.xfs(8) "-p").
fn xfs_protofile(dir: &Path, content: &Path) -> PathBuf {
    let file = |name: &str| format!("{name} ---644 0 0 {}", content.join(name).display());
    let lines = [
        "/dev/null".to_string(),
        "0 0".into(),
        "d--755 0 0".into(),
        file("zeros"),
        file("random-a"),
        file("random-b"),
        "sub d--755 0 0".into(),
        format!(
            "random-c ---644 0 0 {}",
            content.join("sub/random-c").display()
        ),
        "$".into(),
        "$".into(),
    ];
    let path = dir.join("proto");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// `mkfs.xfs` on a new sparse file of `len` bytes; below 300 MB through the fstests
/// environment variables.
fn mkfs_xfs(image: &Path, len: u64, options: &[&str], proto: Option<&Path>) {
    sparse_file(image, len);
    let mut cmd = Command::new("mkfs.xfs");
    cmd.arg("-q").args(options);
    if let Some(proto) = proto {
        cmd.arg("-p").arg(proto);
    }
    if len < 300 * 1000 * 1000 {
        cmd.env("TEST_DIR", "/tmp")
            .env("TEST_DEV", "/dev/null")
            .env("QA_CHECK_FS", "1");
    }
    run(cmd.arg(image));
}

/// A small (32 MiB) XFS with the test files, made with `options`.
fn small_xfs(dir: &Path, name: &str, options: &[&str]) -> PathBuf {
    xfs_with_files(dir, name, 32 * MIB, options)
}

fn xfs_with_files(dir: &Path, name: &str, len: u64, options: &[&str]) -> PathBuf {
    let content = make_content(dir);
    let proto = xfs_protofile(dir, &content);
    let image = dir.join(name);
    mkfs_xfs(&image, len, options, Some(&proto));
    image
}

fn xfs_db(image: &Path, commands: &[&str]) -> String {
    let mut cmd = Command::new("xfs_db");
    cmd.arg("-r");
    for c in commands {
        cmd.arg("-c").arg(c);
    }
    text(cmd.arg(image))
}

/// The superblock geometry the tests need, as `xfs_db` prints it.
struct XfsSb {
    block_size: u64,
    ag_blocks: u64,
    ag_count: u64,
    data_blocks: u64,
}

impl XfsSb {
    fn read(image: &Path) -> Self {
        let out = xfs_db(image, &["sb 0", "p blocksize agblocks agcount dblocks"]);
        Self {
            block_size: number_after(&out, "blocksize = "),
            ag_blocks: number_after(&out, "agblocks = "),
            ag_count: number_after(&out, "agcount = "),
            data_blocks: number_after(&out, "dblocks = "),
        }
    }

    fn bytes(&self, agno: u64, agbno: u64, blocks: u64) -> ByteRange {
        ByteRange::new(
            (agno * self.ag_blocks + agbno) * self.block_size,
            blocks * self.block_size,
        )
    }
}

/// Every free extent `xfs_db freesp -d` lists ("agno agbno len" lines), in bytes.
/// `freesp` counts the AG free list's blocks too (one-block extents).
fn xfs_db_free_extents(image: &Path, sb: &XfsSb) -> Vec<ByteRange> {
    xfs_db(image, &["freesp -d"])
        .lines()
        .filter_map(|line| {
            let n: Vec<u64> = line
                .split_whitespace()
                .map(|w| w.parse().ok())
                .collect::<Option<_>>()?;
            (n.len() == 3).then(|| sb.bytes(n[0], n[1], n[2]))
        })
        .collect()
}

/// The blocks on every AG's free list (AGFL): the active slots `flfirst..=fllast`
/// (wrapping) of `xfs_db agfl`'s "bno[0-N] = 0:null 1:6 ..." array.
fn xfs_agfl_blocks(image: &Path, sb: &XfsSb) -> Vec<ByteRange> {
    let mut blocks = Vec::new();
    for agno in 0..sb.ag_count {
        let agf = xfs_db(image, &[&format!("agf {agno}"), "p flfirst fllast flcount"]);
        let first = number_after(&agf, "flfirst = ");
        let count = number_after(&agf, "flcount = ");
        let agfl = xfs_db(image, &[&format!("agfl {agno}"), "p bno"]);
        let slots: Vec<Option<u64>> = agfl
            .split_whitespace()
            .filter_map(|w| w.split_once(':'))
            .map(|(_, bno)| bno.parse().ok())
            .collect();
        for i in 0..count {
            let slot = slots[((first + i) % slots.len() as u64) as usize];
            let agbno = slot.expect("an active AGFL slot holds a block");
            blocks.push(sb.bytes(agno, agbno, 1));
        }
    }
    blocks
}

/// Each damage case (what, offset, bytes, expected words) applied by `damage` must be
/// refused with an error that names it.
fn assert_each_refused(
    name: &str,
    cases: &[(&str, usize, &[u8], &str)],
    damage: impl Fn(usize, &[u8]) -> Vec<u8>,
) {
    for &(what, offset, bytes, expected) in cases {
        let result = free_of_bytes(&damage(offset, bytes));
        let Err(e) = result else {
            panic!("{name}, {what}: {result:?}");
        };
        eprintln!("{name}, {what}: {e}");
        assert!(e.to_string().contains(expected), "{name}, {what}: {e}");
    }
}

/// `ranges` (merged) minus the sorted, disjoint `holes`.
fn subtract(ranges: &[ByteRange], holes: &[ByteRange]) -> Vec<ByteRange> {
    ranges
        .iter()
        .flat_map(|&r| rockusb_images::regions::subtract(r, holes))
        .collect()
}

/// The sum of every AGF's `freeblks`.
fn xfs_agf_free_blocks(image: &Path, sb: &XfsSb) -> u64 {
    (0..sb.ag_count)
        .map(|ag| {
            let out = xfs_db(image, &[&format!("agf {ag}"), "p freeblks"]);
            number_after(&out, "freeblks = ")
        })
        .sum()
}

/// A file's extents from `xfs_db bmap` ("startblock N (agno/agbno) count C").
fn xfs_file_extents(image: &Path, path: &str, sb: &XfsSb) -> Vec<ByteRange> {
    xfs_db(image, &[&format!("path {path}"), "bmap"])
        .lines()
        .filter(|line| line.contains("startblock"))
        .map(|line| {
            let ag_and_block = line.split(['(', ')']).nth(1).unwrap();
            let (agno, agbno) = ag_and_block.split_once('/').unwrap();
            let count = number_after(line, "count ");
            sb.bytes(agno.parse().unwrap(), agbno.parse().unwrap(), count)
        })
        .collect()
}

/// The internal log from `sb_logstart` (an AG number above `agblklog` bits) and
/// `sb_logblocks`.
fn xfs_log(image: &Path, sb: &XfsSb) -> ByteRange {
    let out = xfs_db(image, &["sb 0", "p logstart logblocks agblklog"]);
    let start = number_after(&out, "logstart = ");
    let agblklog = number_after(&out, "agblklog = ");
    assert_ne!(start, 0, "the test images have an internal log");
    sb.bytes(
        start >> agblklog,
        start & ((1 << agblklog) - 1),
        number_after(&out, "logblocks = "),
    )
}

/// The reader's free extents are exactly `xfs_db`'s without the AG free lists' blocks
/// (held back for B+tree growth, so in use), add up to the AGFs' `freeblks`, and miss
/// the `zeros` file and the log. Returns the reader's answer.
fn check_xfs_against_xfs_db(image: &Path) -> FreeSpace {
    let sb = XfsSb::read(image);
    let space = free_of(image);
    assert_eq!(space.kind, FsKind::Xfs);
    assert_eq!(space.fs_len, sb.data_blocks * sb.block_size);
    let mut agfl = xfs_agfl_blocks(image, &sb);
    agfl.sort_by_key(|r| r.start);
    let xfs_db_free = merged(xfs_db_free_extents(image, &sb));
    assert_eq!(space.free, subtract(&xfs_db_free, &agfl));
    for block in &agfl {
        assert_not_free(&space, *block, "an AGFL block");
    }
    assert_eq!(
        space.free_bytes(),
        xfs_agf_free_blocks(image, &sb) * sb.block_size
    );
    let total = number_after(&xfs_db(image, &["freesp -s"]), "total free blocks ");
    assert_eq!(
        space.free_bytes() + agfl.len() as u64 * sb.block_size,
        total * sb.block_size
    );
    assert_not_free(&space, xfs_log(image, &sb), "the internal log");
    space
}

fn check_xfs_zeros_file_is_not_free(image: &Path, space: &FreeSpace) {
    let sb = XfsSb::read(image);
    let zeros = xfs_file_extents(image, "/zeros", &sb);
    assert_eq!(
        zeros.iter().map(|r| r.len).sum::<u64>(),
        MIB,
        "mkfs.xfs -p allocates the zero file's blocks"
    );
    for extent in zeros {
        assert_not_free(space, extent, "/zeros");
    }
}

#[test]
fn xfs_default_320mib_free_extents_equal_xfs_db_and_exclude_files_and_log() {
    let test = "xfs_default_320mib_free_extents_equal_xfs_db_and_exclude_files_and_log";
    if !tools(test, XFS_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let content = make_content(dir.path());
    let proto = xfs_protofile(dir.path(), &content);
    let image = dir.path().join("xfs.img");
    mkfs_xfs(&image, 320 * MIB, &[], Some(&proto));
    let space = check_xfs_against_xfs_db(&image);
    check_xfs_zeros_file_is_not_free(&image, &space);
    assert!(
        XfsSb::read(&image).ag_count > 1,
        "the default makes several AGs"
    );
    // A fresh file system is mostly free.
    assert!(space.free_bytes() > 200 * MIB, "{}", space.free_bytes());
}

#[test]
fn xfs_small_v5_v4_and_odd_block_sizes_equal_xfs_db() {
    let test = "xfs_small_v5_v4_and_odd_block_sizes_equal_xfs_db";
    if !tools(test, XFS_TOOLS) {
        return;
    }
    // 64 KiB blocks need a log of 512 blocks (32 MiB) at least.
    let variants: &[(&[&str], u64)] = &[
        (&[], 32 * MIB),
        (&["-b", "size=1024"], 32 * MIB),
        (&["-b", "size=65536"], 160 * MIB),
        (&["-s", "size=4096"], 32 * MIB),
        (&["-d", "agcount=3"], 48 * MIB),
        (&["-m", "crc=0"], 32 * MIB),
        (&["-m", "crc=0", "-b", "size=512"], 32 * MIB),
    ];
    for &(options, len) in variants {
        let dir = tempfile::tempdir().unwrap();
        let image = xfs_with_files(dir.path(), "xfs.img", len, options);
        eprintln!("mkfs.xfs {options:?}");
        let space = check_xfs_against_xfs_db(&image);
        check_xfs_zeros_file_is_not_free(&image, &space);
    }
}

/// Frees every other one of 300 one-block files so AG 0's bnobt needs more than one
/// leaf: `xfs_db -x` clears the files' inodes, `xfs_repair` frees their blocks and
/// rebuilds the free-space B+trees.
fn fragmented_xfs(dir: &Path, options: &[&str]) -> PathBuf {
    let files = dir.join("frag");
    std::fs::create_dir_all(&files).unwrap();
    let mut proto = vec!["/dev/null".to_string(), "0 0".into(), "d--755 0 0".into()];
    for i in 0..300 {
        let path = files.join(format!("f{i:03}"));
        std::fs::write(&path, pseudo_random(512, i)).unwrap();
        proto.push(format!("f{i:03} ---644 0 0 {}", path.display()));
    }
    proto.extend(["$".into(), "$".into()]);
    let proto_path = dir.join("proto");
    std::fs::write(&proto_path, proto.join("\n") + "\n").unwrap();
    let image = dir.join("frag.img");
    mkfs_xfs(&image, 32 * MIB, options, Some(&proto_path));

    let listing = xfs_db(&image, &["ls /"]);
    let mut clear = Command::new("xfs_db");
    clear.arg("-x");
    for line in listing.lines() {
        // "14  67  regular  0x0ccc1830  4 f000 (good)": the inode is the second column.
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(n) = words.get(5).and_then(|name| name.strip_prefix('f')) else {
            continue;
        };
        if n.parse::<u32>().is_ok_and(|n| n % 2 == 0) {
            clear
                .arg("-c")
                .arg(format!("inode {}", words[1]))
                .arg("-c")
                .arg("write core.mode 0");
        }
    }
    run(clear.arg(&image));
    run(Command::new("xfs_repair").arg(&image));
    image
}

#[test]
fn xfs_multi_level_bnobt_after_fragmenting_equals_xfs_db() {
    let test = "xfs_multi_level_bnobt_after_fragmenting_equals_xfs_db";
    if !tools(test, XFS_TOOLS) {
        return;
    }
    // v5 1 KiB blocks: 121 records per leaf; v4 512-byte blocks: 62.
    for options in [&["-b", "size=1024"][..], &["-m", "crc=0", "-b", "size=512"]] {
        let dir = tempfile::tempdir().unwrap();
        let image = fragmented_xfs(dir.path(), options);
        let levels = number_after(&xfs_db(&image, &["agf 0", "p bnolevel"]), "bnolevel = ");
        assert!(levels >= 2, "{options:?}: the bnobt has {levels} level(s)");
        let space = check_xfs_against_xfs_db(&image);
        assert!(space.free.len() > 130, "{} extents", space.free.len());
    }
}

#[test]
fn xfs_offsets_are_relative_to_the_partition_start() {
    let test = "xfs_offsets_are_relative_to_the_partition_start";
    if !tools(test, XFS_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = small_xfs(dir.path(), "xfs.img", &[]);
    let alone = free_of(&image);
    let mut disk = vec![0xEEu8; MIB as usize];
    disk.extend(std::fs::read(&image).unwrap());
    disk.extend(vec![0xEEu8; MIB as usize]);
    let partition = ByteRange::new(MIB, disk.len() as u64 - 2 * MIB);
    let mut src = &disk[..];
    let inside = fs::free_space(&mut src, partition).unwrap().unwrap();
    assert_eq!(inside, alone);
}

/// The bytes of a small v4 (no CRC) and a v5 XFS with the test files.
fn xfs_images(dir: &Path) -> Vec<(String, Vec<u8>)> {
    [("v5", &[][..]), ("v4", &["-m", "crc=0"][..])]
        .into_iter()
        .map(|(name, options)| {
            let image = small_xfs(dir, &format!("{name}.img"), options);
            (name.to_string(), std::fs::read(image).unwrap())
        })
        .collect()
}

/// Offsets of AG 0's AGF and its bnobt root block.
fn xfs_agf_and_bnobt_root(image: &[u8]) -> (usize, usize) {
    let block_size = be32(image, 4) as usize;
    let sector_size = u16::from_be_bytes([image[102], image[103]]) as usize;
    let root = be32(image, sector_size + 16) as usize;
    (sector_size, root * block_size)
}

/// Recomputes the v5 CRC (CRC-32C, little-endian, the field taken as zero) of the
/// structure at `start..start + len` whose CRC field is at `crc_at` within it.
fn fix_xfs_crc(image: &mut [u8], start: usize, len: usize, crc_at: usize) {
    let crc32c = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    image[start + crc_at..start + crc_at + 4].fill(0);
    let crc = crc32c.checksum(&image[start..start + len]);
    image[start + crc_at..start + crc_at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// A damaged copy of `image` whose v5 CRCs (superblock, AG 0's AGF and bnobt root) are
/// made right again, so the damage itself has to be caught.
fn xfs_damaged(image: &[u8], offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut copy = patched(image, offset, bytes);
    let v5 = u16::from_be_bytes([image[100], image[101]]) & 0xf == 5;
    if v5 {
        let block_size = be32(image, 4) as usize;
        let sector_size = u16::from_be_bytes([image[102], image[103]]) as usize;
        let (agf, root) = xfs_agf_and_bnobt_root(image);
        fix_xfs_crc(&mut copy, 0, sector_size, 224);
        fix_xfs_crc(&mut copy, agf, sector_size, 216);
        fix_xfs_crc(&mut copy, root, block_size, 52);
    }
    copy
}

#[test]
fn xfs_damage_gives_errors_not_panics() {
    let test = "xfs_damage_gives_errors_not_panics";
    if !tools(test, XFS_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, image) in xfs_images(dir.path()) {
        let (agf, root) = xfs_agf_and_bnobt_root(&image);
        assert!(
            free_of_bytes(&image).is_ok(),
            "{name}: the intact image reads"
        );
        assert!(
            free_of_bytes(&xfs_damaged(&image, 0, b"X")).is_ok(),
            "{name}: recomputed CRCs are right"
        );

        // The partition ends before the file system does.
        let mut short = &image[..image.len() - 4096];
        let cut = fs::free_space(&mut short, ByteRange::new(0, image.len() as u64 - 4096));
        assert!(
            matches!(cut, Err(FsError::Truncated { .. })),
            "{name}: {cut:?}"
        );

        // (what, offset, new bytes, the error must say)
        let cases: &[(&str, usize, &[u8], &str)] = &[
            ("AGF magic", agf, b"XAGX", "no XAGF magic"),
            (
                "AGF sequence number",
                agf + 8,
                &[0, 0, 0, 7],
                "sequence number",
            ),
            ("AGF length", agf + 12, &[0, 0, 0, 9], "length"),
            ("bnobt levels 10", agf + 28, &[0, 0, 0, 10], "B+tree levels"),
            ("bnobt root outside the AG", agf + 16, &[0, 1, 0, 0], "root"),
            ("bnobt root level", root + 4, &[0, 3], "level"),
            (
                "bnobt root record count",
                root + 6,
                &[0xFF, 0xFF],
                "record count",
            ),
            ("bnobt magic", root, b"ABTC", "magic"),
            ("bnobt right sibling", root + 12, &[0, 0, 0, 40], "sibling"),
            (
                "sb_dblocks huge",
                8,
                &[0, 0, 0, 1, 0, 0, 0, 0],
                "allocation groups",
            ),
            ("sb_agcount zero", 88, &[0; 4], "allocation groups"),
            ("sb_blocksize odd", 4, &[0, 0, 0x10, 1], "block size"),
        ];
        assert_each_refused(&name, cases, |offset, bytes| {
            xfs_damaged(&image, offset, bytes)
        });
    }
}

#[test]
fn xfs_v4_without_crcs_catches_records_out_of_order_and_wrong_free_totals() {
    let test = "xfs_v4_without_crcs_catches_records_out_of_order_and_wrong_free_totals";
    if !tools(test, XFS_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 512-byte blocks: mkfs leaves a short free extent before the big one in AG 0.
    let image = small_xfs(dir.path(), "v4.img", &["-m", "crc=0", "-b", "size=512"]);
    let image = std::fs::read(image).unwrap();
    let (agf, root) = xfs_agf_and_bnobt_root(&image);
    let records = u16::from_be_bytes([image[root + 6], image[root + 7]]) as usize;
    assert!(records >= 2, "mkfs leaves several free extents");
    // Blocks of 512 bytes, so the root is at agbno * 512.
    let first = root + 16;
    let second = first + 8;
    let swapped = {
        let mut copy = image.clone();
        copy.copy_within(first..first + 8, second);
        copy[first..first + 8].copy_from_slice(&image[second..second + 8]);
        copy
    };
    let count = be32(&image, first + 4);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("records swapped", swapped),
        (
            "a record one block longer",
            patched(&image, first + 4, &(count + 1).to_be_bytes()),
        ),
        (
            "a record past the AG",
            patched(&image, first, &0x7FFF_FFF0u32.to_be_bytes()),
        ),
        ("agf_freeblks off by one", {
            let free = be32(&image, agf + 52);
            patched(&image, agf + 52, &(free - 1).to_be_bytes())
        }),
    ];
    for (what, damaged) in cases {
        let result = free_of_bytes(&damaged);
        assert!(
            matches!(result, Err(FsError::Damaged { .. })),
            "{what}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// ext2/3/4
// ---------------------------------------------------------------------------------------

/// `mke2fs -t TYPE OPTIONS -d CONTENT` on a new sparse file, then a 256-block
/// preallocated `/zeros` (`mke2fs -d` leaves zero blocks as holes; `debugfs fallocate`
/// allocates them, as unwritten extents on ext4).
fn mkfs_ext(image: &Path, len: u64, fs_type: &str, options: &[&str], content: &Path) {
    sparse_file(image, len);
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", fs_type])
        .args(options)
        .arg("-d")
        .arg(content)
        .arg(image));
    run(Command::new("debugfs")
        .args(["-w", "-R", "fallocate /zeros 0 255"])
        .arg(image));
}

/// What `dumpe2fs` reports.
#[derive(Debug, Default)]
struct Dumpe2fs {
    block_size: u64,
    block_count: u64,
    /// The superblock's "Free blocks:" count.
    free_blocks: u64,
    /// Every group's "Free blocks: a-b, c" list, in bytes.
    free_extents: Vec<ByteRange>,
    /// Sum of the groups' "N free blocks" counts.
    group_free_blocks: u64,
    inode_tables: Vec<ByteRange>,
    groups: u64,
    block_uninit_groups: u64,
}

fn dumpe2fs(image: &Path) -> Dumpe2fs {
    let out = text(Command::new("dumpe2fs").arg(image));
    let mut d = Dumpe2fs {
        block_size: number_after(&out, "\nBlock size:"),
        block_count: number_after(&out, "\nBlock count:"),
        free_blocks: number_after(&out, "\nFree blocks:"),
        ..Dumpe2fs::default()
    };
    let blocks = |list: &str| -> Vec<(u64, u64)> {
        list.split(", ")
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                let s = s.trim();
                match s.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse::<u64>().unwrap() + 1),
                    None => (s.parse().unwrap(), s.parse::<u64>().unwrap() + 1),
                }
            })
            .collect()
    };
    for line in out.lines() {
        let bytes = |(a, b): (u64, u64)| ByteRange::new(a * d.block_size, (b - a) * d.block_size);
        if line.starts_with("Group ") && line.contains(": (Blocks ") {
            d.groups += 1;
            d.block_uninit_groups += u64::from(line.contains("BLOCK_UNINIT"));
        } else if let Some(list) = line.strip_prefix("  Free blocks: ") {
            d.free_extents.extend(blocks(list).into_iter().map(bytes));
        } else if line.starts_with("  Free blocks:") {
            // A group with no free blocks.
        } else if let Some(rest) = line.strip_prefix("  Inode table at ") {
            let range = rest.split_whitespace().next().unwrap();
            d.inode_tables.extend(blocks(range).into_iter().map(bytes));
        } else if line.contains(" free blocks, ") {
            d.group_free_blocks += number_after(line, "");
        }
    }
    d
}

/// The blocks `debugfs blocks` lists for `what` (a path or `<inode>`), in bytes.
fn debugfs_blocks(image: &Path, what: &str, block_size: u64) -> Vec<ByteRange> {
    text(
        Command::new("debugfs")
            .args(["-R", &format!("blocks {what}")])
            .arg(image),
    )
    .split_whitespace()
    .map(|b| ByteRange::new(b.parse::<u64>().unwrap() * block_size, block_size))
    .collect()
}

/// The reader's free extents are exactly `dumpe2fs`'s, add up to the superblock's and
/// the groups' free counts, and miss `/zeros`, the journal and every inode table.
fn check_ext_against_e2fsprogs(image: &Path, kind: FsKind) -> (FreeSpace, Dumpe2fs) {
    let d = dumpe2fs(image);
    let space = free_of(image);
    assert_eq!(space.kind, kind);
    assert_eq!(space.fs_len, d.block_count * d.block_size);
    assert_eq!(space.free, merged(d.free_extents.clone()));
    assert_eq!(space.free_bytes(), d.free_blocks * d.block_size);
    assert_eq!(space.free_bytes(), d.group_free_blocks * d.block_size);
    let zeros = debugfs_blocks(image, "/zeros", d.block_size);
    assert!(zeros.len() >= 256, "/zeros has {} blocks", zeros.len());
    for block in zeros {
        assert_not_free(&space, block, "/zeros");
    }
    if kind != FsKind::Ext2 {
        let journal = debugfs_blocks(image, "<8>", d.block_size);
        assert!(!journal.is_empty(), "a journal");
        for block in journal {
            assert_not_free(&space, block, "the journal");
        }
    }
    assert_eq!(d.inode_tables.len() as u64, d.groups);
    for table in &d.inode_tables {
        assert_not_free(&space, *table, "an inode table");
    }
    (space, d)
}

#[test]
fn ext4_512mib_with_block_uninit_groups_equals_dumpe2fs() {
    let test = "ext4_512mib_with_block_uninit_groups_equals_dumpe2fs";
    if !tools(test, EXT_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let content = make_content(dir.path());
    let image = dir.path().join("ext4.img");
    mkfs_ext(&image, 512 * MIB, "ext4", &["-b", "4096"], &content);
    let (space, d) = check_ext_against_e2fsprogs(&image, FsKind::Ext4);
    assert!(
        d.block_uninit_groups > 0,
        "mke2fs leaves BLOCK_UNINIT groups on a 512 MiB ext4"
    );
    assert!(space.free_bytes() > 400 * MIB);
}

#[test]
fn ext_variants_equal_dumpe2fs() {
    let test = "ext_variants_equal_dumpe2fs";
    if !tools(test, EXT_TOOLS) {
        return;
    }
    // (fs type, mke2fs options, size, expected kind, whether some group must be
    // BLOCK_UNINIT)
    let variants: &[(&str, &[&str], u64, FsKind, bool)] = &[
        ("ext4", &["-O", "^flex_bg"], 512 * MIB, FsKind::Ext4, true),
        ("ext4", &["-b", "1024"], 64 * MIB, FsKind::Ext4, true),
        (
            "ext4",
            &["-b", "1024", "-O", "^flex_bg"],
            64 * MIB,
            FsKind::Ext4,
            true,
        ),
        // crc16 descriptor checksums instead of metadata_csum.
        (
            "ext4",
            &["-O", "^metadata_csum,uninit_bg"],
            512 * MIB,
            FsKind::Ext4,
            true,
        ),
        ("ext4", &["-O", "^64bit"], 256 * MIB, FsKind::Ext4, true),
        (
            "ext4",
            &["-O", "meta_bg,^resize_inode"],
            512 * MIB,
            FsKind::Ext4,
            true,
        ),
        // 32 groups of 8 MiB, 16 descriptors a block: two meta groups.
        (
            "ext4",
            &["-b", "1024", "-O", "meta_bg,^resize_inode"],
            256 * MIB,
            FsKind::Ext4,
            true,
        ),
        (
            "ext4",
            &["-O", "sparse_super2"],
            512 * MIB,
            FsKind::Ext4,
            true,
        ),
        (
            "ext4",
            &["-O", "^sparse_super,^resize_inode"],
            256 * MIB,
            FsKind::Ext4,
            true,
        ),
        ("ext4", &["-b", "65536"], 512 * MIB, FsKind::Ext4, false),
        (
            "ext4",
            &["-I", "128", "-N", "20000"],
            256 * MIB,
            FsKind::Ext4,
            true,
        ),
        ("ext3", &[], 128 * MIB, FsKind::Ext3, false),
        ("ext2", &[], 128 * MIB, FsKind::Ext2, false),
        ("ext2", &["-b", "1024"], 32 * MIB, FsKind::Ext2, false),
    ];
    for &(fs_type, options, len, kind, uninit) in variants {
        eprintln!("mke2fs -t {fs_type} {options:?}");
        let dir = tempfile::tempdir().unwrap();
        let content = make_content(dir.path());
        let image = dir.path().join("ext.img");
        mkfs_ext(&image, len, fs_type, options, &content);
        let (_, d) = check_ext_against_e2fsprogs(&image, kind);
        if uninit {
            assert!(
                d.block_uninit_groups > 0,
                "{fs_type} {options:?}: no BLOCK_UNINIT group"
            );
        }
    }
}

#[test]
fn ext4_offsets_are_relative_to_the_partition_start() {
    let test = "ext4_offsets_are_relative_to_the_partition_start";
    if !tools(test, EXT_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let content = make_content(dir.path());
    let image = dir.path().join("ext4.img");
    mkfs_ext(&image, 16 * MIB, "ext4", &[], &content);
    let alone = free_of(&image);
    let mut disk = vec![0xEEu8; 3 * MIB as usize];
    disk.extend(std::fs::read(&image).unwrap());
    let partition = ByteRange::new(3 * MIB, disk.len() as u64 - 3 * MIB);
    let mut src = &disk[..];
    assert_eq!(fs::free_space(&mut src, partition).unwrap().unwrap(), alone);
}

/// Small ext2 (no checksums) and ext4 (metadata_csum) images with the test files,
/// 16 MiB of 1 KiB blocks in two groups.
fn ext_images(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let content = make_content(dir);
    [("ext2", &["-b", "1024"][..]), ("ext4", &["-b", "1024"][..])]
        .into_iter()
        .map(|(fs_type, options)| {
            let image = dir.join(format!("{fs_type}.img"));
            mkfs_ext(&image, 16 * MIB, fs_type, options, &content);
            (fs_type.to_string(), std::fs::read(image).unwrap())
        })
        .collect()
}

/// Where a 1 KiB-block image keeps its superblock and group descriptors.
const EXT_SB: usize = 1024;
const EXT_GDT: usize = 2048;

/// A damaged copy of `image` whose `METADATA_CSUM` checksums (superblock, group 0's
/// descriptor) are made right again, so the damage itself has to be caught. The kernel's
/// crc32c from `~0` without the final inversion is the inverted CRC-32C.
fn ext_damaged(image: &[u8], offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut copy = patched(image, offset, bytes);
    let metadata_csum = le32(image, EXT_SB + 0x64) & 0x400 != 0;
    if metadata_csum {
        let crc32c = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
        let desc_size = if le32(image, EXT_SB + 0x60) & 0x80 != 0 {
            u16::from_le_bytes([image[EXT_SB + 0xFE], image[EXT_SB + 0xFF]]) as usize
        } else {
            32
        };
        let mut digest = crc32c.digest();
        digest.update(&copy[EXT_SB + 0x68..EXT_SB + 0x78]); // s_uuid: the seed
        digest.update(&0u32.to_le_bytes()); // group 0
        copy[EXT_GDT + 0x1E..EXT_GDT + 0x20].fill(0);
        digest.update(&copy[EXT_GDT..EXT_GDT + desc_size]);
        let desc_csum = !digest.finalize() as u16;
        copy[EXT_GDT + 0x1E..EXT_GDT + 0x20].copy_from_slice(&desc_csum.to_le_bytes());
        let sb_csum = !crc32c.checksum(&copy[EXT_SB..EXT_SB + 0x3FC]);
        copy[EXT_SB + 0x3FC..EXT_SB + 0x400].copy_from_slice(&sb_csum.to_le_bytes());
    }
    copy
}

#[test]
fn ext_damage_gives_errors_not_panics() {
    let test = "ext_damage_gives_errors_not_panics";
    if !tools(test, EXT_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, image) in ext_images(dir.path()) {
        assert!(
            free_of_bytes(&image).is_ok(),
            "{name}: the intact image reads"
        );
        assert!(
            free_of_bytes(&ext_damaged(&image, 0, &[0])).is_ok(),
            "{name}: recomputed checksums are right"
        );
        let mut short = &image[..image.len() - 1024];
        let cut = fs::free_space(&mut short, ByteRange::new(0, image.len() as u64 - 1024));
        assert!(
            matches!(cut, Err(FsError::Truncated { .. })),
            "{name}: {cut:?}"
        );
        // One block more still fits the two groups, but not the partition.
        let blocks = le32(&image, EXT_SB + 4);
        let longer = ext_damaged(&image, EXT_SB + 4, &(blocks + 1).to_le_bytes());
        let result = free_of_bytes(&longer);
        assert!(
            matches!(result, Err(FsError::Truncated { .. })),
            "{name}: {result:?}"
        );

        let incompat = le32(&image, EXT_SB + 0x60);
        let free = u16::from_le_bytes([image[EXT_GDT + 12], image[EXT_GDT + 13]]);
        let bitmap_past_end = 0x0FFF_FFF0u32.to_le_bytes();
        let recover = (incompat | 0x4).to_le_bytes();
        let bigalloc = (le32(&image, EXT_SB + 0x64) | 0x200).to_le_bytes();
        let free_minus_one = (free - 1).to_le_bytes();
        // (what, offset, new bytes, the error must say)
        let cases: &[(&str, usize, &[u8], &str)] = &[
            (
                "s_blocks_count huge",
                EXT_SB + 4,
                &[0xF0, 0xFF, 0xFF, 0xFF],
                "inode count",
            ),
            (
                "s_blocks_per_group zero",
                EXT_SB + 0x20,
                &[0; 4],
                "blocks per group",
            ),
            (
                "s_log_block_size 30",
                EXT_SB + 0x18,
                &[30, 0, 0, 0],
                "block size",
            ),
            (
                "s_first_data_block 0",
                EXT_SB + 0x14,
                &[0; 4],
                "first data block",
            ),
            ("s_inode_size 100", EXT_SB + 0x58, &[100, 0], "inode size"),
            (
                "needs journal recovery",
                EXT_SB + 0x60,
                &recover,
                "recovery",
            ),
            ("bigalloc", EXT_SB + 0x64, &bigalloc, "not understood"),
            ("state: errors", EXT_SB + 0x3A, &[3, 0], "state"),
            (
                "group 0's bitmap past the end",
                EXT_GDT,
                &bitmap_past_end,
                "outside",
            ),
            (
                "group 0's inode table past the end",
                EXT_GDT + 8,
                &bitmap_past_end,
                "outside",
            ),
            (
                "group 0's free count off by one",
                EXT_GDT + 12,
                &free_minus_one,
                "free blocks",
            ),
        ];
        assert_each_refused(&name, cases, |offset, bytes| {
            ext_damaged(&image, offset, bytes)
        });
    }
}

#[test]
fn ext2_bitmap_that_frees_an_inode_table_block_is_refused() {
    let test = "ext2_bitmap_that_frees_an_inode_table_block_is_refused";
    if !tools(test, EXT_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, image) = ext_images(dir.path()).swap_remove(0);
    // 1 KiB blocks, group 0 starts at block 1: bit (table - 1) of group 0's bitmap.
    let gdt = EXT_GDT;
    let bitmap = le32(&image, gdt) as usize * 1024;
    let table_bit = le32(&image, gdt + 8) as usize - 1;
    let mut damaged = image.clone();
    damaged[bitmap + table_bit / 8] &= !(1 << (table_bit % 8));
    // Keep the group's free count consistent, so only the metadata check can catch it.
    let free = u16::from_le_bytes([image[gdt + 12], image[gdt + 13]]) + 1;
    damaged[gdt + 12..gdt + 14].copy_from_slice(&free.to_le_bytes());
    let result = free_of_bytes(&damaged);
    assert!(
        matches!(&result, Err(FsError::Damaged { detail, .. }) if detail.contains("metadata")),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------

/// A `ReadAt` that notes every range read, to aim mutations at the bytes a reader uses.
struct Recording<'a> {
    bytes: &'a [u8],
    reads: Vec<ByteRange>,
}

impl ReadAt for Recording<'_> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.reads.push(ByteRange::new(offset, buf.len() as u64));
        let mut bytes = self.bytes;
        bytes.read_exact_at(offset, buf)
    }
}

/// The ranges the readers read from `image`, merged.
fn bytes_read(image: &[u8]) -> Vec<ByteRange> {
    let mut rec = Recording {
        bytes: image,
        reads: Vec::new(),
    };
    fs::free_space(&mut rec, ByteRange::new(0, image.len() as u64))
        .unwrap()
        .unwrap();
    merged(rec.reads)
}

/// xorshift64*: deterministic, good enough to pick bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A byte offset inside one of `targets`, each range as likely as its length.
fn pick_offset(rng: &mut Rng, targets: &[ByteRange]) -> usize {
    let total: u64 = targets.iter().map(|r| r.len).sum();
    let mut at = rng.below(total);
    for r in targets {
        if at < r.len {
            return (r.start + at) as usize;
        }
        at -= r.len;
    }
    unreachable!()
}

/// Values that break size and count fields in interesting ways.
const INTERESTING: [u32; 8] = [0, 1, 2, 0x7F, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF];

/// Applies one to eight mutations to `image` at bytes the readers read, noting the old
/// bytes in `undo`.
fn mutate(rng: &mut Rng, image: &mut [u8], targets: &[ByteRange], undo: &mut Vec<(usize, u8)>) {
    for _ in 0..1 + rng.below(8) {
        let at = pick_offset(rng, targets);
        let value = INTERESTING[rng.below(INTERESTING.len() as u64) as usize];
        let new: Vec<u8> = match rng.below(5) {
            0 => vec![rng.next() as u8],
            1 => vec![image[at] ^ (1 << rng.below(8))],
            2 => value.to_be_bytes().to_vec(),
            3 => value.to_le_bytes().to_vec(),
            _ => (value as u16).to_be_bytes().to_vec(),
        };
        for (i, byte) in new.into_iter().enumerate() {
            if let Some(old) = image.get_mut(at + i) {
                undo.push((at + i, *old));
                *old = byte;
            }
        }
    }
}

/// Runs the readers over `rounds` mutations of `image` (and now and then a cut-short
/// partition); every answer must be an error or a well-formed free list inside the
/// partition. Returns how many mutations still read cleanly.
fn survive_mutations(name: &str, mut image: Vec<u8>, rounds: u64, seed: u64) -> u64 {
    let targets = bytes_read(&image);
    let mut rng = Rng(seed);
    let mut undo = Vec::new();
    let mut clean = 0;
    for round in 0..rounds {
        mutate(&mut rng, &mut image, &targets, &mut undo);
        let len = if rng.below(10) == 0 {
            rng.below(image.len() as u64 + 1)
        } else {
            image.len() as u64
        };
        let mut src = &image[..];
        if let Ok(Some(space)) = fs::free_space(&mut src, ByteRange::new(0, len)) {
            assert_well_formed(&space);
            assert!(space.fs_len <= len, "{name} round {round}");
            clean += 1;
        }
        for (at, old) in undo.drain(..).rev() {
            image[at] = old;
        }
    }
    clean
}

#[test]
fn thousands_of_mutated_xfs_and_ext_images_never_panic() {
    let test = "thousands_of_mutated_xfs_and_ext_images_never_panic";
    if !tools(test, XFS_TOOLS) || !tools(test, EXT_TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut images = xfs_images(dir.path());
    images.extend(ext_images(dir.path()));
    let content = make_content(dir.path());
    let uninit = dir.path().join("uninit.img");
    // crc16 descriptors: BLOCK_UNINIT groups without bitmap checksums in the way.
    mkfs_ext(
        &uninit,
        24 * MIB,
        "ext4",
        &["-b", "1024", "-O", "^metadata_csum,uninit_bg"],
        &content,
    );
    images.push(("ext4 uninit_bg".into(), std::fs::read(&uninit).unwrap()));
    let frag = fragmented_xfs(&dir.path().join("frag"), &["-m", "crc=0", "-b", "size=512"]);
    images.push(("xfs v4 fragmented".into(), std::fs::read(frag).unwrap()));
    for (i, (name, image)) in images.into_iter().enumerate() {
        let rounds = 3000;
        let clean = survive_mutations(&name, image, rounds, 0x9E37_79B9_7F4A_7C15 ^ i as u64);
        eprintln!("{name}: {clean} of {rounds} mutations still read cleanly");
    }
}

#[test]
fn arbitrary_bytes_after_a_superblock_magic_never_panic() {
    // No tools needed: random sectors behind each magic.
    for seed in 0..300u64 {
        let mut image = pseudo_random(256 * 1024, seed);
        if seed % 2 == 0 {
            image[..4].copy_from_slice(b"XFSB");
        } else {
            image[1024 + 56..1024 + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
        }
        if let Ok(Some(space)) = free_of_bytes(&image) {
            assert_well_formed(&space);
        }
    }
}
