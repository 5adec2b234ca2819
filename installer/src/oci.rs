//! Packs the overlay tree into an OCI image archive (`oci-archive:` in skopeo terms) for
//! linux/amd64 and linux/arm64.
//!
//! The imager extracts the overlay for the build host's architecture and runs its
//! installer there, and the node runs the arm64 one, so each platform's image carries
//! its own `installers/nanopi-m6`; the artifacts and profile are the same in both.
//!
//! Layout: `oci-layout`, `index.json` pointing at one image index (tagged), which lists
//! one manifest per platform; each manifest has one uncompressed tar layer.

use crate::board::{BOOTLOADER_ARTIFACT, LAYOUT, OVERLAY_NAME};
use crate::bootloader::{self, BootloaderError};
use crate::dtb_gate::{self, DtbGateError};
use crate::options::DtbName;
use crate::profile::{self, ProfileError};
use crate::tar::{TarBuilder, TarError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use thiserror::Error;

pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The CPU architectures the overlay image is published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::Amd64, Arch::Arm64];

    /// The OCI/Go name.
    pub fn oci_name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    pub fn parse(name: &str) -> Option<Arch> {
        match name {
            "amd64" | "x86_64" => Some(Arch::Amd64),
            "arm64" | "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// ELF `e_machine` of binaries for this architecture.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::Amd64 => 62,
            Arch::Arm64 => 183,
        }
    }
}

/// `e_machine` of a little-endian 64-bit ELF file, or `None` if `bytes` is not one.
pub fn elf_machine(bytes: &[u8]) -> Option<u16> {
    let is_elf64_le = bytes.get(..4) == Some(b"\x7fELF".as_slice())
        && bytes.get(4) == Some(&2)
        && bytes.get(5) == Some(&1);
    if !is_elf64_le {
        return None;
    }
    let field: [u8; 2] = bytes.get(18..20)?.try_into().ok()?;
    Some(u16::from_le_bytes(field))
}

/// Whether a 64-bit little-endian ELF file requests a dynamic loader (`PT_INTERP`).
/// `None` if the program headers cannot be read.
pub fn elf_needs_interpreter(bytes: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    elf_machine(bytes)?;
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let table = usize::try_from(u64_at(32)?).ok()?;
    let entry_size = usize::from(u16_at(54)?);
    let count = usize::from(u16_at(56)?);
    for i in 0..count {
        let at = table.checked_add(i.checked_mul(entry_size)?)?;
        let kind = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
        if kind == PT_INTERP {
            return Some(true);
        }
    }
    Some(false)
}

