//! The overlay image in its three forms, checked the way its consumers read it:
//!
//! - `index.json` resolved as the Talos imager's `ociPath` reader does (top-level
//!   descriptors with a platform; `siderolabs/talos:pkg/imager/profile/input.go`,
//!   `pullFromOCI`), for amd64 and arm64;
//! - `skopeo` reading the `oci-dir` and `oci-archive` outputs for both platforms;
//! - the `tree-tar` listing against the overlay tree, with directories before their files
//!   as the imager's `tarballPath` extraction needs;
//! - every blob named by its sha256, the index → manifest → config/layer chain complete;
//! - two packs of the same inputs byte-identical, through the library and the CLI.
//!
//! `aarch64_static_build.rs` has skopeo read the archive built from the real static
//! installers.

mod common;

use nanopi_m6_installer::oci::{Arch, OverlayTree, PackError, sha256_digest};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The smallest static ELF header for `machine`: no program headers, so no interpreter.
fn static_elf_header(machine: u16) -> Vec<u8> {
    let mut elf = vec![0u8; 64];
    elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
    elf[18..20].copy_from_slice(&machine.to_le_bytes());
    elf[54..56].copy_from_slice(&56u16.to_le_bytes());
    elf
}

fn tree(testdata: &Path) -> OverlayTree {
    OverlayTree {
        installers: Arch::ALL
            .into_iter()
            .map(|arch| (arch, static_elf_header(arch.elf_machine())))
            .collect(),
        bootloader: common::assemble_bootloader(testdata),
        spi_bootloader: None,
        dtbs: [(
            "rk3588s-nanopi-m6.dtb".to_owned(),
            common::testdata_file(testdata, common::DTB_M6_VENDOR),
        )]
        .into(),
        profile: include_bytes!("../profiles/nanopi-m6.yaml").to_vec(),
    }
}

/// Every regular file below `root`, by path relative to it.
fn files_below(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Unpacks a tar with GNU tar and returns its regular files by path.
fn untar(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("a.tar");
    std::fs::write(&archive, bytes).unwrap();
    let out = work.path().join("x");
    std::fs::create_dir(&out).unwrap();
    rockusb_testkit::run(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&out),
    );
    files_below(&out)
}

fn blob<'a>(files: &'a BTreeMap<String, Vec<u8>>, digest: &str) -> &'a [u8] {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let bytes = files
        .get(&format!("blobs/sha256/{hex}"))
        .unwrap_or_else(|| panic!("blob {digest} missing"));
    assert_eq!(
        sha256_digest(bytes),
        digest,
        "blob content does not match its name"
    );
    bytes
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// What the imager's `pullFromOCI` does with an OCI layout: walk the descriptors of
/// `index.json` itself, skip those without a platform, take the first linux/`arch` one,
/// and read that image. Returns its one layer, unpacked.
fn resolve_like_the_imager(
    files: &BTreeMap<String, Vec<u8>>,
    arch: &str,
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let top = json(&files["index.json"]);
    for descriptor in top["manifests"].as_array().unwrap() {
        let Some(platform) = descriptor.get("platform") else {
            continue;
        };
        if platform["os"] == "linux" && platform["architecture"] == arch {
            let manifest = json(blob(files, descriptor["digest"].as_str().unwrap()));
            let layers = manifest["layers"].as_array().unwrap();
            assert_eq!(layers.len(), 1);
            return Ok(untar(blob(files, layers[0]["digest"].as_str().unwrap())));
        }
    }
    Err(format!("no OCI image found for {arch}"))
}

const TREE_FILES: [&str; 4] = [
    "artifacts/arm64/dtb/rockchip/rk3588s-nanopi-m6.dtb",
    "artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip.bin",
    "installers/nanopi-m6",
    "profiles/nanopi-m6.yaml",
];

