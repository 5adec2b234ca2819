//! Shared by the native and the qemu (aarch64) test files: how to run an installer
//! binary, the fixtures, and the protocol and install checks themselves, so both
//! architectures pass exactly the same assertions.
#![allow(dead_code)]

use rockusb_images::NANOPI_M6;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const DTB_M6_VENDOR: &str = "dtb/nanopi-m6__friendlyelec-vendor__rk3588s-nanopi-m6.dtb";
pub const DTB_M6_ARMBIAN: &str = "dtb/armbian-vendor-6.1.115__rk3588s-nanopi-m6.dtb";
pub const DTB_R6S: &str = "dtb/armbian-vendor-6.1.115__rk3588s-nanopi-r6s.dtb";
pub const DTB_ORANGEPI5: &str = "dtb/armbian-vendor-6.1.115__rk3588s-orangepi-5.dtb";
pub use rockusb_testkit::uboot::{IDBLOADER, UBOOT_ITB};

/// An installer executable, run directly or through an emulator.
#[derive(Debug, Clone)]
pub struct Installer {
    pub program: PathBuf,
    pub emulator: Option<PathBuf>,
}

impl Installer {
    pub fn native() -> Installer {
        Installer {
            program: PathBuf::from(env!("CARGO_BIN_EXE_nanopi-m6")),
            emulator: None,
        }
    }

    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut command = match &self.emulator {
            Some(emulator) => {
                let mut c = Command::new(emulator);
                c.arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.program));
        // A failing installer may exit before reading stdin; a broken pipe is fine then.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn testdata_file(dir: &Path, relative: &str) -> Vec<u8> {
    std::fs::read(dir.join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// A `u-boot-rockchip.bin` laid out as U-Boot's binman `simple-bin` does: the idbloader
/// at 0, 0xFF fill, and `u-boot.itb` at `CONFIG_SPL_PAD_TO` (0x7F8000).
pub fn assemble_bootloader(testdata: &Path) -> Vec<u8> {
    let idbloader = testdata_file(testdata, IDBLOADER);
    let itb = testdata_file(testdata, UBOOT_ITB);
    let itb_at = NANOPI_M6.itb_offset_in_bootloader as usize;
    assert!(idbloader.len() <= itb_at, "idbloader overlaps the itb slot");
    let mut image = idbloader;
    image.resize(itb_at, 0xFF);
    image.extend_from_slice(&itb);
    image
}

/// `u-boot-rockchip-spi.bin` from the shared pieces (see the testkit).
pub fn assemble_spi_image(testdata: &Path) -> Vec<u8> {
    rockusb_testkit::uboot::spi_image(testdata)
}

/// A deterministic, non-zero pattern, so "untouched" can be checked byte for byte.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub const IMAGE_LEN: u64 = 48 * 1024 * 1024;

/// A Talos-shaped disk image: random content, then a GPT written by `sgdisk` with the
/// entry array moved to LBA 2 + 20480 and EFI, BIOS, BOOT, META at Talos's positions.
pub fn talos_image(path: &Path) {
    std::fs::write(path, pattern(IMAGE_LEN as usize, 0x5eed)).unwrap();
    let entries_lba = NANOPI_M6.gpt_entries_lba().to_string();
    rockusb_testkit::run(Command::new("sgdisk").arg("-o").arg(path));
    rockusb_testkit::run(Command::new("sgdisk").arg("-j").arg(&entries_lba).arg(path));
    rockusb_testkit::run(
        Command::new("sgdisk")
            .args(["-a", "2048"])
            .args(["-n", "1:22528:+16M", "-t", "1:EF00", "-c", "1:EFI"])
            .args(["-n", "2:0:+1M", "-t", "2:EF02", "-c", "2:BIOS"])
            .args(["-n", "3:0:+16M", "-t", "3:8300", "-c", "3:BOOT"])
            .args(["-n", "4:0:+1M", "-t", "4:8300", "-c", "4:META"])
            .arg(path),
    );
}

pub fn sgdisk_print(path: &Path) -> String {
    text(&rockusb_testkit::run(
        Command::new("sgdisk").arg("-p").arg(path),
    ))
}

/// An artifacts directory as the overlay image lays it out.
pub fn artifacts(root: &Path, bootloader: &[u8], dtbs: &[(&str, &[u8])]) -> PathBuf {
    let artifacts = root.join("artifacts");
    let uboot = artifacts.join("arm64/u-boot/nanopi-m6");
    let dtb_dir = artifacts.join("arm64/dtb/rockchip");
    std::fs::create_dir_all(&uboot).unwrap();
    std::fs::create_dir_all(&dtb_dir).unwrap();
    std::fs::write(uboot.join("u-boot-rockchip.bin"), bootloader).unwrap();
    for (name, bytes) in dtbs {
        std::fs::write(dtb_dir.join(name), bytes).unwrap();
    }
    artifacts
}

/// The `install` YAML exactly as Talos ≤ 1.11 (yaml.v3, 4-space indent) marshals it,
/// plus a key this installer does not know.
pub fn install_yaml_v3(
    disk: &Path,
    prefix: &Path,
    artifacts: &Path,
    options: &[(&str, &str)],
) -> String {
    let mut yaml = format!(
        "installDisk: {}\nmountPrefix: {}\nartifactsPath: {}\n",
        disk.display(),
        prefix.display(),
        artifacts.display()
    );
    if !options.is_empty() {
        yaml.push_str("extraOptions:\n");
        for (k, v) in options {
            yaml.push_str(&format!("    {k}: {v}\n"));
        }
    }
    yaml.push_str("someFutureField:\n    nested: true\n");
    yaml
}

fn assert_failed(out: &Output, stderr_contains: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout {} stderr {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(stderr_contains),
        "stderr {stderr:?} lacks {stderr_contains:?}"
    );
}

/// An install with the vendor DTB says one thing on stderr: that its serial console is
/// the FIQ debugger's (see the DTB gate), and nothing else.
fn assert_only_the_vendor_console_warning(out: &Output) {
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.len() == 1
            && lines[0].starts_with("warning: the debug UART")
            && lines[0].contains("ttyFIQ0"),
        "stderr: {stderr}"
    );
}

fn options_reply(out: &Output) -> yaml_serde::Value {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    yaml_serde::from_slice(&out.stdout).expect("get-options prints YAML")
}

fn kernel_args(reply: &yaml_serde::Value) -> Vec<String> {
    reply["kernelArgs"]
        .as_sequence()
        .expect("kernelArgs is a list")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------- protocol checks

pub fn check_get_options_empty_map(installer: &Installer) {
    let reply = options_reply(&installer.run(&["get-options"], "{}\n"));
    assert_eq!(reply["name"].as_str(), Some("nanopi-m6"));
    assert_eq!(reply["partitionOptions"]["offset"].as_u64(), Some(20480));
    assert_eq!(
        kernel_args(&reply),
        [
            "console=tty0",
            "console=ttyS2,1500000n8",
            "cma=128MB",
            "sysctl.kernel.kexec_load_disabled=1",
            "talos.dashboard.disabled=1"
        ]
    );
}

pub fn check_get_options_indentations_and_string_booleans(installer: &Installer) {
    // yaml.v3 (Talos ≤ 1.11) indents lists by 4, yaml v4 (≥ 1.12) by 2; the imager CLI
    // sends every value as a string, a profile file keeps YAML types.
    let four = "console_baud: \"115200\"\nearlycon: \"true\"\nextra_kernel_args:\n    - cma=128MB\n    - loglevel=7\n";
    let two =
        "console_baud: 115200\nearlycon: true\nextra_kernel_args:\n  - cma=128MB\n  - loglevel=7\n";
    let a = options_reply(&installer.run(&["get-options"], four));
    let b = options_reply(&installer.run(&["get-options"], two));
    assert_eq!(a, b);
    let args = kernel_args(&a);
    assert!(
        args.contains(&"console=ttyS2,115200n8".to_owned()),
        "{args:?}"
    );
    assert!(
        args.contains(&"earlycon=uart8250,mmio32,0xfeb50000".to_owned()),
        "{args:?}"
    );
    assert_eq!(&args[args.len() - 2..], ["cma=128MB", "loglevel=7"]);
    let off = options_reply(&installer.run(&["get-options"], "earlycon: \"false\"\n"));
    assert!(!kernel_args(&off).iter().any(|a| a.starts_with("earlycon")));
}

pub fn check_missing_and_unknown_commands(installer: &Installer) {
    let out = installer.run(&[], "{}\n");
    assert_failed(&out, "missing command");
    assert!(out.stdout.is_empty());
    let out = installer.run(&["frobnicate"], "{}\n");
    assert_failed(&out, "unknown command: frobnicate");
    assert!(out.stdout.is_empty());
}

pub fn check_bad_yaml_and_bad_options_fail(installer: &Installer) {
    assert_failed(
        &installer.run(&["get-options"], "earlycon: [unclosed\n"),
        "could not decode",
    );
    assert_failed(
        &installer.run(&["get-options"], "- a list\n"),
        "could not decode",
    );
    assert_failed(
        &installer.run(&["install"], "installDisk: [\n"),
        "could not decode",
    );
    assert_failed(
        &installer.run(&["get-options"], "earlycon: perhaps\n"),
        "earlycon",
    );
    assert_failed(
        &installer.run(&["install"], "mountPrefix: /tmp\n"),
        "installDisk is empty",
    );
}

/// Options meant for another overlay (or misspelt) do not fail the build, but are named
/// on stderr.
pub fn check_unknown_options_are_ignored_with_a_warning(installer: &Installer) {
    let out = installer.run(
        &["get-options"],
        "spi-boot: \"true\"\nconsole-baud: \"115200\"\n",
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ignoring unknown overlay options [\"console-baud\", \"spi-boot\"]"),
        "{stderr}"
    );
    let reply: yaml_serde::Value = yaml_serde::from_slice(&out.stdout).unwrap();
    assert!(kernel_args(&reply).contains(&"console=ttyS2,1500000n8".to_owned()));
}

pub fn check_protocol(installer: &Installer) {
    check_unknown_options_are_ignored_with_a_warning(installer);
    check_get_options_empty_map(installer);
    check_get_options_indentations_and_string_booleans(installer);
    check_missing_and_unknown_commands(installer);
    check_bad_yaml_and_bad_options_fail(installer);
}

// ---------------------------------------------------------------- install checks

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Bootloader at 32768, every other byte of the disk unchanged, DTB in place with 0755
/// directories, and a second run that changes nothing.
pub fn check_install_on_talos_image(installer: &Installer, testdata: &Path) {
    let work = tempfile::tempdir().unwrap();
    let disk = work.path().join("disk.raw");
    talos_image(&disk);
    let before = std::fs::read(&disk).unwrap();
    let table_before = sgdisk_print(&disk);
    let bootloader = assemble_bootloader(testdata);
    let dtb = testdata_file(testdata, DTB_M6_VENDOR);
    let artifacts = artifacts(work.path(), &bootloader, &[("rk3588s-nanopi-m6.dtb", &dtb)]);
    let prefix = work.path().join("image");
    std::fs::create_dir(&prefix).unwrap();

    let yaml = install_yaml_v3(&disk, &prefix, &artifacts, &[]);
    let out = installer.run(&["install"], &yaml);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_only_the_vendor_console_warning(&out);
    assert!(
        text(&out.stdout).contains("wrote u-boot-rockchip.bin"),
        "{}",
        text(&out.stdout)
    );

    let after = std::fs::read(&disk).unwrap();
    assert_eq!(after.len(), before.len(), "the disk image changed size");
    let start = NANOPI_M6.bootloader_offset() as usize;
    let end = start + bootloader.len();
    assert_eq!(&after[start..end], &bootloader[..]);
    assert_eq!(
        &after[..start],
        &before[..start],
        "bytes before the bootloader changed (PMBR, GPT header)"
    );
    assert_eq!(
        &after[end..],
        &before[end..],
        "bytes after the bootloader changed (GPT entries, partitions)"
    );
    // The itb lands at 8 MiB on the disk, where SPL reads it.
    let itb = testdata_file(testdata, UBOOT_ITB);
    let itb_at = NANOPI_M6.itb_offset() as usize;
    assert_eq!(&after[itb_at..itb_at + itb.len()], &itb[..]);
    assert_eq!(sgdisk_print(&disk), table_before);
    rockusb_testkit::run(Command::new("sgdisk").arg("-v").arg(&disk));

    let dtb_file = prefix.join("boot/EFI/dtb/rockchip/rk3588s-nanopi-m6.dtb");
    assert_eq!(std::fs::read(&dtb_file).unwrap(), dtb);
    for dir in ["boot", "boot/EFI", "boot/EFI/dtb", "boot/EFI/dtb/rockchip"] {
        assert_eq!(mode(&prefix.join(dir)), 0o755, "{dir}");
    }
    assert!(
        !prefix.join("EFI").exists(),
        "EFI/ must not be created when the imager did not stage it"
    );

    // Idempotent: the upgrade path runs install again against the live disk.
    let out = installer.run(&["install"], &yaml);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("already up to date"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        std::fs::read(&disk).unwrap(),
        after,
        "a second run changed the disk"
    );
    assert_eq!(std::fs::read(&dtb_file).unwrap(), dtb);
}

/// Talos ≥ 1.14 stages the ESP at `<prefix>/EFI`: the DTB must go there as well, and
/// the 2-space yaml v4 form with options must work.
pub fn check_install_image_mode_with_staged_esp(installer: &Installer, testdata: &Path) {
    let work = tempfile::tempdir().unwrap();
    let disk = work.path().join("disk.raw");
    // Image mode on Talos ≥ 1.13: the hook runs before the GPT is written.
    std::fs::write(&disk, vec![0u8; IMAGE_LEN as usize]).unwrap();
    let bootloader = assemble_bootloader(testdata);
    let dtb = testdata_file(testdata, DTB_M6_ARMBIAN);
    let artifacts = artifacts(
        work.path(),
        &bootloader,
        &[("rk3588s-nanopi-m6v1.dtb", &dtb)],
    );
    let prefix = work.path().join("image");
    std::fs::create_dir_all(prefix.join("EFI")).unwrap();
    let yaml = format!(
        "artifactsPath: {}\ninstallDisk: {}\nmountPrefix: {}\nextraOptions:\n  dtb: rk3588s-nanopi-m6v1.dtb\n  earlycon: \"true\"\n",
        artifacts.display(),
        disk.display(),
        prefix.display()
    );
    let out = installer.run(&["install"], &yaml);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    for dir in ["boot/EFI/dtb/rockchip", "EFI/dtb/rockchip"] {
        let file = prefix.join(dir).join("rk3588s-nanopi-m6v1.dtb");
        assert_eq!(std::fs::read(&file).unwrap(), dtb, "{}", file.display());
        assert_eq!(mode(&prefix.join(dir)), 0o755);
    }
    let after = std::fs::read(&disk).unwrap();
    let start = NANOPI_M6.bootloader_offset() as usize;
    assert_eq!(&after[start..start + bootloader.len()], &bootloader[..]);
    assert!(after[..start].iter().all(|&b| b == 0));
    assert!(after[start + bootloader.len()..].iter().all(|&b| b == 0));
}

/// Runs install with a bad input and checks it fails with `expect` and leaves the disk
/// and the staging tree untouched.
fn check_refused(installer: &Installer, disk: &Path, bootloader: &[u8], dtb: &[u8], expect: &str) {
    let work = tempfile::tempdir().unwrap();
    let before = std::fs::read(disk).unwrap();
    let artifacts = artifacts(work.path(), bootloader, &[("rk3588s-nanopi-m6.dtb", dtb)]);
    let prefix = work.path().join("image");
    std::fs::create_dir(&prefix).unwrap();
    let out = installer.run(
        &["install"],
        &install_yaml_v3(disk, &prefix, &artifacts, &[]),
    );
    assert_failed(&out, expect);
    assert_eq!(
        std::fs::read(disk).unwrap(),
        before,
        "a refused install changed the disk"
    );
    assert!(
        !prefix.join("boot").exists(),
        "a refused install created the DTB tree"
    );
}

pub fn check_install_refusals(installer: &Installer, testdata: &Path) {
    let work = tempfile::tempdir().unwrap();
    let disk = work.path().join("disk.raw");
    talos_image(&disk);
    let bootloader = assemble_bootloader(testdata);
    let dtb = testdata_file(testdata, DTB_M6_VENDOR);

    // One byte more than fits before the GPT entry array.
    let mut oversized = bootloader.clone();
    oversized.resize(NANOPI_M6.bootloader_max_len() as usize + 1, 0xFF);
    check_refused(
        installer,
        &disk,
        &oversized,
        &dtb,
        "10454017 bytes, more than the 10454016",
    );

    check_refused(
        installer,
        &disk,
        &testdata_file(testdata, UBOOT_ITB),
        &dtb,
        "Rockchip ID block",
    );
    check_refused(
        installer,
        &disk,
        &bootloader,
        &testdata_file(testdata, DTB_R6S),
        "another board",
    );
    check_refused(
        installer,
        &disk,
        &bootloader,
        &testdata_file(testdata, DTB_ORANGEPI5),
        "another board",
    );

    // A disk partitioned the ordinary way (entries at LBA 2, a partition from 1 MiB to
    // 9 MiB, inside 32 KiB–10 MiB) would lose that partition to the bootloader; the
    // message names it and explains the Talos 1.13 fresh-install case.
    let plain = work.path().join("plain.raw");
    std::fs::write(&plain, pattern(IMAGE_LEN as usize, 7)).unwrap();
    rockusb_testkit::run(
        Command::new("sgdisk")
            .args(["-n", "1:2048:+8M", "-c", "1:old-root"])
            .arg(&plain),
    );
    check_refused(
        installer,
        &plain,
        &bootloader,
        &dtb,
        "GPT partition 1 (old-root) (bytes 1048576..9437184) overlaps the bootloader area",
    );
    check_refused(
        installer,
        &plain,
        &bootloader,
        &dtb,
        "on a fresh Talos 1.13 install the overlay runs before Talos wipes and partitions",
    );
    // A partition that only starts inside the area (9 MiB) is refused too.
    let late = work.path().join("late.raw");
    std::fs::write(&late, pattern(IMAGE_LEN as usize, 8)).unwrap();
    rockusb_testkit::run(
        Command::new("sgdisk")
            .args(["-n", "1:18432:+4M"])
            .arg(&late),
    );
    check_refused(installer, &late, &bootloader, &dtb, "GPT partition 1");

    // A partition is not a disk: too small to hold the bootloader.
    let small = work.path().join("small.raw");
    std::fs::write(&small, vec![0u8; 4 * 1024 * 1024]).unwrap();
    check_refused(installer, &small, &bootloader, &dtb, "too small");

    // Selecting a DTB the overlay does not ship names the ones it does.
    let shipped = tempfile::tempdir().unwrap();
    let artifacts_m6 = artifacts(
        shipped.path(),
        &bootloader,
        &[("rk3588s-nanopi-m6.dtb", &dtb)],
    );
    let before = std::fs::read(&disk).unwrap();
    let out = installer.run(
        &["install"],
        &install_yaml_v3(
            &disk,
            shipped.path(),
            &artifacts_m6,
            &[("dtb", "rk3588s-nanopi-m6v1.dtb")],
        ),
    );
    assert_failed(&out, "it ships [\"rk3588s-nanopi-m6.dtb\"]");
    assert_eq!(std::fs::read(&disk).unwrap(), before);

    // A missing artifact is named.
    let out = installer.run(
        &["install"],
        &install_yaml_v3(&disk, work.path(), &work.path().join("nowhere"), &[]),
    );
    assert_failed(&out, "u-boot-rockchip.bin");
}

/// Runs `install` on `disk` with an empty `mountPrefix` (the on-node form) and returns its
/// stdout. Refuses to run where an ESP is mounted at `/boot/EFI`: the installer would put
/// the DTB into this machine's ESP.
fn install_with_empty_prefix(
    installer: &Installer,
    test: &str,
    disk: &Path,
    artifacts: &Path,
    options: &[(&str, &str)],
) -> Option<String> {
    if nanopi_m6_installer::dtb_install::is_mount_point(Path::new("/boot/EFI")) {
        rockusb_testkit::missing(
            test,
            "a machine without an ESP mounted at /boot/EFI",
            "run this test in a container or VM: with an empty mountPrefix the installer writes to /boot/EFI",
        );
        return None;
    }
    let mut yaml = format!(
        "installDisk: {}\nmountPrefix: \"\"\nartifactsPath: {}\n",
        disk.display(),
        artifacts.display()
    );
    if !options.is_empty() {
        yaml.push_str("extraOptions:\n");
        for (k, v) in options {
            yaml.push_str(&format!("  {k}: {v}\n"));
        }
    }
    let out = installer.run(&["install"], &yaml);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    Some(text(&out.stdout))
}

/// Talos 1.13 fresh installs run the overlay before the disk is partitioned: a GPT with no
/// partitions (`sgdisk -o`: entries at LBA 2, first usable LBA 34) and an all-zero disk
/// with an empty `mountPrefix` must both take the bootloader, and only it.
pub fn check_install_before_partitioning(installer: &Installer, testdata: &Path) {
    let work = tempfile::tempdir().unwrap();
    let bootloader = assemble_bootloader(testdata);
    let dtb = testdata_file(testdata, DTB_M6_VENDOR);
    let artifacts = artifacts(work.path(), &bootloader, &[("rk3588s-nanopi-m6.dtb", &dtb)]);
    let start = NANOPI_M6.bootloader_offset() as usize;
    let end = start + bootloader.len();

    // A partition-less GPT, staged prefix.
    let empty_gpt = work.path().join("empty-gpt.raw");
    std::fs::write(&empty_gpt, pattern(IMAGE_LEN as usize, 34)).unwrap();
    rockusb_testkit::run(Command::new("sgdisk").arg("-o").arg(&empty_gpt));
    let table = sgdisk_print(&empty_gpt);
    assert!(
        table.contains("First usable sector is 34"),
        "sgdisk -o no longer makes the 1.13 case: {table}"
    );
    let before = std::fs::read(&empty_gpt).unwrap();
    let prefix = work.path().join("staging");
    std::fs::create_dir(&prefix).unwrap();
    let out = installer.run(
        &["install"],
        &install_yaml_v3(&empty_gpt, &prefix, &artifacts, &[]),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let after = std::fs::read(&empty_gpt).unwrap();
    assert_eq!(&after[start..end], &bootloader[..]);
    assert_eq!(&after[..start], &before[..start], "PMBR or GPT changed");
    assert_eq!(
        &after[end..],
        &before[end..],
        "bytes after the bootloader changed"
    );
    assert_eq!(sgdisk_print(&empty_gpt), table);

    // An all-zero disk with an empty mountPrefix, as the 1.13 installer passes it.
    let zero = work.path().join("zero.raw");
    std::fs::write(&zero, vec![0u8; IMAGE_LEN as usize]).unwrap();
    let Some(stdout) = install_with_empty_prefix(
        installer,
        "install_before_partitioning_empty_prefix",
        &zero,
        &artifacts,
        &[],
    ) else {
        return;
    };
    assert!(stdout.contains("wrote u-boot-rockchip.bin"), "{stdout}");
    assert!(
        stdout.contains("no ESP is mounted at /boot/EFI"),
        "the DTB must be left for the upgrade: {stdout}"
    );
    let after = std::fs::read(&zero).unwrap();
    assert_eq!(&after[start..end], &bootloader[..]);
    assert!(after[..start].iter().all(|&b| b == 0));
    assert!(after[end..].iter().all(|&b| b == 0));
}

/// `spi_boot: true` leaves the disk byte for byte as it was and still installs the DTB;
/// `false` (and the string form the imager CLI sends) writes the bootloader.
pub fn check_install_spi_boot(installer: &Installer, testdata: &Path) {
    let work = tempfile::tempdir().unwrap();
    let bootloader = assemble_bootloader(testdata);
    let dtb = testdata_file(testdata, DTB_M6_VENDOR);
    let artifacts = artifacts(work.path(), &bootloader, &[("rk3588s-nanopi-m6.dtb", &dtb)]);
    let start = NANOPI_M6.bootloader_offset() as usize;
    for (value, writes) in [("true", false), ("\"true\"", false), ("false", true)] {
        let disk = work.path().join("disk.raw");
        talos_image(&disk);
        let before = std::fs::read(&disk).unwrap();
        let prefix = work.path().join(format!("staging-{}", value.len()));
        std::fs::create_dir(&prefix).unwrap();
        let out = installer.run(
            &["install"],
            &install_yaml_v3(&disk, &prefix, &artifacts, &[("spi_boot", value)]),
        );
        assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
        assert_only_the_vendor_console_warning(&out);
        let stdout = text(&out.stdout);
        let after = std::fs::read(&disk).unwrap();
        if writes {
            assert!(stdout.contains("wrote u-boot-rockchip.bin"), "{stdout}");
            assert_eq!(&after[start..start + bootloader.len()], &bootloader[..]);
        } else {
            assert!(
                stdout.contains("spi_boot: U-Boot runs from the SPI-NOR"),
                "{stdout}"
            );
            assert!(after == before, "spi_boot {value} changed the disk");
        }
        let dtb_file = prefix.join("boot/EFI/dtb/rockchip/rk3588s-nanopi-m6.dtb");
        assert_eq!(std::fs::read(&dtb_file).unwrap(), dtb, "spi_boot {value}");
    }
    // With spi_boot the eMMC bootloader is not needed: an overlay without it still installs.
    let no_uboot = work.path().join("no-uboot");
    let artifacts = self::artifacts(&no_uboot, &bootloader, &[("rk3588s-nanopi-m6.dtb", &dtb)]);
    std::fs::remove_file(artifacts.join("arm64/u-boot/nanopi-m6/u-boot-rockchip.bin")).unwrap();
    let disk = work.path().join("disk.raw");
    let prefix = no_uboot.join("staging");
    std::fs::create_dir(&prefix).unwrap();
    let out = installer.run(
        &["install"],
        &install_yaml_v3(&disk, &prefix, &artifacts, &[("spi_boot", "true")]),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

pub fn check_install(installer: &Installer, testdata: &Path) {
    check_install_on_talos_image(installer, testdata);
    check_install_image_mode_with_staged_esp(installer, testdata);
    check_install_before_partitioning(installer, testdata);
    check_install_spi_boot(installer, testdata);
    check_install_refusals(installer, testdata);
}
