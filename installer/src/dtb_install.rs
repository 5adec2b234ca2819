//! Copying the DTB to where U-Boot's EFI loader finds it.
//!
//! U-Boot looks for `fdtfile` under `/dtb` on the partition the EFI application came
//! from (the ESP). On the node the ESP is mounted at `/boot/EFI`; in the imager the
//! mount prefix is a staging tree whose ESP source moved between Talos versions, so in
//! image mode the file is also placed where Talos ≥ 1.14 stages the ESP.

use crate::board::{DTB_INSTALL_DIR, IMAGE_MODE_DTB_DIR, IMAGE_MODE_ESP_DIR};

/// Where the ESP is mounted below the mount prefix on the node.
pub const ESP_DIR: &str = "boot/EFI";
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Directories are created world-traversable: the rootless imager (Talos ≥ 1.13) must
/// walk the staged tree, and 0600 directories (as some overlays create) block that.
pub const DIR_MODE: u32 = 0o755;
pub const FILE_MODE: u32 = 0o644;

#[derive(Debug, Error)]
pub enum DtbInstallError {
    #[error("{what} {path} failed: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} exists but is not a directory; cannot place the DTB below it")]
    NotADirectory { path: PathBuf },
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DtbInstallError {
    let path = path.to_path_buf();
    move |source| DtbInstallError::Io { what, path, source }
}

/// The root the overlay paths hang from: an empty prefix means `/` (the Go installers
/// rely on the working directory being `/`; we do not).
pub fn install_root(mount_prefix: &str) -> PathBuf {
    if mount_prefix.is_empty() {
        PathBuf::from("/")
    } else {
        PathBuf::from(mount_prefix)
    }
}

/// Whether `path` is the root of a mounted file system: it exists, is a directory, and
/// sits on another device than its parent.
pub fn is_mount_point(path: &Path) -> bool {
    let (Ok(meta), Some(parent)) = (fs::metadata(path), path.parent()) else {
        return false;
    };
    meta.is_dir() && fs::metadata(parent).is_ok_and(|p| p.dev() != meta.dev())
}

/// With an empty mount prefix the host means "the live system": on upgrades and on
/// installs ≤ 1.12 and ≥ 1.14 the ESP is mounted at `/boot/EFI` when the overlay runs
/// (`siderolabs/talos:.../bootloader/grub/install.go`, `upgrade.go`). On a Talos 1.13
/// install the overlay runs from `GenerateAssets`, before the disk is partitioned, so
/// nothing is mounted (`.../grub/grub.go` v1.13.0 and `cmd/installer/pkg/install/
/// install.go` v1.13.0): a DTB written then would land in the installer container and be
/// lost. Returns the ESP path that is not mounted in that case, `None` otherwise.
pub fn unmounted_esp(mount_prefix: &str) -> Option<PathBuf> {
    if !mount_prefix.is_empty() {
        return None;
    }
    let esp = install_root(mount_prefix).join(ESP_DIR);
    (!is_mount_point(&esp)).then_some(esp)
}

/// The directories the DTB goes to for this mount prefix.
pub fn target_dirs(mount_prefix: &str) -> Vec<PathBuf> {
    let root = install_root(mount_prefix);
    let mut dirs = vec![root.join(DTB_INSTALL_DIR)];
    // Image mode: only when the imager has already staged `<prefix>/EFI`. Creating it
    // ourselves would break Talos 1.13, which renames `boot/EFI` onto that path later.
    let image_mode = !mount_prefix.is_empty() && root != Path::new("/");
    if image_mode && root.join(IMAGE_MODE_ESP_DIR).is_dir() {
        dirs.push(root.join(IMAGE_MODE_DTB_DIR));
    }
    dirs
}

/// Creates `dir` and any missing parents with mode 0755 regardless of the umask.
/// Existing directories keep their mode.
fn create_dirs(dir: &Path) -> Result<(), DtbInstallError> {
    let mut missing = Vec::new();
    let mut current = Some(dir);
    while let Some(path) = current {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => break,
            Ok(meta) if meta.file_type().is_symlink() && path.is_dir() => break,
            Ok(_) => {
                return Err(DtbInstallError::NotADirectory {
                    path: path.to_path_buf(),
                });
            }
            Err(_) => missing.push(path),
        }
        current = path.parent();
    }
    for path in missing.into_iter().rev() {
        fs::create_dir(path).map_err(io_error("creating directory", path))?;
        fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE))
            .map_err(io_error("setting mode 0755 on", path))?;
    }
    Ok(())
}

