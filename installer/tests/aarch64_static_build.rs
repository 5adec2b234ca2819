//! Builds the statically linked installers for aarch64 and x86_64 with
//! `build-overlay.sh`, runs the aarch64 one under `qemu-aarch64-static` through the same
//! protocol and install checks as the native binary, and has Debian's `skopeo` inspect
//! the packed overlay image (archive and OCI directory) for linux/amd64 and linux/arm64.
//!
//! Needs: Debian's `rustc-web` with `libstd-rust-web-dev:arm64`, `gcc-aarch64-linux-gnu`,
//! `qemu-user-static`, `skopeo`, `gdisk`, and ../shared/testdata. The build goes to
//! `target/nanopi-m6-cross` so it never waits on the lock of the `cargo test` running it.

mod common;

use common::Installer;
use nanopi_m6_installer::oci::{Arch, elf_machine, elf_needs_interpreter};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const AARCH64_STD: &str = "/usr/lib/rustlib/aarch64-unknown-linux-gnu/lib";
/// The workspace's quick profile for binaries checked end to end (opt-level 0).
const PROFILE: &str = "cross-check";

struct Built {
    amd64: PathBuf,
    arm64: PathBuf,
    overlay: PathBuf,
    /// The same overlay as an OCI layout directory and as the arm64 tree tar.
    overlay_dir: PathBuf,
    tree_tar_arm64: PathBuf,
    bootloader: Vec<u8>,
    spi_bootloader: Vec<u8>,
    dtb: Vec<u8>,
    _work: tempfile::TempDir,
}

/// Outcome of the one shared build: `None` when a prerequisite is missing.
static BUILD: OnceLock<Option<Built>> = OnceLock::new();

fn prerequisites(test: &str) -> Option<PathBuf> {
    let testdata = rockusb_testkit::testdata(test)?;
    let tools = [
        ("qemu-aarch64-static", "qemu-user-static"),
        ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
        ("skopeo", "skopeo"),
        ("sgdisk", "gdisk"),
    ];
    for (tool, package) in tools {
        if !rockusb_testkit::tool(test, tool, package) {
            return None;
        }
    }
    if !Path::new("/usr/bin/rustc").is_file() || !Path::new(AARCH64_STD).is_dir() {
        rockusb_testkit::missing(
            test,
            "Debian's rustc with the arm64 standard library",
            "dpkg --add-architecture arm64; apt-get update; apt-get install -y rustc-web libstd-rust-web-dev:arm64",
        );
        return None;
    }
    Some(testdata)
}

fn build(testdata: &Path) -> Built {
    let work = tempfile::tempdir().unwrap();
    let bootloader = common::assemble_bootloader(testdata);
    let dtb = common::testdata_file(testdata, common::DTB_M6_VENDOR);
    let spi_bootloader = common::assemble_spi_image(testdata);
    let bootloader_file = work.path().join("u-boot-rockchip.bin");
    let spi_file = work.path().join("u-boot-rockchip-spi.bin");
    let dtb_file = work.path().join("rk3588s-nanopi-m6.dtb");
    std::fs::write(&bootloader_file, &bootloader).unwrap();
    std::fs::write(&spi_file, &spi_bootloader).unwrap();
    std::fs::write(&dtb_file, &dtb).unwrap();
    let overlay = work.path().join("nanopi-m6-overlay.oci.tar");
    let target_dir = rockusb_testkit::workspace_root().join("target/nanopi-m6-cross");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build-overlay.sh");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    rockusb_testkit::run(
        Command::new("bash")
            .arg(&script)
            .arg("--bootloader")
            .arg(&bootloader_file)
            .arg("--dtb")
            .arg(&dtb_file)
            .arg("--spi-bootloader")
            .arg(&spi_file)
            .arg("--output")
            .arg(&overlay)
            .args(["--tag", "test"])
            .env("CARGO", cargo)
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("SOURCE_DATE_EPOCH", "0")
            // Built as quickly as possible: the tests check what the binaries do, not speed.
            .env("OVERLAY_PROFILE", PROFILE)
            .env_remove("RUSTFLAGS")
            .env_remove("RUSTC"),
    );
    let amd64 = target_dir.join(format!("x86_64-unknown-linux-gnu/{PROFILE}/nanopi-m6"));
    let arm64 = target_dir.join(format!("aarch64-unknown-linux-gnu/{PROFILE}/nanopi-m6"));
    // The other two formats from the same static binaries, with the packer just built.
    let packer = target_dir.join(format!(
        "x86_64-unknown-linux-gnu/{PROFILE}/nanopi-m6-overlay"
    ));
    let overlay_dir = work.path().join("overlay-oci");
    let tree_tar_arm64 = work.path().join("overlay-tree-arm64.tar");
    for (format, output) in [("oci-dir", &overlay_dir), ("tree-tar", &tree_tar_arm64)] {
        let mut command = Command::new(&packer);
        command
            .arg("pack")
            .arg("--installer-amd64")
            .arg(&amd64)
            .arg("--installer-arm64")
            .arg(&arm64)
            .arg("--bootloader")
            .arg(&bootloader_file)
            .arg("--spi-bootloader")
            .arg(&spi_file)
            .arg("--dtb")
            .arg(&dtb_file)
            .arg("--profile")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/nanopi-m6.yaml"))
            .args(["--tag", "test", "--format", format])
            .arg("--output")
            .arg(output)
            .env("SOURCE_DATE_EPOCH", "0")
            // Built as quickly as possible: the tests check what the binaries do, not speed.
            .env("OVERLAY_PROFILE", PROFILE);
        if format == "tree-tar" {
            command.args(["--arch", "arm64"]);
        }
        rockusb_testkit::run(&mut command);
    }
    Built {
        amd64,
        arm64,
        overlay,
        overlay_dir,
        tree_tar_arm64,
        bootloader,
        spi_bootloader,
        dtb,
        _work: work,
    }
}

