//! A generic Talos image (`metal-arm64.raw` shape) made with the real tools: sgdisk in
//! Talos's generic layout (EFI at LBA 2048, META after it, entries at LBA 2), a FAT32 ESP
//! from mkfs.vfat holding `EFI/boot/bootaa64.efi` and a UKI built with binutils, and
//! random data in the other partitions.
//!
//! Missing tools and a missing shared test data folder fail the test with what to
//! install: these tests are the proof that adapted images are right, so they never skip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use rockusb_testkit::talos::{pseudo_random, write_at};

pub const MIB: u64 = 1024 * 1024;
pub const ESP_LBA: u64 = 2048;
pub const ESP_MIB: u64 = 40;
pub const META_LBA: u64 = ESP_LBA + ESP_MIB * 2048;
pub const STATE_LBA: u64 = META_LBA + 2048;
pub const STATE_MIB: u64 = 8;
/// 1 MiB before EFI, EFI, META, STATE, and 1 MiB after for the backup table.
pub const IMAGE_LEN: u64 = (1 + ESP_MIB + 1 + STATE_MIB + 1) * MIB;

pub const UKI_NAME: &str = "talos-v1.11.5.efi";
pub const CMDLINE: &str = "talos.platform=metal console=tty0 init_on_alloc=1 \
    siderolink.api=https://omni.example.org:8090/?jointoken=s3cr3t \
    talos.events.sink=[fdae:41e4:649b:9303::1]:8090 \
    talos.logging.kernel=tcp://[fdae:41e4:649b:9303::1]:8092";
pub const OSREL: &str = "NAME=\"Talos\"\nID=talos\nVERSION_ID=v1.11.5\n\
    PRETTY_NAME=\"Talos (v1.11.5)\"\nHOME_URL=\"https://www.talos.dev/\"\n";

/// The tools the fixtures run, each with the Debian package that provides it.
pub const TOOLS: &[(&str, &str)] = &[
    ("sgdisk", "gdisk"),
    ("mkfs.vfat", "dosfstools"),
    ("fsck.vfat", "dosfstools"),
    ("mmd", "mtools"),
    ("mdir", "mtools"),
    ("mcopy", "mtools"),
    ("mtype", "mtools"),
    ("aarch64-linux-gnu-as", "binutils-aarch64-linux-gnu"),
    ("aarch64-linux-gnu-ld", "binutils-aarch64-linux-gnu"),
    ("aarch64-linux-gnu-objcopy", "binutils-aarch64-linux-gnu"),
];

/// Fails unless every tool the fixtures use is installed.
pub fn require_tools() {
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(tool, _)| !rockusb_testkit::tool_available(tool))
        .map(|(tool, package)| format!("`{tool}` (Debian package {package})"))
        .collect();
    assert!(
        missing.is_empty(),
        "these tests build their images with real tools; install: {}",
        missing.join(", ")
    );
}

