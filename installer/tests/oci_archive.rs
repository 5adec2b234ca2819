//! The overlay OCI archive's structure, checked without skopeo or an aarch64 build:
//! every blob is named by its sha256, the index → manifest → config/layer chain is
//! complete, the layers hold the overlay tree, and packing is reproducible.
//! (`aarch64_static_build.rs` has skopeo read the real thing.)

mod common;

use nanopi_m6_installer::oci::{Arch, OverlayTree, PackError, sha256_digest};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
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
        dtbs: [(
            "rk3588s-nanopi-m6.dtb".to_owned(),
            common::testdata_file(testdata, common::DTB_M6_VENDOR),
        )]
        .into(),
        profile: include_bytes!("../profiles/nanopi-m6.yaml").to_vec(),
    }
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
    let mut files = BTreeMap::new();
    let mut stack = vec![out.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(&out)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
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

#[test]
fn the_archive_is_a_complete_two_platform_oci_layout() {
    let Some(testdata) = rockusb_testkit::testdata("oci_archive_layout") else {
        return;
    };
    let tree = tree(&testdata);
    let packed = tree.pack("v1", 0).unwrap();
    let files = untar(&packed.archive);
    assert_eq!(json(&files["oci-layout"])["imageLayoutVersion"], "1.0.0");

    let top = json(&files["index.json"]);
    assert_eq!(top["manifests"].as_array().unwrap().len(), 1);
    let entry = &top["manifests"][0];
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    assert_eq!(entry["digest"], packed.index_digest.as_str());
    let index_bytes = blob(&files, &packed.index_digest);
    assert_eq!(entry["size"].as_u64(), Some(index_bytes.len() as u64));

    let index = json(index_bytes);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for (descriptor, arch) in manifests.iter().zip(Arch::ALL) {
        assert_eq!(descriptor["platform"]["architecture"], arch.oci_name());
        assert_eq!(descriptor["platform"]["os"], "linux");
        let digest = descriptor["digest"].as_str().unwrap();
        assert_eq!(packed.manifests[&arch], digest);
        let manifest = json(blob(&files, digest));
        let config = json(blob(&files, manifest["config"]["digest"].as_str().unwrap()));
        assert_eq!(config["architecture"], arch.oci_name());
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        let layer_digest = layers[0]["digest"].as_str().unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], layer_digest);
        let layer = untar(blob(&files, layer_digest));
        let paths: Vec<&str> = layer.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "artifacts/arm64/dtb/rockchip/rk3588s-nanopi-m6.dtb",
                "artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip.bin",
                "installers/nanopi-m6",
                "profiles/nanopi-m6.yaml",
            ]
        );
        assert_eq!(layer["installers/nanopi-m6"], tree.installers[&arch]);
        assert_eq!(
            layer["artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip.bin"],
            tree.bootloader
        );
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
    let later = tree.pack("latest", 1_700_000_000).unwrap();
    assert_ne!(
        later.manifests, a.manifests,
        "the timestamp must reach the layer digests"
    );
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
}