fn built(test: &str) -> Option<(&'static Built, PathBuf)> {
    let testdata = prerequisites(test)?;
    let built = BUILD.get_or_init(|| Some(build(&testdata))).as_ref()?;
    Some((built, testdata))
}

fn qemu_installer(built: &Built) -> Installer {
    Installer {
        program: built.arm64.clone(),
        emulator: Some(PathBuf::from("qemu-aarch64-static")),
    }
}

#[test]
fn both_installers_are_static_elf_binaries_for_their_architecture() {
    let Some((built, _)) = built("static_installers") else {
        return;
    };
    for (path, arch) in [(&built.amd64, Arch::Amd64), (&built.arm64, Arch::Arm64)] {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(
            elf_machine(&bytes),
            Some(arch.elf_machine()),
            "{}",
            path.display()
        );
        assert_eq!(
            elf_needs_interpreter(&bytes),
            Some(false),
            "{} is dynamically linked",
            path.display()
        );
    }
}

#[test]
fn aarch64_installer_speaks_the_protocol_under_qemu() {
    let Some((built, _)) = built("aarch64_protocol_under_qemu") else {
        return;
    };
    common::check_protocol(&qemu_installer(built));
}

#[test]
fn aarch64_installer_installs_under_qemu() {
    let Some((built, testdata)) = built("aarch64_install_under_qemu") else {
        return;
    };
    common::check_install(&qemu_installer(built), &testdata);
}

#[test]
fn static_x86_64_installer_speaks_the_protocol() {
    let Some((built, testdata)) = built("static_x86_64_protocol") else {
        return;
    };
    let installer = Installer {
        program: built.amd64.clone(),
        emulator: None,
    };
    common::check_protocol(&installer);
    common::check_install_on_talos_image(&installer, &testdata);
}

fn skopeo(arch: &str, args: &[&str]) -> Vec<u8> {
    rockusb_testkit::run(
        Command::new("skopeo")
            .args(["--override-os", "linux", "--override-arch", arch])
            .args(args),
    )
}

/// Lists the entries of a tar file with GNU tar, as `(type, path)`.
fn tar_entries(tar: &Path) -> Vec<(char, String)> {
    let listing = common::text(&rockusb_testkit::run(
        Command::new("tar").arg("-tvf").arg(tar),
    ));
    listing
        .lines()
        .map(|line| {
            let kind = line.chars().next().unwrap();
            let path = line
                .rsplit(' ')
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
            (kind, path)
        })
        .collect()
}