#[test]
fn the_archive_is_a_complete_two_platform_oci_layout() {
    let Some(testdata) = rockusb_testkit::testdata("oci_archive_layout") else {
        return;
    };
    let tree = tree(&testdata);
    let packed = tree.pack("v1", 0).unwrap();
    let files = untar(&packed.archive);
    assert_eq!(json(&files["oci-layout"])["imageLayoutVersion"], "1.0.0");

    // index.json: the tagged multi-platform index, then each platform's manifest.
    let top = json(&files["index.json"]);
    let entries = top["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{top}");
    let entry = &entries[0];
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    assert!(entry.get("platform").is_none());
    assert_eq!(entry["digest"], packed.index_digest.as_str());
    let index_bytes = blob(&files, &packed.index_digest);
    assert_eq!(entry["size"].as_u64(), Some(index_bytes.len() as u64));

    let index = json(index_bytes);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    assert_eq!(
        &entries[1..],
        &manifests[..],
        "index.json must list the same platform descriptors as the image index"
    );
    for (descriptor, arch) in manifests.iter().zip(Arch::ALL) {
        assert_eq!(descriptor["platform"]["architecture"], arch.oci_name());
        assert_eq!(descriptor["platform"]["os"], "linux");
        let digest = descriptor["digest"].as_str().unwrap();
        assert_eq!(packed.manifests[&arch], digest);
        let manifest = json(blob(&files, digest));
        assert_eq!(manifest["schemaVersion"], 2);
        let config = json(blob(&files, manifest["config"]["digest"].as_str().unwrap()));
        assert_eq!(config["architecture"], arch.oci_name());
        assert_eq!(config["os"], "linux");
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(
            layers[0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar"
        );
        let layer_digest = layers[0]["digest"].as_str().unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], layer_digest);
        let layer = untar(blob(&files, layer_digest));
        let paths: Vec<&str> = layer.keys().map(String::as_str).collect();
        assert_eq!(paths, TREE_FILES);
        assert_eq!(layer["installers/nanopi-m6"], tree.installers[&arch]);
        assert_eq!(
            layer["artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip.bin"],
            tree.bootloader
        );
    }
    // Nothing else in the layout.
    let blobs = files.keys().filter(|k| k.starts_with("blobs/")).count();
    assert_eq!(files.len(), 2 + blobs);
    assert_eq!(blobs, 7, "2 layers, 2 configs, 2 manifests, 1 index");
}

#[test]
fn index_json_resolves_like_the_imager_for_amd64_and_arm64() {
    let Some(testdata) = rockusb_testkit::testdata("oci_imager_resolution") else {
        return;
    };
    let tree = tree(&testdata);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("overlay");
    tree.image_layout("v1", 0).unwrap().write_dir(&dir).unwrap();
    // Read it back from disk, as the imager's ociPath does.
    let files = files_below(&dir);
    for arch in Arch::ALL {
        let layer = resolve_like_the_imager(&files, arch.oci_name()).unwrap();
        assert_eq!(layer["installers/nanopi-m6"], tree.installers[&arch]);
        let paths: Vec<&str> = layer.keys().map(String::as_str).collect();
        assert_eq!(paths, TREE_FILES);
    }
    assert_eq!(
        resolve_like_the_imager(&files, "riscv64").unwrap_err(),
        "no OCI image found for riscv64"
    );
    // The earlier layout (only the nested index in index.json) is what the imager rejected.
    let mut nested_only = files.clone();
    let mut top = json(&files["index.json"]);
    top["manifests"].as_array_mut().unwrap().truncate(1);
    nested_only.insert("index.json".into(), serde_json::to_vec(&top).unwrap());
    assert_eq!(
        resolve_like_the_imager(&nested_only, "arm64").unwrap_err(),
        "no OCI image found for arm64"
    );
}

fn skopeo(arch: &str, args: &[&str]) -> Vec<u8> {
    rockusb_testkit::run(
        Command::new("skopeo")
            .args(["--override-os", "linux", "--override-arch", arch])
            .args(args),
    )
}

/// Copies `reference` for `arch` into a `dir:` layout and returns its one layer, unpacked.
fn skopeo_layer(arch: &str, reference: &str) -> BTreeMap<String, Vec<u8>> {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("image");
    skopeo(
        arch,
        &["copy", reference, &format!("dir:{}", dir.display())],
    );
    let manifest = json(&std::fs::read(dir.join("manifest.json")).unwrap());
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let digest = layers[0]["digest"].as_str().unwrap();
    untar(&std::fs::read(dir.join(digest.trim_start_matches("sha256:"))).unwrap())
}

