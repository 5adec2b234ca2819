//! File systems made by the real `mkfs` tools and populated with files, for the tests and
//! benchmarks that flash images holding them.

use std::path::Path;
use std::process::Command;

/// Creates `path` as a sparse file of `len` bytes.
pub fn sized_file(path: &Path, len: u64) {
    std::fs::File::create(path)
        .and_then(|f| f.set_len(len))
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
}

/// A FAT file system of `len` bytes made by `mkfs.vfat` with `mkfs_args`, holding each of
/// `files` in its root directory (copied with mtools, which needs no mount).
pub fn fat_with_files(path: &Path, len: u64, mkfs_args: &[&str], files: &[&Path]) {
    sized_file(path, len);
    crate::run(Command::new("mkfs.vfat").args(mkfs_args).arg(path));
    if files.is_empty() {
        return;
    }
    let mut mcopy = Command::new("mcopy");
    mcopy.env("MTOOLS_SKIP_CHECK", "1").arg("-i").arg(path);
    crate::run(mcopy.args(files).arg("::"));
}

/// An XFS of `len` bytes made by `mkfs.xfs -p`, its root holding `files` as
/// (name, file to copy). mkfs.xfs makes file systems under 300 MB only for fstests, whose
/// three variables `small` sets.
pub fn xfs_with_files(path: &Path, len: u64, files: &[(&str, &Path)], small: bool) {
    sized_file(path, len);
    // The prototype format of mkfs.xfs(8) "-p": boot image, block/inode counts, the root
    // directory's mode, one line per entry, `$` closing each directory.
    let mut proto = String::from("/dev/null\n0 0\nd--755 0 0\n");
    for (name, source) in files {
        proto += &format!("{name} ---644 0 0 {}\n", source.display());
    }
    proto += "$\n$\n";
    let proto_path = path.with_extension("proto");
    std::fs::write(&proto_path, proto).unwrap();
    let mut mkfs = Command::new("mkfs.xfs");
    if small {
        let scratch = path.parent().unwrap_or(Path::new("."));
        mkfs.env("TEST_DIR", scratch)
            .env("TEST_DEV", "/dev/null")
            .env("QA_CHECK_FS", "1");
    }
    crate::run(mkfs.args(["-q", "-f", "-p"]).arg(&proto_path).arg(path));
}