/// Writes `dtb` as `dir/file_name` through a temporary file and a rename, so an upgrade
/// interrupted half-way leaves the old DTB rather than a truncated one.
fn write_file_atomically(
    dir: &Path,
    file_name: &str,
    dtb: &[u8],
) -> Result<PathBuf, DtbInstallError> {
    let target = dir.join(file_name);
    if fs::read(&target).is_ok_and(|existing| existing == dtb) {
        return Ok(target);
    }
    let temporary = dir.join(format!(".{file_name}.new"));
    let mut file = File::create(&temporary).map_err(io_error("creating", &temporary))?;
    file.write_all(dtb)
        .map_err(io_error("writing", &temporary))?;
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
        .map_err(io_error("setting mode 0644 on", &temporary))?;
    file.sync_all()
        .map_err(io_error("flushing (fsync)", &temporary))?;
    drop(file);
    fs::rename(&temporary, &target).map_err(io_error("renaming into place", &target))?;
    // Make the rename itself durable. Some filesystems refuse fsync on a directory
    // handle; the data is already flushed, so that is not an error worth failing on.
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
    Ok(target)
}

/// Installs the DTB into every target directory; returns the files written.
pub fn install_dtb(
    mount_prefix: &str,
    file_name: &str,
    dtb: &[u8],
) -> Result<Vec<PathBuf>, DtbInstallError> {
    target_dirs(mount_prefix)
        .into_iter()
        .map(|dir| {
            create_dirs(&dir)?;
            write_file_atomically(&dir, file_name, dtb)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_prefix_means_root() {
        assert_eq!(
            target_dirs(""),
            vec![PathBuf::from("/boot/EFI/dtb/rockchip")]
        );
    }

    #[test]
    fn a_plain_directory_is_not_a_mount_point_but_proc_is() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mount_point(dir.path()));
        assert!(!is_mount_point(&dir.path().join("missing")));
        if Path::new("/proc/self").exists() {
            assert!(is_mount_point(Path::new("/proc")));
        }
        assert_eq!(unmounted_esp(dir.path().to_str().unwrap()), None);
    }

    #[test]
    fn image_mode_adds_the_staged_esp_only_when_it_exists() {
        let staging = tempfile::tempdir().unwrap();
        let prefix = staging.path().to_str().unwrap();
        assert_eq!(target_dirs(prefix).len(), 1);
        fs::create_dir(staging.path().join("EFI")).unwrap();
        assert_eq!(
            target_dirs(prefix),
            vec![
                staging.path().join("boot/EFI/dtb/rockchip"),
                staging.path().join("EFI/dtb/rockchip")
            ]
        );
    }

    #[test]
    fn directories_are_0755_despite_a_strict_umask_style_parent() {
        let staging = tempfile::tempdir().unwrap();
        let prefix = staging.path().to_str().unwrap();
        let written = install_dtb(prefix, "x.dtb", b"dtb").unwrap();
        assert_eq!(
            written,
            vec![staging.path().join("boot/EFI/dtb/rockchip/x.dtb")]
        );
        for dir in ["boot", "boot/EFI", "boot/EFI/dtb", "boot/EFI/dtb/rockchip"] {
            let mode = fs::metadata(staging.path().join(dir))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755, "{dir}");
        }
        let file_mode = fs::metadata(&written[0]).unwrap().permissions().mode();
        assert_eq!(file_mode & 0o777, 0o644);
        assert_eq!(fs::read(&written[0]).unwrap(), b"dtb");
        // A stale copy is replaced, and no temporary file is left behind.
        install_dtb(prefix, "x.dtb", b"newer").unwrap();
        assert_eq!(fs::read(&written[0]).unwrap(), b"newer");
        let names: Vec<_> = fs::read_dir(staging.path().join("boot/EFI/dtb/rockchip"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.dtb")]);
    }

    #[test]
    fn a_file_in_the_way_is_reported() {
        let staging = tempfile::tempdir().unwrap();
        fs::write(staging.path().join("boot"), b"not a dir").unwrap();
        let err = install_dtb(staging.path().to_str().unwrap(), "x.dtb", b"d").unwrap_err();
        assert!(
            matches!(err, DtbInstallError::NotADirectory { .. }),
            "{err}"
        );
    }
}