const OVERLAY_FILES: [&str; 5] = [
    "artifacts/arm64/dtb/rockchip/rk3588s-nanopi-m6.dtb",
    "artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip-spi.bin",
    "artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip.bin",
    "installers/nanopi-m6",
    "profiles/nanopi-m6.yaml",
];

#[test]
fn skopeo_accepts_the_overlay_archive_for_amd64_and_arm64_with_exactly_the_overlay_files() {
    let Some((built, _)) = built("skopeo_overlay_image") else {
        return;
    };
    check_with_skopeo(
        built,
        &format!("oci-archive:{}:test", built.overlay.display()),
    );
}

#[test]
fn skopeo_accepts_the_overlay_oci_dir_for_amd64_and_arm64() {
    let Some((built, _)) = built("skopeo_overlay_oci_dir") else {
        return;
    };
    check_with_skopeo(built, &format!("oci:{}:test", built.overlay_dir.display()));
}

#[test]
fn the_arm64_tree_tar_holds_the_arm64_installer_and_it_runs() {
    let Some((built, _)) = built("tree_tar_arm64") else {
        return;
    };
    let files: Vec<String> = tar_entries(&built.tree_tar_arm64)
        .into_iter()
        .filter(|(kind, _)| *kind == '-')
        .map(|(_, path)| path)
        .collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(sorted, OVERLAY_FILES);
    let root = tempfile::tempdir().unwrap();
    rockusb_testkit::run(
        Command::new("tar")
            .arg("-xf")
            .arg(&built.tree_tar_arm64)
            .arg("-C")
            .arg(root.path()),
    );
    let installer = root.path().join("installers/nanopi-m6");
    assert_eq!(
        std::fs::read(&installer).unwrap(),
        std::fs::read(&built.arm64).unwrap()
    );
    common::check_get_options_empty_map(&Installer {
        program: installer,
        emulator: Some(PathBuf::from("qemu-aarch64-static")),
    });
}

fn check_with_skopeo(built: &Built, archive: &str) {
    let raw: serde_json::Value =
        serde_json::from_slice(&skopeo("amd64", &["inspect", "--raw", archive])).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let platforms: Vec<String> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    for (arch, binary) in [("amd64", &built.amd64), ("arm64", &built.arm64)] {
        let inspect: serde_json::Value =
            serde_json::from_slice(&skopeo(arch, &["inspect", archive])).unwrap();
        assert_eq!(inspect["Architecture"], arch);
        assert_eq!(inspect["Os"], "linux");
        assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);

        // Copy the platform's image out and read its one layer.
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("image");
        skopeo(arch, &["copy", archive, &format!("dir:{}", dir.display())]);
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
        let layer = dir.join(layer_digest.trim_start_matches("sha256:"));
        let files: Vec<String> = tar_entries(&layer)
            .into_iter()
            .filter(|(kind, _)| *kind == '-')
            .map(|(_, path)| path)
            .collect();
        let mut sorted = files.clone();
        sorted.sort();
        assert_eq!(sorted, OVERLAY_FILES);
        let root = out.path().join("root");
        std::fs::create_dir(&root).unwrap();
        rockusb_testkit::run(
            Command::new("tar")
                .arg("-xf")
                .arg(&layer)
                .arg("-C")
                .arg(&root),
        );
        let read = |p: &str| std::fs::read(root.join(p)).unwrap();
        assert_eq!(
            read("installers/nanopi-m6"),
            std::fs::read(binary).unwrap(),
            "{arch} installer"
        );
        assert_eq!(
            read("artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip.bin"),
            built.bootloader
        );
        assert_eq!(
            read("artifacts/arm64/u-boot/nanopi-m6/u-boot-rockchip-spi.bin"),
            built.spi_bootloader
        );
        assert_eq!(
            read("artifacts/arm64/dtb/rockchip/rk3588s-nanopi-m6.dtb"),
            built.dtb
        );
        assert_eq!(
            read("profiles/nanopi-m6.yaml"),
            include_bytes!("../profiles/nanopi-m6.yaml")
        );

        // The extracted installer runs: natively for amd64, under qemu for arm64.
        let installer = Installer {
            program: root.join("installers/nanopi-m6"),
            emulator: (arch == "arm64").then(|| PathBuf::from("qemu-aarch64-static")),
        };
        common::check_get_options_empty_map(&installer);
    }
}
