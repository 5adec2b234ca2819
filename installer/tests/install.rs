//! `nanopi-m6 install` on Talos-shaped disk images made with sgdisk. The same checks run
//! under qemu in `aarch64_qemu.rs`.

mod common;

use common::Installer;

#[test]
fn install_writes_the_bootloader_at_32768_and_nothing_else_and_is_idempotent() {
    let Some(testdata) = rockusb_testkit::testdata("install_on_talos_image") else {
        return;
    };
    if !rockusb_testkit::tool("install_on_talos_image", "sgdisk", "gdisk") {
        return;
    }
    common::check_install_on_talos_image(&Installer::native(), &testdata);
}

#[test]
fn install_in_image_mode_also_fills_the_staged_esp() {
    let Some(testdata) = rockusb_testkit::testdata("install_image_mode_staged_esp") else {
        return;
    };
    common::check_install_image_mode_with_staged_esp(&Installer::native(), &testdata);
}

#[test]
fn install_accepts_a_partitionless_gpt_and_an_all_zero_disk_with_an_empty_prefix() {
    let Some(testdata) = rockusb_testkit::testdata("install_before_partitioning") else {
        return;
    };
    if !rockusb_testkit::tool("install_before_partitioning", "sgdisk", "gdisk") {
        return;
    }
    common::check_install_before_partitioning(&Installer::native(), &testdata);
}

#[test]
fn install_with_spi_boot_leaves_the_disk_alone() {
    let Some(testdata) = rockusb_testkit::testdata("install_spi_boot") else {
        return;
    };
    if !rockusb_testkit::tool("install_spi_boot", "sgdisk", "gdisk") {
        return;
    }
    common::check_install_spi_boot(&Installer::native(), &testdata);
}

#[test]
fn install_refuses_bad_inputs_and_leaves_the_disk_unchanged() {
    let Some(testdata) = rockusb_testkit::testdata("install_refusals") else {
        return;
    };
    if !rockusb_testkit::tool("install_refusals", "sgdisk", "gdisk") {
        return;
    }
    common::check_install_refusals(&Installer::native(), &testdata);
}

/// Detaches the loop device when the test ends, pass or fail.
struct LoopDevice(String);

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

#[test]
fn install_works_on_a_block_device() {
    let test = "install_on_loop_block_device";
    let Some(testdata) = rockusb_testkit::testdata(test) else {
        return;
    };
    for (tool, package) in [("sgdisk", "gdisk"), ("losetup", "mount")] {
        if !rockusb_testkit::tool(test, tool, package) {
            return;
        }
    }
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("disk.raw");
    common::talos_image(&image);
    let before = std::fs::read(&image).unwrap();
    let attach = std::process::Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&image)
        .output()
        .unwrap();
    if !attach.status.success() {
        rockusb_testkit::missing(
            test,
            "a free loop device (losetup -f)",
            "run as root with /dev/loop-control",
        );
        return;
    }
    let device = LoopDevice(common::text(&attach.stdout).trim().to_owned());
    let bootloader = common::assemble_bootloader(&testdata);
    let dtb = common::testdata_file(&testdata, common::DTB_M6_VENDOR);
    let artifacts = common::artifacts(work.path(), &bootloader, &[("rk3588s-nanopi-m6.dtb", &dtb)]);
    let prefix = work.path().join("root");
    std::fs::create_dir(&prefix).unwrap();
    let yaml = common::install_yaml_v3(std::path::Path::new(&device.0), &prefix, &artifacts, &[]);
    let out = Installer::native().run(&["install"], &yaml);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        common::text(&out.stderr)
    );
    drop(device);

    let after = std::fs::read(&image).unwrap();
    let start = rockusb_images::NANOPI_M6.bootloader_offset() as usize;
    let end = start + bootloader.len();
    assert_eq!(&after[start..end], &bootloader[..]);
    assert_eq!(&after[..start], &before[..start]);
    assert_eq!(&after[end..], &before[end..]);
}
