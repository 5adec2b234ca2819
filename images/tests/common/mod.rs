//! Builds Talos-shaped disk images with the real `sgdisk`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIB: u64 = 1024 * 1024;
/// The test image: 40 MiB, like a Talos image scaled down (EFI 8 MiB, BOOT 16 MiB).
pub const TALOS_TEST_IMAGE_LEN: u64 = 40 * MIB;

use rockusb_testkit::talos::{TalosTable, partition};
pub use rockusb_testkit::talos::{pseudo_random, write_at};

/// A Talos-shaped image: entry array at LBA 2 + 20480, EFI/BIOS/BOOT/META as in
/// docs/disk-layout.md §1 (EFI at LBA 22528), an RKNS bootloader at sector 64 and some
/// data at the start of EFI and BOOT. META stays zero, as in a fresh Talos image.
pub fn talos_image(dir: &Path) -> PathBuf {
    let path = dir.join("talos.raw");
    partition(
        &path,
        TALOS_TEST_IMAGE_LEN,
        TalosTable {
            efi_mib: 8,
            boot_mib: 16,
        },
    );
    let mut bootloader = pseudo_random(64 * 1024, 1);
    bootloader[..4].copy_from_slice(b"RKNS");
    write_at(&path, 32768, &bootloader);
    write_at(&path, 22528 * 512, &pseudo_random(256 * 1024, 2));
    write_at(&path, 40960 * 512 + 3 * MIB, &pseudo_random(300 * 1024, 3));
    path
}

/// A plain sgdisk image: entries at LBA 2, one partition named "root".
pub fn plain_image(dir: &Path) -> PathBuf {
    let path = dir.join("plain.raw");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(8 * MIB)
        .unwrap();
    rockusb_testkit::run(
        Command::new("sgdisk")
            .args(["-n", "1:2048:+4M", "-t", "1:8300", "-c", "1:root"])
            .arg(&path),
    );
    path
}

/// One partition as `sgdisk -i N` reports it.
#[derive(Debug, Default)]
pub struct SgdiskPartition {
    pub type_guid: String,
    pub unique_guid: String,
    pub first: u64,
    pub last: u64,
    pub attributes: u64,
    pub name: String,
}

pub fn sgdisk_info(path: &Path, number: u32) -> SgdiskPartition {
    let out = rockusb_testkit::run(Command::new("sgdisk").arg(format!("-i{number}")).arg(path));
    let text = String::from_utf8(out).unwrap();
    let mut p = SgdiskPartition::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        let first_word = value.split_whitespace().next().unwrap_or("");
        match key {
            "Partition GUID code" => p.type_guid = first_word.to_string(),
            "Partition unique GUID" => p.unique_guid = first_word.to_string(),
            "First sector" => p.first = first_word.parse().unwrap(),
            "Last sector" => p.last = first_word.parse().unwrap(),
            "Attribute flags" => p.attributes = u64::from_str_radix(first_word, 16).unwrap(),
            "Partition name" => p.name = value.trim().trim_matches('\'').to_string(),
            _ => {}
        }
    }
    p
}

/// The size of a Talos ≥ 1.11 arm64 image (docs/disk-layout.md §1).
pub const TALOS_1_11_IMAGE_LEN: u64 = 2_355_101_696;

/// A sparse file with the full-size Talos ≥ 1.11 partition table (EFI 100 MiB, BIOS
/// 1 MiB, BOOT 2000 MiB, META 1 MiB), no data.
pub fn talos_full_size_table(dir: &Path) -> PathBuf {
    let path = dir.join("talos-full.raw");
    partition(
        &path,
        TALOS_1_11_IMAGE_LEN,
        TalosTable {
            efi_mib: 100,
            boot_mib: 2000,
        },
    );
    path
}