/// A file from the shared test data folder; fails saying where the folder should be.
pub fn shared_file(relative: &str) -> Vec<u8> {
    let dir = rockusb_testkit::testdata_path();
    assert!(
        dir.join("MANIFEST.md").is_file(),
        "the shared test data folder {} is missing: it sits beside the checkout as \
         ../shared/testdata (or set ROCKUSB_TESTDATA to it)",
        dir.display()
    );
    let path = dir.join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The NanoPi M6 DTB (FriendlyElec vendor build) from the shared test data.
pub fn m6_dtb() -> Vec<u8> {
    shared_file("dtb/nanopi-m6__friendlyelec-vendor__rk3588s-nanopi-m6.dtb")
}

/// A `u-boot-rockchip.bin` assembled as binman does: an RK3588 idbloader at 0, 0xFF
/// padding, `u-boot.itb` at 0x7F8000 (about 9.3 MB, close to the real size).
pub fn uboot() -> Vec<u8> {
    let mut bin = shared_file("idbloader/stvhay-uboot-rk3588__rock5b__idbloader.img");
    bin.resize(0x7F_8000, 0xFF);
    bin.extend(shared_file("uboot/stvhay-uboot-rk3588__rock5b__u-boot.itb"));
    bin
}

pub fn run(cmd: &mut Command) -> Vec<u8> {
    rockusb_testkit::run(cmd.env("MTOOLS_SKIP_CHECK", "1"))
}

/// A minimal arm64 PE (one `ret`), built by the cross binutils.
pub fn bare_pe(dir: &Path) -> PathBuf {
    let asm = dir.join("stub.s");
    std::fs::write(&asm, ".text\n.globl _start\n_start:\n    ret\n").unwrap();
    let obj = dir.join("stub.o");
    let elf = dir.join("stub.elf");
    let pe = dir.join("stub.efi");
    run(Command::new("aarch64-linux-gnu-as")
        .arg(&asm)
        .arg("-o")
        .arg(&obj));
    run(Command::new("aarch64-linux-gnu-ld")
        .arg(&obj)
        .arg("-o")
        .arg(&elf));
    run(Command::new("aarch64-linux-gnu-objcopy")
        .args(["-O", "pei-aarch64-little"])
        .arg(&elf)
        .arg(&pe));
    pe
}

/// A UKI-shaped PE: the stub plus `.osrel` and `.cmdline` sections, as ukify adds them.
pub fn uki(dir: &Path, cmdline: &str) -> PathBuf {
    let stub = bare_pe(dir);
    let cmdline_file = dir.join("cmdline.txt");
    let osrel_file = dir.join("osrel.txt");
    std::fs::write(&cmdline_file, cmdline).unwrap();
    std::fs::write(&osrel_file, OSREL).unwrap();
    let uki = dir.join(UKI_NAME);
    run(Command::new("aarch64-linux-gnu-objcopy")
        .arg(format!("--add-section=.osrel={}", osrel_file.display()))
        .args(["--set-section-flags", ".osrel=data,readonly"])
        .arg(format!("--add-section=.cmdline={}", cmdline_file.display()))
        .args(["--set-section-flags", ".cmdline=data,readonly"])
        .arg(&stub)
        .arg(&uki));
    uki
}

/// A FAT32 ESP image as Talos makes it (`mkfs.vfat -F 32 -n EFI`), with systemd-boot's
/// place taken by the stub, the UKI, and a few MiB of other files.
pub fn esp_image(dir: &Path, len_mib: u64, cmdline: &str) -> PathBuf {
    let path = dir.join("esp.img");
    rockusb_testkit::fs::sized_file(&path, len_mib * MIB);
    run(Command::new("mkfs.vfat")
        .args(["-F", "32", "-s", "1", "-n", "EFI"])
        .arg(&path)
        .stdout(Stdio::null()));
    let image = path.to_str().unwrap();
    run(Command::new("mmd").args([
        "-i",
        image,
        "::EFI",
        "::EFI/boot",
        "::EFI/Linux",
        "::loader",
    ]));
    let stub = bare_pe(dir);
    run(Command::new("mcopy")
        .args(["-i", image])
        .arg(&stub)
        .arg("::EFI/boot/bootaa64.efi"));
    let uki = uki(dir, cmdline);
    run(Command::new("mcopy")
        .args(["-i", image])
        .arg(&uki)
        .arg(format!("::EFI/Linux/{UKI_NAME}")));
    let filler = dir.join("filler.bin");
    std::fs::write(&filler, pseudo_random(3 * MIB as usize, 7)).unwrap();
    run(Command::new("mcopy")
        .args(["-i", image])
        .arg(&filler)
        .arg("::loader/random-seed"));
    path
}

/// The generic image: GPT by sgdisk (EFI, META, STATE), the ESP written in, random
/// META and STATE contents.
pub fn generic_image(dir: &Path) -> PathBuf {
    generic_image_with(dir, CMDLINE)
}

pub fn generic_image_with(dir: &Path, cmdline: &str) -> PathBuf {
    require_tools();
    let path = dir.join("metal-arm64.raw");
    rockusb_testkit::fs::sized_file(&path, IMAGE_LEN);
    run(Command::new("sgdisk")
        .args([
            "-n",
            &format!("1:{ESP_LBA}:+{ESP_MIB}M"),
            "-t",
            "1:EF00",
            "-c",
            "1:EFI",
        ])
        .args(["-n", "2:0:+1M", "-t", "2:8300", "-c", "2:META"])
        .args([
            "-n",
            &format!("3:0:+{STATE_MIB}M"),
            "-t",
            "3:8300",
            "-c",
            "3:STATE",
            "-A",
            "3:set:63",
        ])
        .arg(&path)
        .stdout(Stdio::null()));
    let esp = std::fs::read(esp_image(dir, ESP_MIB, cmdline)).unwrap();
    write_at(&path, ESP_LBA * 512, &esp);
    write_at(&path, META_LBA * 512, &pseudo_random(MIB as usize, 11));
    write_at(
        &path,
        STATE_LBA * 512,
        &pseudo_random((STATE_MIB * MIB) as usize, 12),
    );
    path
}

/// `sgdisk -v` on an image: its report, and whether it found nothing wrong.
pub fn sgdisk_verify(path: &Path) -> (String, bool) {
    let out = Command::new("sgdisk").arg("-v").arg(path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let clean = out.status.success() && text.contains("No problems found");
    (text, clean)
}

/// `fsck.vfat -n` on a FAT file system image: its report, and whether it is clean.
pub fn fsck_vfat(path: &Path) -> (String, bool) {
    let out = Command::new("fsck.vfat")
        .arg("-n")
        .arg(path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.success())
}

/// A file's bytes at `offset`.
pub fn read_range(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len as usize];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut buf, offset)
        .unwrap();
    buf
}