#[test]
fn skopeo_reads_the_oci_dir_and_the_archive_for_both_platforms() {
    let test = "skopeo_oci_dir_and_archive";
    let Some(testdata) = rockusb_testkit::testdata(test) else {
        return;
    };
    if !rockusb_testkit::tool(test, "skopeo", "skopeo") {
        return;
    }
    let tree = tree(&testdata);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("overlay");
    let archive = work.path().join("overlay.oci.tar");
    let layout = tree.image_layout("v1", 0).unwrap();
    layout.write_dir(&dir).unwrap();
    std::fs::write(&archive, layout.to_archive(0).unwrap()).unwrap();

    for reference in [
        format!("oci:{}:v1", dir.display()),
        format!("oci-archive:{}:v1", archive.display()),
    ] {
        let raw = json(&skopeo("amd64", &["inspect", "--raw", &reference]));
        assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
        for arch in Arch::ALL {
            let name = arch.oci_name();
            let inspect = json(&skopeo(name, &["inspect", &reference]));
            assert_eq!(inspect["Architecture"], name, "{reference}");
            assert_eq!(inspect["Os"], "linux");
            // skopeo reports the digest of what the reference names: the tagged index.
            assert_eq!(inspect["Digest"], layout.index_digest.as_str());
            let layer = skopeo_layer(name, &reference);
            let paths: Vec<&str> = layer.keys().map(String::as_str).collect();
            assert_eq!(paths, TREE_FILES, "{reference} {name}");
            assert_eq!(layer["installers/nanopi-m6"], tree.installers[&arch]);
        }
    }
    // `copy --all` (the registry push) carries the multi-platform index; with
    // --preserve-digests nothing is recompressed, so the copy is ours unchanged.
    let copy = work.path().join("copy");
    skopeo(
        "amd64",
        &[
            "copy",
            "--all",
            "--preserve-digests",
            &format!("oci:{}:v1", dir.display()),
            &format!("oci:{}:v1", copy.display()),
        ],
    );
    let copied = files_below(&copy);
    let top = json(&copied["index.json"]);
    assert_eq!(top["manifests"][0]["digest"], layout.index_digest.as_str());
    for (path, bytes) in &copied {
        if path.starts_with("blobs/") {
            assert_eq!(Some(bytes), layout.files.get(path), "{path}");
        }
    }
}

