//! Packs the overlay tree for linux/amd64 and linux/arm64, in three forms:
//!
//! - an OCI image layout in a tar (`oci-archive:` in skopeo terms), to push to a registry;
//! - the same layout unpacked in a directory, for a profile's `overlay.image.ociPath`;
//! - a flat tar of one platform's overlay tree (`installers/`, `artifacts/`, `profiles/`),
//!   for a profile's `overlay.image.tarballPath`.
//!
//! The imager extracts the overlay for the build host's architecture and runs its
//! installer there, and the node runs the arm64 one, so each platform's image carries
//! its own `installers/nanopi-m6`; the artifacts and profile are the same in both.
//!
//! Layout: `oci-layout`; blobs under `blobs/sha256/`; `index.json` listing
//!
//! 1. the multi-platform image index, annotated with the tag
//!    (`org.opencontainers.image.ref.name`): what `skopeo copy --all oci:DIR:TAG` pushes
//!    and what `oci:DIR:TAG` resolves, per `--override-arch`;
//! 2. each platform's manifest directly, with its `platform`: the imager's `ociPath` reader
//!    only looks at the descriptors of `index.json` itself and skips those without a
//!    platform (`siderolabs/talos:pkg/imager/profile/input.go`, `pullFromOCI`, the same from
//!    v1.9.0 to v1.14.0-rc.1), so a nested index alone gives "no OCI image found for arm64".
//!
//! Each manifest has one uncompressed tar layer. The OCI documents are `oci-spec` types
//! serialised by `serde_json` (fields in declaration order, one annotation), and tar entries
//! carry fixed owners, modes and mtime, so equal inputs give byte-identical output.

use crate::board::{BOOTLOADER_ARTIFACT, LAYOUT, OVERLAY_NAME, SPI_BOOTLOADER_ARTIFACT};
use crate::bootloader::{self, BootloaderError};
use crate::dtb_gate::{self, DtbGateError};
use crate::options::DtbName;
use crate::profile::{self, ProfileError};
use crate::tar::{TarBuilder, TarError};
use oci_spec::image::{
    self as spec, Config, DescriptorBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, OciLayoutBuilder, PlatformBuilder, RootFsBuilder,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const REF_NAME_ANNOTATION: &str = spec::ANNOTATION_REF_NAME;

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

    /// The architecture this program was built for, if the overlay has one for it.
    pub fn host() -> Option<Arch> {
        Arch::parse(std::env::consts::ARCH)
    }

    fn spec(self) -> spec::Arch {
        match self {
            Arch::Amd64 => spec::Arch::Amd64,
            Arch::Arm64 => spec::Arch::ARM64,
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
    #[error("no installer binary for linux/{0}; pass it with --installer-{0}")]
    MissingInstaller(&'static str),
    #[error("the installer given for linux/{arch} is {found}; build it for that architecture")]
    WrongInstallerArch { arch: &'static str, found: String },
    #[error(
        "the installer for linux/{0} is dynamically linked; the imager and the node run it in minimal images without a matching libc, so build it with RUSTFLAGS=\"-C target-feature=+crt-static\" (see build-overlay.sh)"
    )]
    DynamicInstaller(&'static str),
    #[error("{0}")]
    Bootloader(#[from] BootloaderError),
    #[error("artifacts/{SPI_BOOTLOADER_ARTIFACT}: {0}")]
    SpiBootloader(BootloaderError),
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
    #[error(
        "tag {0:?} is not a valid image tag; use 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
    )]
    BadTag(String),
    #[error(transparent)]
    Tar(#[from] TarError),
    #[error("building the OCI documents failed: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("encoding OCI JSON failed: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "{0} exists and is not an empty directory; remove it or choose another --output, so the layout holds only this image"
    )]
    OutputNotEmpty(PathBuf),
    #[error("{what} {path} failed: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The inputs of the overlay image.
#[derive(Debug, Clone, Default)]
pub struct OverlayTree {
    /// `installers/nanopi-m6` for each platform.
    pub installers: BTreeMap<Arch, Vec<u8>>,
    /// `artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip.bin`.
    pub bootloader: Vec<u8>,
    /// `artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip-spi.bin`, optional.
    pub spi_bootloader: Option<Vec<u8>>,
    /// `artifacts/arm64/dtb/rockchip/<name>`, by file name.
    pub dtbs: BTreeMap<String, Vec<u8>>,
    /// `profiles/nanopi-m6.yaml`.
    pub profile: Vec<u8>,
}

/// The output formats of `nanopi-m6-overlay pack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackFormat {
    /// The OCI layout in one tar file (`oci-archive:FILE:TAG`).
    OciArchive,
    /// The OCI layout in a directory (`oci:DIR:TAG`, a profile's `ociPath`).
    OciDir,
    /// One platform's overlay tree as a flat tar (a profile's `tarballPath`).
    TreeTar,
}

impl PackFormat {
    pub const NAMES: &'static str = "oci-archive, oci-dir or tree-tar";

    pub fn parse(name: &str) -> Option<PackFormat> {
        match name {
            "oci-archive" => Some(PackFormat::OciArchive),
            "oci-dir" => Some(PackFormat::OciDir),
            "tree-tar" => Some(PackFormat::TreeTar),
            _ => None,
        }
    }
}

/// An OCI image layout held in memory: every file by its path inside the layout.
#[derive(Debug, Clone)]
pub struct ImageLayout {
    /// `oci-layout`, `index.json` and `blobs/sha256/<hex>`, sorted by path.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Digest of the multi-platform image index (the tagged entry of `index.json`).
    pub index_digest: String,
    /// Manifest digest per platform.
    pub manifests: BTreeMap<Arch, String>,
}

/// Everything a packed archive holds, for callers that want to report it.
#[derive(Debug, Clone)]
pub struct PackedOverlay {
    pub archive: Vec<u8>,
    /// Digest of the image index that `index.json` tags.
    pub index_digest: String,
    /// Manifest digest per platform.
    pub manifests: BTreeMap<Arch, String>,
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
    fn add(
        &mut self,
        media_type: MediaType,
        bytes: Vec<u8>,
    ) -> Result<spec::Descriptor, PackError> {
        let digest = sha256_digest(&bytes);
        let size = bytes.len() as u64;
        let descriptor = DescriptorBuilder::default()
            .media_type(media_type)
            .digest(digest.parse::<spec::Digest>()?)
            .size(size)
            .build()?;
        self.by_digest.entry(digest).or_insert(bytes);
        Ok(descriptor)
    }
}

/// The paths of the overlay tree, as the imager extracts them under `<tmp>/overlay/`.
pub fn installer_path() -> String {
    format!("installers/{OVERLAY_NAME}")
}
pub fn bootloader_path() -> String {
    format!("artifacts/{BOOTLOADER_ARTIFACT}")
}
pub fn spi_bootloader_path() -> String {
    format!("artifacts/{SPI_BOOTLOADER_ARTIFACT}")
}
pub fn dtb_path(name: &str) -> String {
    format!("artifacts/{}/{name}", crate::board::DTB_ARTIFACT_DIR)
}
pub fn profile_path() -> String {
    format!("profiles/{OVERLAY_NAME}.yaml")
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// One platform's overlay tree as a tar: the layer of its image, and the `tarballPath`
/// tree. Directories are listed (0755, parents first) so they extract with that mode and
/// so extractors that create no parents (the imager's, see [`crate::tar`]) work.
fn tree_tar(tree: &OverlayTree, installer: &[u8], mtime: u64) -> Result<Vec<u8>, TarError> {
    let mut tar = TarBuilder::new(mtime);
    let mut files: Vec<(String, u32, &[u8])> = vec![];
    for (name, dtb) in &tree.dtbs {
        files.push((dtb_path(name), 0o644, dtb));
    }
    files.push((bootloader_path(), 0o644, &tree.bootloader));
    if let Some(spi) = &tree.spi_bootloader {
        files.push((spi_bootloader_path(), 0o644, spi));
    }
    files.push((installer_path(), 0o755, installer));
    files.push((profile_path(), 0o644, &tree.profile));
    for (path, mode, data) in files {
        tar.add_dirs(parent(&path))?;
        tar.add_file(&path, mode, data)?;
    }
    tar.finish()
}

/// Docker's tag grammar, which skopeo's `oci:DIR:TAG` references also accept.
fn check_tag(tag: &str) -> Result<(), PackError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(PackError::BadTag(tag.to_owned()))
    }
}

