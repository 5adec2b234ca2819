//! The way the optional `u-boot-rockchip-spi.bin` reaches the board: from MaskROM,
//! `rockusb flash --storage spinor u-boot-rockchip-spi.bin`. Run against the virtual
//! NanoPi M6 (16 MiB SPI-NOR), then read back over the same protocol and compared.

use nanopi_m6_installer::bootloader;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

const LOADER: &str = "loaders/armbian-rkbin__rk3588_spl_loader_v1.16.113.bin";

fn rockusb_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rockusb"))
}

fn rockusb(binary: &Path, state: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&rockusb_testkit::run(
        Command::new(binary)
            .args(["--virtual", "nanopi-m6"])
            .args(args)
            .env("ROCKUSB_VIRTUAL_DIR", state),
    ))
    .into_owned()
}

#[test]
fn the_spi_image_flashed_to_the_virtual_spi_nor_reads_back_equal() {
    let Some(testdata) = rockusb_testkit::testdata("spi_image_to_spi_nor") else {
        return;
    };
    let image = rockusb_testkit::uboot::spi_image(&testdata);
    // What `nanopi-m6-overlay pack --spi-bootloader` checks.
    bootloader::validate_spi(&image).unwrap();

    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("u-boot-rockchip-spi.bin");
    std::fs::write(&file, &image).unwrap();
    let state = work.path().join("virtual");
    let binary = rockusb_binary();
    let loader = testdata.join(LOADER);

    // The SPI-NOR's last block holds something of its own (U-Boot's environment, say),
    // which flashing a boot image must leave alone.
    rockusb(&binary, &state, &["virtual", "status"]);
    let spinor_file = state.join("nanopi-m6").join("spinor.img");
    let tail = vec![0xE7u8; 64 * 1024];
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&spinor_file)
            .unwrap();
        file.set_len(16 * 1024 * 1024).unwrap();
        file.write_all_at(&tail, 16 * 1024 * 1024 - tail.len() as u64)
            .unwrap();
    }

    // The virtual board powers on in MaskROM: --loader brings up the usbplug first.
    let out = rockusb(
        &binary,
        &state,
        &[
            "flash",
            "--loader",
            loader.to_str().unwrap(),
            "--storage",
            "spinor",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.contains("onto the spinor"), "{out}");

    assert_eq!(
        rockusb(&binary, &state, &["storage", "spinor"]).trim(),
        "storage: spinor"
    );
    let back = work.path().join("back.bin");
    let sectors = image.len().div_ceil(512).to_string();
    rockusb(
        &binary,
        &state,
        &["read", "0", &sectors, "-o", back.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(&back).unwrap(), image, "SPI-NOR read-back");

    // The board's SPI-NOR is 16 MiB and the image went nowhere else.
    let board = state.join("nanopi-m6");
    let spinor = std::fs::read(board.join("spinor.img")).unwrap();
    assert_eq!(spinor.len(), 16 * 1024 * 1024);
    assert_eq!(&spinor[..image.len()], &image[..]);
    assert_eq!(
        &spinor[spinor.len() - tail.len()..],
        &tail[..],
        "the end of the SPI-NOR was wiped"
    );
    // The eMMC file is sparse and large: look at its first 16 MiB only.
    if let Ok(emmc) = std::fs::File::open(board.join("emmc.img")) {
        let mut head = Vec::new();
        emmc.take(16 * 1024 * 1024).read_to_end(&mut head).unwrap();
        assert!(head.iter().all(|&b| b == 0), "the eMMC was written");
    }
}
