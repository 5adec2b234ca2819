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
fn install_refuses_bad_inputs_and_leaves_the_disk_unchanged() {
    let Some(testdata) = rockusb_testkit::testdata("install_refusals") else {
        return;
    };
    if !rockusb_testkit::tool("install_refusals", "sgdisk", "gdisk") {
        return;
    }
    common::check_install_refusals(&Installer::native(), &testdata);
}