impl OverlayTree {
    /// Checks every input the way the installer will at install time, so a broken
    /// overlay fails here and not on a user's board. Installers are required for every
    /// architecture in `arches`.
    pub fn validate_for(&self, arches: &[Arch]) -> Result<(), PackError> {
        for &arch in arches {
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
        if let Some(spi) = &self.spi_bootloader {
            bootloader::validate_spi(spi).map_err(PackError::SpiBootloader)?;
        }
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

    /// [`Self::validate_for`] both architectures, as the OCI image needs.
    pub fn validate(&self) -> Result<(), PackError> {
        self.validate_for(&Arch::ALL)
    }

    /// Validates the tree and returns `arch`'s overlay tree as a flat tar, for a profile's
    /// `overlay.image.tarballPath`, which the imager untars straight into its overlay
    /// folder (`siderolabs/talos:pkg/imager/profile/input.go`, `Extract`). `mtime` stamps
    /// every entry.
    pub fn tree_tar(&self, arch: Arch, mtime: u64) -> Result<Vec<u8>, PackError> {
        self.validate_for(&[arch])?;
        let installer = self
            .installers
            .get(&arch)
            .ok_or(PackError::MissingInstaller(arch.oci_name()))?;
        Ok(tree_tar(self, installer, mtime)?)
    }

    /// Validates the tree and builds the OCI image layout. `mtime` stamps every tar
    /// entry (use `SOURCE_DATE_EPOCH` for reproducible builds); `tag` names the image.
    pub fn image_layout(&self, tag: &str, mtime: u64) -> Result<ImageLayout, PackError> {
        check_tag(tag)?;
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
            let layer = blobs.add(MediaType::ImageLayer, tree_tar(self, installer, mtime)?)?;
            let config = ImageConfigurationBuilder::default()
                .architecture(arch.spec())
                .os(spec::Os::Linux)
                .config(Config::default())
                .rootfs(
                    RootFsBuilder::default()
                        .typ("layers")
                        .diff_ids(vec![layer.digest().to_string()])
                        .build()?,
                )
                .build()?;
            let config = blobs.add(MediaType::ImageConfig, serde_json::to_vec(&config)?)?;
            let manifest = ImageManifestBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::ImageManifest)
                .config(config)
                .layers(vec![layer])
                .build()?;
            let mut descriptor =
                blobs.add(MediaType::ImageManifest, serde_json::to_vec(&manifest)?)?;
            descriptor.set_platform(Some(
                PlatformBuilder::default()
                    .architecture(arch.spec())
                    .os(spec::Os::Linux)
                    .build()?,
            ));
            manifests.insert(arch, descriptor.digest().to_string());
            platform_manifests.push(descriptor);
        }
        let image_index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(platform_manifests.clone())
            .build()?;
        let mut index_descriptor =
            blobs.add(MediaType::ImageIndex, serde_json::to_vec(&image_index)?)?;
        // One annotation only: the map is a HashMap, whose order would vary with more.
        index_descriptor.set_annotations(Some(HashMap::from([(
            REF_NAME_ANNOTATION.to_owned(),
            tag.to_owned(),
        )])));
        let index_digest = index_descriptor.digest().to_string();
        let mut top_entries = vec![index_descriptor];
        top_entries.extend(platform_manifests);
        let top = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(top_entries)
            .build()?;

        let layout_marker = OciLayoutBuilder::default()
            .image_layout_version("1.0.0")
            .build()?;
        let mut files = BTreeMap::new();
        files.insert("oci-layout".to_owned(), serde_json::to_vec(&layout_marker)?);
        files.insert("index.json".to_owned(), serde_json::to_vec(&top)?);
        for (digest, bytes) in blobs.by_digest {
            let hex = digest.trim_start_matches("sha256:");
            files.insert(format!("blobs/sha256/{hex}"), bytes);
        }
        Ok(ImageLayout {
            files,
            index_digest,
            manifests,
        })
    }

