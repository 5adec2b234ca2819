//! The Talos imager's profile rules (`pkg/imager/profile`: `Validate`, `FillDefaults`),
//! applied to the overlay's `profiles/nanopi-m6.yaml` before it is packed.

use serde::Deserialize;
use thiserror::Error;
use yaml_serde::Value;

pub const ARCHES: &[&str] = &["amd64", "arm64"];
pub const OUTPUT_KINDS: &[&str] = &[
    "iso",
    "image",
    "installer",
    "kernel",
    "initramfs",
    "uki",
    "cmdline",
];
pub const OUT_FORMATS: &[&str] = &["raw", ".tar.gz", ".xz", ".gz", ".zst"];
pub const DISK_FORMATS: &[&str] = &["raw", "qcow2", "vhd", "ova"];
pub const BOOTLOADERS: &[&str] = &["dual-boot", "sd-boot", "grub"];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("the profile is not valid profile YAML: {0}")]
    Yaml(String),
    #[error("profile field {field} is {value:?}; allowed: {allowed:?}")]
    NotAllowed {
        field: &'static str,
        value: String,
        allowed: &'static [&'static str],
    },
    #[error("profile field platform must not be empty (use metal)")]
    NoPlatform,
    #[error("an image output needs output.imageOptions with diskSize and bootloader")]
    NoImageOptions,
    #[error("output.imageOptions.diskSize must be more than 0")]
    NoDiskSize,
    #[error("an installer output may not carry META values (customization.metaContents)")]
    InstallerWithMeta,
    #[error("{output} output may not carry {what}")]
    NotForKernelOutput { output: String, what: &'static str },
    #[error(
        "the NanoPi M6 overlay profile must {requirement}: the imager's sd-boot image path never runs the overlay installer, so U-Boot would not be written"
    )]
    NotAnOverlayProfile { requirement: &'static str },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Profile {
    #[serde(default)]
    pub base_profile_name: Option<String>,
    pub arch: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub secureboot: Option<bool>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub customization: Option<Customization>,
    #[serde(default)]
    pub input: Option<Value>,
    #[serde(default)]
    pub overlay: Option<Value>,
    pub output: Output,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Customization {
    #[serde(default)]
    pub extra_kernel_args: Vec<String>,
    #[serde(default)]
    pub meta_contents: Vec<Value>,
    #[serde(default)]
    pub embedded_machine_configuration: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Output {
    pub kind: String,
    #[serde(default)]
    pub out_format: Option<String>,
    #[serde(default)]
    pub image_options: Option<ImageOptions>,
    #[serde(default)]
    pub iso_options: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageOptions {
    #[serde(default)]
    pub disk_size: u64,
    #[serde(default)]
    pub disk_format: Option<String>,
    #[serde(default)]
    pub disk_format_options: Option<String>,
    #[serde(default)]
    pub disk_sector_size: Option<u64>,
    #[serde(default)]
    pub bootloader: Option<String>,
    #[serde(default)]
    pub sd_boot_enroll_keys: Option<String>,
}

fn one_of(
    field: &'static str,
    value: &str,
    allowed: &'static [&'static str],
) -> Result<(), ProfileError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ProfileError::NotAllowed {
            field,
            value: value.to_owned(),
            allowed,
        })
    }
}