/// `tar -tv` as `(mode string, owner, path)`.
fn tar_listing(tar: &[u8]) -> Vec<(String, String, String)> {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("t.tar");
    std::fs::write(&file, tar).unwrap();
    let listing = common::text(&rockusb_testkit::run(
        Command::new("tar")
            .args(["--numeric-owner", "-tvf"])
            .arg(&file),
    ));
    listing
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (
                fields[0].to_owned(),
                fields[1].to_owned(),
                fields.last().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_tree_tar_lists_exactly_the_overlay_tree() {
    let Some(testdata) = rockusb_testkit::testdata("tree_tar_listing") else {
        return;
    };
    let mut tree = tree(&testdata);
    let spi = common::assemble_spi_image(&testdata);
    tree.spi_bootloader = Some(spi.clone());
    for arch in Arch::ALL {
        let tar = tree.tree_tar(arch, 0).unwrap();
        let dir = |p: &str| ("drwxr-xr-x".to_owned(), "0/0".to_owned(), p.to_owned());
        let file = |p: &str| ("-rw-r--r--".to_owned(), "0/0".to_owned(), p.to_owned());
        let expected = vec![
            dir("artifacts/"),
            dir("artifacts/arm64/"),
            dir("artifacts/arm64/dtb/"),
            dir("artifacts/arm64/dtb/rockchip/"),
            file("artifacts/arm64/dtb/rockchip/rk3588s-nanopi-m6.dtb"),
            dir("artifacts/arm64/u-boot/"),
            dir("artifacts/arm64/u-boot/nanopi-m6/"),
            file("artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip.bin"),
            file("artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip-spi.bin"),
            dir("installers/"),
            (
                "-rwxr-xr-x".to_owned(),
                "0/0".to_owned(),
                "installers/nanopi-m6".to_owned(),
            ),
            dir("profiles/"),
            file("profiles/nanopi-m6.yaml"),
        ];
        assert_eq!(tar_listing(&tar), expected, "{arch:?}");
        let files = untar(&tar);
        assert_eq!(files["installers/nanopi-m6"], tree.installers[&arch]);
        assert_eq!(
            files["artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip-spi.bin"],
            spi
        );
        assert_eq!(
            files["profiles/nanopi-m6.yaml"],
            include_bytes!("../profiles/nanopi-m6.yaml")
        );
        // The tree tar is the platform's image layer, byte for byte.
        let packed = tree.image_layout("v1", 0).unwrap();
        let manifest = json(blob(&packed.files, &packed.manifests[&arch]));
        let layer = blob(
            &packed.files,
            manifest["layers"][0]["digest"].as_str().unwrap(),
        );
        assert_eq!(layer, &tar[..]);
    }
}

#[test]
fn packing_is_reproducible_and_stamped_with_the_given_time() {
    let Some(testdata) = rockusb_testkit::testdata("oci_archive_reproducible") else {
        return;
    };
    let tree = tree(&testdata);
    let a = tree.pack("latest", 0).unwrap();
    let b = tree.pack("latest", 0).unwrap();
    assert_eq!(a.archive, b.archive);
    assert_eq!(
        tree.tree_tar(Arch::Arm64, 0).unwrap(),
        tree.tree_tar(Arch::Arm64, 0).unwrap()
    );
    let work = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        tree.image_layout("latest", 0)
            .unwrap()
            .write_dir(&work.path().join(name))
            .unwrap();
    }
    assert_eq!(
        files_below(&work.path().join("a")),
        files_below(&work.path().join("b"))
    );
    let later = tree.pack("latest", 1_700_000_000).unwrap();
    assert_ne!(
        later.manifests, a.manifests,
        "the timestamp must reach the layer digests"
    );
}

/// The inputs of `nanopi-m6-overlay pack` as files.
struct PackInputs {
    _work: tempfile::TempDir,
    args: Vec<String>,
    root: PathBuf,
}

fn pack_inputs(testdata: &Path) -> PackInputs {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().to_path_buf();
    let write = |name: &str, bytes: &[u8]| {
        let path = root.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let args = vec![
        "--installer-amd64".into(),
        write("amd64", &static_elf_header(Arch::Amd64.elf_machine())),
        "--installer-arm64".into(),
        write("arm64", &static_elf_header(Arch::Arm64.elf_machine())),
        "--bootloader".into(),
        write(
            "u-boot-rockchip.bin",
            &common::assemble_bootloader(testdata),
        ),
        "--spi-bootloader".into(),
        write(
            "u-boot-rockchip-spi.bin",
            &common::assemble_spi_image(testdata),
        ),
        "--dtb".into(),
        write(
            "rk3588s-nanopi-m6.dtb",
            &common::testdata_file(testdata, common::DTB_M6_VENDOR),
        ),
        "--profile".into(),
        write(
            "nanopi-m6.yaml",
            include_bytes!("../profiles/nanopi-m6.yaml"),
        ),
    ];
    PackInputs {
        _work: work,
        args,
        root,
    }
}

fn run_pack(inputs: &PackInputs, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nanopi-m6-overlay"))
        .arg("pack")
        .args(&inputs.args)
        .args(extra)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap()
}

#[test]
fn two_cli_packs_of_each_format_are_byte_identical() {
    let Some(testdata) = rockusb_testkit::testdata("cli_pack_reproducible") else {
        return;
    };
    let inputs = pack_inputs(&testdata);
    let read = |path: &Path| {
        if path.is_dir() {
            files_below(path)
        } else {
            [(String::new(), std::fs::read(path).unwrap())].into()
        }
    };
    for format in ["oci-archive", "oci-dir", "tree-tar"] {
        let outputs: Vec<_> = ["first", "second"]
            .into_iter()
            .map(|name| {
                let output = inputs.root.join(format!("{format}-{name}"));
                let out = run_pack(
                    &inputs,
                    &[
                        "--format",
                        format,
                        "--output",
                        output.to_str().unwrap(),
                        "--tag",
                        "v1",
                        "--arch",
                        "arm64",
                    ][..if format == "tree-tar" { 8 } else { 6 }],
                );
                assert!(
                    out.status.success(),
                    "{format}: {}",
                    common::text(&out.stderr)
                );
                read(&output)
            })
            .collect();
        assert_eq!(outputs[0], outputs[1], "{format}");
        assert!(!outputs[0].is_empty());
    }
    // The SPI image travels in the tree.
    let tree = untar(&std::fs::read(inputs.root.join("tree-tar-first")).unwrap());
    assert!(tree.contains_key("artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip-spi.bin"));
}

#[test]
fn the_cli_explains_bad_pack_requests() {
    let Some(testdata) = rockusb_testkit::testdata("cli_pack_refusals") else {
        return;
    };
    let inputs = pack_inputs(&testdata);
    let out_path = inputs.root.join("out");
    let out = out_path.to_str().unwrap();
    for (extra, expect) in [
        (
            vec!["--format", "docker", "--output", out],
            "unknown --format \"docker\"; use oci-archive, oci-dir or tree-tar",
        ),
        (
            vec!["--arch", "arm64", "--output", out],
            "--arch applies to --format tree-tar only",
        ),
        (
            vec!["--format", "tree-tar", "--arch", "mips", "--output", out],
            "unknown --arch \"mips\"",
        ),
        (
            vec!["--tag", "a/b", "--output", out],
            "tag \"a/b\" is not a valid image tag",
        ),
    ] {
        let result = run_pack(&inputs, &extra);
        assert_eq!(result.status.code(), Some(1), "{extra:?}");
        let stderr = common::text(&result.stderr);
        assert!(stderr.contains(expect), "{extra:?}: {stderr}");
    }
    assert!(!out_path.exists(), "a refused pack wrote output");
}

#[test]
fn broken_inputs_are_refused_before_packing() {
    let Some(testdata) = rockusb_testkit::testdata("oci_archive_refusals") else {
        return;
    };
    let good = tree(&testdata);

    // The same header plus one PT_INTERP program header: a dynamically linked binary.
    let mut dynamic_elf = static_elf_header(Arch::Amd64.elf_machine());
    dynamic_elf[32..40].copy_from_slice(&64u64.to_le_bytes());
    dynamic_elf[56..58].copy_from_slice(&1u16.to_le_bytes());
    let mut interp = vec![0u8; 56];
    interp[..4].copy_from_slice(&3u32.to_le_bytes());
    dynamic_elf.extend_from_slice(&interp);
    let mut dynamic = good.clone();
    dynamic.installers.insert(Arch::Amd64, dynamic_elf);
    assert!(matches!(
        dynamic.pack("x", 0),
        Err(PackError::DynamicInstaller("amd64"))
    ));

    let mut swapped = good.clone();
    swapped
        .installers
        .insert(Arch::Arm64, static_elf_header(Arch::Amd64.elf_machine()));
    assert!(matches!(
        swapped.pack("x", 0),
        Err(PackError::WrongInstallerArch { arch: "arm64", .. })
    ));

    let mut other_board = good.clone();
    other_board.dtbs = [(
        "rk3588s-nanopi-m6.dtb".to_owned(),
        common::testdata_file(&testdata, common::DTB_R6S),
    )]
    .into();
    assert!(matches!(
        other_board.pack("x", 0),
        Err(PackError::Dtb { .. })
    ));

    let mut odd_name = good.clone();
    let dtb = good.dtbs.values().next().unwrap().clone();
    odd_name.dtbs = [("board.dtb".to_owned(), dtb)].into();
    assert!(matches!(
        odd_name.pack("x", 0),
        Err(PackError::UnknownDtbName(_))
    ));

    let mut sd_boot = good.clone();
    sd_boot.profile = String::from_utf8(good.profile.clone())
        .unwrap()
        .replace("grub", "sd-boot")
        .into_bytes();
    assert!(matches!(sd_boot.pack("x", 0), Err(PackError::Profile(_))));

    let mut oversized = good.clone();
    oversized.bootloader.resize(10_454_017, 0xFF);
    assert!(matches!(
        oversized.pack("x", 0),
        Err(PackError::Bootloader(_))
    ));

    // The SPI image must carry its ID block at 0x8000 and fit the 16 MiB SPI-NOR; the
    // eMMC image in its place is refused by name.
    let mut emmc_as_spi = good.clone();
    emmc_as_spi.spi_bootloader = Some(good.bootloader.clone());
    let err = emmc_as_spi.pack("x", 0).unwrap_err();
    assert!(matches!(err, PackError::SpiBootloader(_)), "{err}");
    assert!(err.to_string().contains("u-boot-rockchip-spi.bin"), "{err}");
    let mut huge_spi = good.clone();
    let mut spi = common::assemble_spi_image(&testdata);
    spi.resize(16 * 1024 * 1024 + 1, 0xFF);
    huge_spi.spi_bootloader = Some(spi);
    let err = huge_spi.pack("x", 0).unwrap_err();
    assert!(err.to_string().contains("SPI-NOR"), "{err}");

    assert!(matches!(good.pack("a:b", 0), Err(PackError::BadTag(_))));
    let mut only_arm64 = good.clone();
    only_arm64.installers.remove(&Arch::Amd64);
    assert!(matches!(
        only_arm64.pack("x", 0),
        Err(PackError::MissingInstaller("amd64"))
    ));
    // The tree tar needs only its own platform's installer.
    assert!(only_arm64.tree_tar(Arch::Arm64, 0).is_ok());
    assert!(only_arm64.tree_tar(Arch::Amd64, 0).is_err());

    // An OCI directory is only written into a missing or empty directory.
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("stray"), b"x").unwrap();
    let layout = good.image_layout("x", 0).unwrap();
    assert!(matches!(
        layout.write_dir(work.path()),
        Err(PackError::OutputNotEmpty(_))
    ));
}