    /// Validates the tree and builds the OCI archive (the image layout in a tar).
    pub fn pack(&self, tag: &str, mtime: u64) -> Result<PackedOverlay, PackError> {
        let layout = self.image_layout(tag, mtime)?;
        Ok(PackedOverlay {
            archive: layout.to_archive(mtime)?,
            index_digest: layout.index_digest,
            manifests: layout.manifests,
        })
    }
}

impl ImageLayout {
    /// The layout as one tar: `oci-layout`, `index.json`, then `blobs/sha256/*` by digest.
    pub fn to_archive(&self, mtime: u64) -> Result<Vec<u8>, PackError> {
        let mut archive = TarBuilder::new(mtime);
        for name in ["oci-layout", "index.json"] {
            archive.add_file(name, 0o644, &self.files[name])?;
        }
        archive.add_dirs("blobs/sha256")?;
        for (path, bytes) in &self.files {
            if path.starts_with("blobs/") {
                archive.add_file(path, 0o644, bytes)?;
            }
        }
        Ok(archive.finish()?)
    }

    /// Writes the layout into `dir`, which must be missing or empty: files 0644,
    /// directories 0755.
    pub fn write_dir(&self, dir: &Path) -> Result<(), PackError> {
        let io = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| PackError::Io { what, path, source }
        };
        match fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(PackError::OutputNotEmpty(dir.to_path_buf()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(dir).map_err(io("creating", dir))?;
            }
            Err(_) if dir.exists() => return Err(PackError::OutputNotEmpty(dir.to_path_buf())),
            Err(e) => return Err(io("reading", dir)(e)),
        }
        let blobs = dir.join("blobs/sha256");
        for path in [dir, &dir.join("blobs"), &blobs] {
            if !path.is_dir() {
                fs::create_dir(path).map_err(io("creating", path))?;
            }
            fs::set_permissions(path, fs::Permissions::from_mode(0o755))
                .map_err(io("setting mode 0755 on", path))?;
        }
        for (name, bytes) in &self.files {
            let path = dir.join(name);
            fs::write(&path, bytes).map_err(io("writing", &path))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
                .map_err(io("setting mode 0644 on", &path))?;
        }
        Ok(())
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

    #[test]
    fn tags_follow_the_registry_grammar() {
        for good in ["latest", "v0.1.0", "1.13_rc-1", &"x".repeat(128)] {
            assert!(check_tag(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a:b", "a/b", &"x".repeat(129)] {
            assert!(matches!(check_tag(bad), Err(PackError::BadTag(_))), "{bad}");
        }
    }

    #[test]
    fn format_names_parse() {
        assert_eq!(PackFormat::parse("oci-dir"), Some(PackFormat::OciDir));
        assert_eq!(PackFormat::parse("tree-tar"), Some(PackFormat::TreeTar));
        assert_eq!(
            PackFormat::parse("oci-archive"),
            Some(PackFormat::OciArchive)
        );
        assert_eq!(PackFormat::parse("docker"), None);
    }
}