/// Parses a profile and applies the imager's validation rules.
pub fn validate(yaml: &str) -> Result<Profile, ProfileError> {
    let profile: Profile =
        yaml_serde::from_str(yaml).map_err(|e| ProfileError::Yaml(e.to_string()))?;
    one_of("arch", &profile.arch, ARCHES)?;
    if profile.platform.is_empty() {
        return Err(ProfileError::NoPlatform);
    }
    let output = &profile.output;
    one_of("output.kind", &output.kind, OUTPUT_KINDS)?;
    if let Some(format) = &output.out_format {
        one_of("output.outFormat", format, OUT_FORMATS)?;
    }
    let customization = profile.customization.as_ref();
    let has_meta = customization.is_some_and(|c| !c.meta_contents.is_empty());
    let has_args = customization.is_some_and(|c| !c.extra_kernel_args.is_empty());
    match output.kind.as_str() {
        "image" => {
            let options = output
                .image_options
                .as_ref()
                .ok_or(ProfileError::NoImageOptions)?;
            if options.disk_size == 0 {
                return Err(ProfileError::NoDiskSize);
            }
            if let Some(format) = &options.disk_format {
                one_of("output.imageOptions.diskFormat", format, DISK_FORMATS)?;
            }
            if let Some(bootloader) = &options.bootloader {
                one_of("output.imageOptions.bootloader", bootloader, BOOTLOADERS)?;
            }
        }
        "installer" if has_meta => return Err(ProfileError::InstallerWithMeta),
        kind @ ("kernel" | "initramfs") => {
            let what = if profile.secureboot == Some(true) {
                Some("secureboot")
            } else if has_args {
                Some("extra kernel args")
            } else if has_meta {
                Some("META values")
            } else {
                None
            };
            if let Some(what) = what {
                return Err(ProfileError::NotForKernelOutput {
                    output: kind.to_owned(),
                    what,
                });
            }
        }
        _ => {}
    }
    Ok(profile)
}

/// The imager rules plus what the NanoPi M6 overlay needs: an arm64 disk image booted
/// through GRUB, because only the GRUB image path runs the overlay installer.
pub fn validate_overlay_profile(yaml: &str) -> Result<Profile, ProfileError> {
    let profile = validate(yaml)?;
    let not_overlay = |requirement| Err(ProfileError::NotAnOverlayProfile { requirement });
    if profile.arch != "arm64" {
        return not_overlay("set arch: arm64");
    }
    if profile.output.kind != "image" {
        return not_overlay("set output.kind: image");
    }
    if profile.secureboot == Some(true) {
        return not_overlay("set secureboot: false");
    }
    let bootloader = profile
        .output
        .image_options
        .as_ref()
        .and_then(|o| o.bootloader.as_deref());
    if bootloader != Some("grub") {
        return not_overlay("set output.imageOptions.bootloader: grub");
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "arch: arm64\nplatform: metal\nsecureboot: false\noutput:\n  kind: image\n  outFormat: .xz\n  imageOptions:\n    diskSize: 1306525696\n    diskFormat: raw\n    bootloader: grub\n";

    #[test]
    fn each_rule_fires() {
        assert!(validate_overlay_profile(GOOD).is_ok());
        let cases = [
            (GOOD.replace("arm64", "riscv64"), "arch"),
            (GOOD.replace("platform: metal\n", ""), "platform"),
            (
                GOOD.replace("diskSize: 1306525696", "diskSize: 0"),
                "diskSize",
            ),
            (GOOD.replace(".xz", ".bz2"), "outFormat"),
            (
                GOOD.replace("diskFormat: raw", "diskFormat: iso9660"),
                "diskFormat",
            ),
            (
                GOOD.replace("bootloader: grub", "bootloader: none"),
                "bootloader",
            ),
            (GOOD.replace("kind: image", "kind: floppy"), "output.kind"),
            (
                GOOD.replace("secureboot: false", "securebot: false"),
                "unknown field",
            ),
        ];
        for (yaml, expect) in cases {
            let err = validate(&yaml).unwrap_err().to_string();
            assert!(err.contains(expect), "{expect}: {err}");
        }
    }

    #[test]
    fn the_overlay_profile_must_pin_grub() {
        let sd_boot = GOOD.replace("bootloader: grub", "bootloader: sd-boot");
        assert!(validate(&sd_boot).is_ok());
        let err = validate_overlay_profile(&sd_boot).unwrap_err();
        assert!(err.to_string().contains("bootloader: grub"), "{err}");
        let unset = GOOD.replace("    bootloader: grub\n", "");
        assert!(validate_overlay_profile(&unset).is_err());
    }
}