#[derive(Debug, Error)]
pub enum PackError {
    #[error("no installer binary for linux/{0}; the overlay needs one for amd64 and arm64")]
    MissingInstaller(&'static str),
    #[error("the installer given for linux/{arch} is {found}; build it for that architecture")]
    WrongInstallerArch { arch: &'static str, found: String },
    #[error(
        "the installer for linux/{0} is dynamically linked; the imager and the node run it in minimal images without a matching libc, so build it with RUSTFLAGS=\"-C target-feature=+crt-static\" (see build-overlay.sh)"
    )]
    DynamicInstaller(&'static str),
    #[error("{0}")]
    Bootloader(#[from] BootloaderError),
    #[error("no DTB given; pass rk3588s-nanopi-m6.dtb or rk3588s-nanopi-m6v1.dtb")]
    NoDtb,
    #[error(
        "DTB file name {0:?} is not one the installer can select; name it rk3588s-nanopi-m6.dtb or rk3588s-nanopi-m6v1.dtb"
    )]
    UnknownDtbName(String),
    #[error("DTB {name}: {source}")]
    Dtb {
        name: String,
        #[source]
        source: DtbGateError,
    },
    #[error("profiles/{OVERLAY_NAME}.yaml: {0}")]
    Profile(#[from] ProfileError),
    #[error("the profile is not UTF-8 text")]
    ProfileNotUtf8,
    #[error(transparent)]
    Tar(#[from] TarError),
    #[error("encoding OCI JSON failed: {0}")]
    Json(#[from] serde_json::Error),
}

/// The inputs of the overlay image.
#[derive(Debug, Clone, Default)]
pub struct OverlayTree {
    /// `installers/nanopi-m6` for each platform.
    pub installers: BTreeMap<Arch, Vec<u8>>,
    /// `artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip.bin`.
    pub bootloader: Vec<u8>,
    /// `artifacts/arm64/dtb/rockchip/<name>`, by file name.
    pub dtbs: BTreeMap<String, Vec<u8>>,
    /// `profiles/nanopi-m6.yaml`.
    pub profile: Vec<u8>,
}

/// Everything a packed archive holds, for callers that want to report it.
#[derive(Debug, Clone)]
pub struct PackedOverlay {
    pub archive: Vec<u8>,
    /// Digest of the image index that `index.json` points at.
    pub index_digest: String,
    /// Manifest digest per platform.
    pub manifests: BTreeMap<Arch, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: &'static str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct Platform {
    architecture: &'static str,
    os: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

#[derive(Serialize)]
struct ImageConfig {
    architecture: &'static str,
    os: &'static str,
    config: BTreeMap<String, String>,
    rootfs: RootFs,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Collects blobs by digest, each stored once.
#[derive(Default)]
struct Blobs {
    by_digest: BTreeMap<String, Vec<u8>>,
}

impl Blobs {
    fn add(&mut self, media_type: &'static str, bytes: Vec<u8>) -> Descriptor {
        let digest = sha256_digest(&bytes);
        let size = bytes.len() as u64;
        self.by_digest.entry(digest.clone()).or_insert(bytes);
        Descriptor {
            media_type,
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// The paths of the overlay tree, as the imager extracts them under `<tmp>/overlay/`.
pub fn installer_path() -> String {
    format!("installers/{OVERLAY_NAME}")
}
pub fn bootloader_path() -> String {
    format!("artifacts/{BOOTLOADER_ARTIFACT}")
}
pub fn dtb_path(name: &str) -> String {
    format!("artifacts/{}/{name}", crate::board::DTB_ARTIFACT_DIR)
}
pub fn profile_path() -> String {
    format!("profiles/{OVERLAY_NAME}.yaml")
}

/// One platform's layer: the overlay tree with that platform's installer. Directories
/// are listed so they extract as 0755 whatever the extractor's defaults.
fn layer(tree: &OverlayTree, installer: &[u8], mtime: u64) -> Result<Vec<u8>, TarError> {
    let mut tar = TarBuilder::new(mtime);
    for dir in [
        "artifacts",
        "artifacts/arm64",
        "artifacts/arm64/dtb",
        "artifacts/arm64/dtb/rockchip",
    ] {
        tar.add_dir(dir, 0o755)?;
    }
    for (name, dtb) in &tree.dtbs {
        tar.add_file(&dtb_path(name), 0o644, dtb)?;
    }
    for dir in ["artifacts/arm64/u-boot", "artifacts/arm64/u-boot/nanopi-m6"] {
        tar.add_dir(dir, 0o755)?;
    }
    tar.add_file(&bootloader_path(), 0o644, &tree.bootloader)?;
    tar.add_dir("installers", 0o755)?;
    tar.add_file(&installer_path(), 0o755, installer)?;
    tar.add_dir("profiles", 0o755)?;
    tar.add_file(&profile_path(), 0o644, &tree.profile)?;
    Ok(tar.finish())
}

impl OverlayTree {
    /// Checks every input the way the installer will at install time, so a broken
    /// overlay fails here and not on a user's board.
    pub fn validate(&self) -> Result<(), PackError> {
        for arch in Arch::ALL {
            let binary = self
                .installers
                .get(&arch)
                .ok_or(PackError::MissingInstaller(arch.oci_name()))?;
            let machine = elf_machine(binary);
            if machine != Some(arch.elf_machine()) {
                let found = match machine {
                    None => "not a 64-bit little-endian ELF executable".to_owned(),
                    Some(m) => format!("an ELF binary for machine {m}"),
                };
                return Err(PackError::WrongInstallerArch {
                    arch: arch.oci_name(),
                    found,
                });
            }
            if elf_needs_interpreter(binary) != Some(false) {
                return Err(PackError::DynamicInstaller(arch.oci_name()));
            }
        }
        bootloader::validate(&self.bootloader, &LAYOUT)?;
        if self.dtbs.is_empty() {
            return Err(PackError::NoDtb);
        }
        for (name, dtb) in &self.dtbs {
            if DtbName::parse(name).map(DtbName::file_name) != Some(name.as_str()) {
                return Err(PackError::UnknownDtbName(name.clone()));
            }
            dtb_gate::check(dtb).map_err(|source| PackError::Dtb {
                name: name.clone(),
                source,
            })?;
        }
        let profile = std::str::from_utf8(&self.profile).map_err(|_| PackError::ProfileNotUtf8)?;
        profile::validate_overlay_profile(profile)?;
        Ok(())
    }

    /// Validates the tree and builds the archive. `mtime` stamps every tar entry
    /// (use `SOURCE_DATE_EPOCH` for reproducible builds); `tag` names the image in
    /// `index.json`.
    pub fn pack(&self, tag: &str, mtime: u64) -> Result<PackedOverlay, PackError> {
        self.validate()?;
        let mut blobs = Blobs::default();
        let mut platform_manifests = Vec::new();
        let mut manifests = BTreeMap::new();
        for arch in Arch::ALL {
            let installer = self
                .installers
                .get(&arch)
                .ok_or(PackError::MissingInstaller(arch.oci_name()))?;
            // Layers are uncompressed, so the diff ID equals the layer digest.
            let layer = blobs.add(MEDIA_TYPE_LAYER, layer(self, installer, mtime)?);
            let config = ImageConfig {
                architecture: arch.oci_name(),
                os: "linux",
                config: BTreeMap::new(),
                rootfs: RootFs {
                    kind: "layers",
                    diff_ids: vec![layer.digest.clone()],
                },
            };
            let config = blobs.add(MEDIA_TYPE_CONFIG, serde_json::to_vec(&config)?);
            let manifest = Manifest {
                schema_version: 2,
                media_type: MEDIA_TYPE_MANIFEST,
                config,
                layers: vec![layer],
            };
            let mut descriptor = blobs.add(MEDIA_TYPE_MANIFEST, serde_json::to_vec(&manifest)?);
            descriptor.platform = Some(Platform {
                architecture: arch.oci_name(),
                os: "linux",
            });
            manifests.insert(arch, descriptor.digest.clone());
            platform_manifests.push(descriptor);
        }
        let image_index = Index {
            schema_version: 2,
            media_type: MEDIA_TYPE_INDEX,
            manifests: platform_manifests,
        };
        let mut index_descriptor = blobs.add(MEDIA_TYPE_INDEX, serde_json::to_vec(&image_index)?);
        index_descriptor
            .annotations
            .insert(REF_NAME_ANNOTATION, tag.to_owned());
        let index_digest = index_descriptor.digest.clone();
        let top = Index {
            schema_version: 2,
            media_type: MEDIA_TYPE_INDEX,
            manifests: vec![index_descriptor],
        };

        let mut archive = TarBuilder::new(mtime);
        archive.add_file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        archive.add_file("index.json", 0o644, &serde_json::to_vec(&top)?)?;
        archive.add_dir("blobs", 0o755)?;
        archive.add_dir("blobs/sha256", 0o755)?;
        for (digest, bytes) in &blobs.by_digest {
            let hex = digest.trim_start_matches("sha256:");
            archive.add_file(&format!("blobs/sha256/{hex}"), 0o644, bytes)?;
        }
        Ok(PackedOverlay {
            archive: archive.finish(),
            index_digest,
            manifests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_digest_matches_the_known_empty_hash() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn elf_machine_reads_the_header() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18..20].copy_from_slice(&183u16.to_le_bytes());
        assert_eq!(elf_machine(&elf), Some(Arch::Arm64.elf_machine()));
        assert_eq!(elf_machine(b"#!/bin/sh\n"), None);
        assert_eq!(elf_machine(&elf[..10]), None);
    }

    #[test]
    fn a_wrong_arch_installer_is_refused() {
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[18..20].copy_from_slice(&62u16.to_le_bytes());
        let tree = OverlayTree {
            installers: [(Arch::Amd64, elf.clone()), (Arch::Arm64, elf)].into(),
            ..OverlayTree::default()
        };
        let err = tree.validate().unwrap_err();
        assert!(
            matches!(err, PackError::WrongInstallerArch { arch: "arm64", .. }),
            "{err}"
        );
    }
}
