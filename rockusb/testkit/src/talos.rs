//! Talos-shaped disk images made with the real `sgdisk`: the GPT entry array pushed to
//! LBA 2 + 20480 (the overlay's `partitionOptions.offset`) and the EFI, BIOS, BOOT and META
//! partitions in Talos's order, EFI at LBA 22528 (docs/disk-layout.md §1).

use std::path::Path;
use std::process::{Command, Stdio};

pub const MIB: u64 = 1024 * 1024;

/// First sector of the EFI partition in every Talos image built with an RK3588 overlay.
pub const EFI_LBA: u64 = 22528;

/// Partition sizes of a Talos-shaped table; BIOS and META are 1 MiB as in Talos.
#[derive(Debug, Clone, Copy)]
pub struct TalosTable {
    pub efi_mib: u64,
    pub boot_mib: u64,
}

impl TalosTable {
    /// First sector of each partition, as sgdisk places them (1 MiB aligned, back to back).
    pub fn bios_lba(&self) -> u64 {
        EFI_LBA + self.efi_mib * 2048
    }
    pub fn boot_lba(&self) -> u64 {
        self.bios_lba() + 2048
    }
    pub fn meta_lba(&self) -> u64 {
        self.boot_lba() + self.boot_mib * 2048
    }
}

/// Creates `path` as a sparse file of `len` bytes and writes a Talos-shaped GPT into it.
pub fn partition(path: &Path, len: u64, table: TalosTable) {
    std::fs::File::create(path)
        .and_then(|f| f.set_len(len))
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    crate::run(
        Command::new("sgdisk")
            .arg("--move-main-table=20482")
            .args(["-n", &format!("1:{EFI_LBA}:+{}M", table.efi_mib)])
            .args(["-t", "1:EF00", "-c", "1:EFI"])
            .args([
                "-n", "2:0:+1M", "-t", "2:EF02", "-c", "2:BIOS", "-A", "2:set:2",
            ])
            .args(["-n", &format!("3:0:+{}M", table.boot_mib)])
            .args(["-t", "3:8300", "-c", "3:BOOT"])
            .args(["-n", "4:0:+1M", "-t", "4:8300", "-c", "4:META"])
            .arg(path)
            .stdout(Stdio::null()),
    );
}

/// Deterministic filler (xorshift) in which no byte is zero, so no block of it is skipped.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 | 1
        })
        .collect()
}

/// Writes `data` at `offset` of an existing file.
pub fn write_at(path: &Path, offset: u64, data: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.write_all_at(data, offset))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
