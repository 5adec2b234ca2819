//! `profiles/nanopi-m6.yaml` against the imager's validation rules, beside the real
//! sbc-rockchip profiles and Talos's own imager test profiles.

use nanopi_m6_installer::profile::{self, ProfileError};
use std::path::Path;

const PROFILE: &str = include_str!("../profiles/nanopi-m6.yaml");

fn yaml_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn our_profile_passes_the_imager_rules_and_pins_grub() {
    let parsed = profile::validate_overlay_profile(PROFILE).unwrap();
    assert_eq!(parsed.arch, "arm64");
    assert_eq!(parsed.platform, "metal");
    let image = parsed.output.image_options.unwrap();
    assert_eq!(image.bootloader.as_deref(), Some("grub"));
    assert_eq!(image.disk_format.as_deref(), Some("raw"));
    assert_eq!(parsed.output.out_format.as_deref(), Some(".xz"));
}

#[test]
fn our_profile_matches_every_sbc_rockchip_profile() {
    let Some(dir) = rockusb_testkit::testdata("profile_matches_sbc_rockchip") else {
        return;
    };
    let ours: yaml_serde::Value = yaml_serde::from_str(PROFILE).unwrap();
    let theirs = yaml_files(&dir.join("talos/sbc-rockchip-profiles"));
    assert!(
        theirs.len() >= 20,
        "expected the sbc-rockchip profile set, found {}",
        theirs.len()
    );
    for (name, text) in theirs {
        profile::validate_overlay_profile(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let value: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
        assert_eq!(value, ours, "{name} differs from profiles/nanopi-m6.yaml");
    }
}

#[test]
fn talos_imager_profiles_pass_the_general_rules_but_sd_boot_is_no_overlay_profile() {
    let Some(dir) = rockusb_testkit::testdata("imager_profiles_rules") else {
        return;
    };
    let profiles = yaml_files(&dir.join("talos/imager-profile-testdata"));
    assert_eq!(profiles.len(), 3);
    for (name, text) in &profiles {
        profile::validate(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let sd_boot = &profiles
        .iter()
        .find(|(n, _)| n.contains("metal-arm64-1.15.0"))
        .unwrap()
        .1;
    assert!(matches!(
        profile::validate_overlay_profile(sd_boot),
        Err(ProfileError::NotAnOverlayProfile { .. })
    ));
}

#[test]
fn a_profile_without_a_bootloader_is_refused_as_overlay_profile() {
    let Some(dir) = rockusb_testkit::testdata("profile_without_bootloader") else {
        return;
    };
    // The earlier community M6 profile leaves the bootloader unset, so Talos ≥ 1.10
    // would pick sd-boot on arm64 and never run the overlay installer.
    let text =
        std::fs::read_to_string(dir.join("talos/nanopi-m6-overlay__board-rk3588.yaml")).unwrap();
    profile::validate(&text).unwrap();
    let err = profile::validate_overlay_profile(&text).unwrap_err();
    assert!(err.to_string().contains("bootloader: grub"), "{err}");
}
