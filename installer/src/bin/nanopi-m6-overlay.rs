//! `nanopi-m6-overlay`: build-time companion of the `nanopi-m6` installer.
//!
//! - `check-dtb FILE...` runs the DTB gate on each file.
//! - `pack ...` validates the overlay inputs and writes the overlay image: an OCI archive,
//!   an OCI layout directory, or one platform's overlay tree as a flat tar.

#![forbid(unsafe_code)]

use nanopi_m6_installer::dtb_gate;
use nanopi_m6_installer::error_chain;
use nanopi_m6_installer::oci::{Arch, OverlayTree, PackFormat};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage:
  nanopi-m6-overlay check-dtb FILE.dtb...
  nanopi-m6-overlay pack --installer-amd64 FILE --installer-arm64 FILE
                         --bootloader u-boot-rockchip.bin [--spi-bootloader u-boot-rockchip-spi.bin]
                         --dtb FILE.dtb [--dtb FILE.dtb] --profile nanopi-m6.yaml
                         --output PATH [--format oci-archive|oci-dir|tree-tar] [--tag TAG]
                         [--arch amd64|arm64]

formats:
  oci-archive  (default) the OCI image layout in one tar, for both platforms; publish it with
               skopeo copy --all oci-archive:PATH:TAG docker://REGISTRY/IMAGE:TAG
  oci-dir      the same layout unpacked into the directory PATH (missing or empty), for a
               profile's overlay.image.ociPath, or skopeo's oci:PATH:TAG
  tree-tar     the overlay tree (installers/, artifacts/, profiles/) of one platform as a
               flat tar, for a profile's overlay.image.tarballPath; --arch picks the platform
               (default: this machine's), and only that platform's installer is needed

pack stamps every entry with SOURCE_DATE_EPOCH (default 0), so equal inputs give identical
bytes.";

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn check_dtbs(files: &[String]) -> Result<(), String> {
    if files.is_empty() {
        return Err(format!("check-dtb needs at least one file\n{USAGE}"));
    }
    let mut failures = 0;
    for file in files {
        match read(Path::new(file)).and_then(|b| dtb_gate::check(&b).map_err(|e| e.to_string())) {
            Ok(accepted) => {
                println!(
                    "{file}: OK, {} ({})",
                    accepted.model.as_deref().unwrap_or("no model"),
                    accepted.compatible.join(", ")
                );
                for warning in &accepted.warnings {
                    println!("{file}: warning: {warning}");
                }
            }
            Err(err) => {
                eprintln!("{file}: {err}");
                failures += 1;
            }
        }
    }
    if failures == 0 {
        Ok(())
    } else {
        Err(format!(
            "{failures} of {} DTBs failed the gate",
            files.len()
        ))
    }
}

fn pack(args: &[String]) -> Result<(), String> {
    let mut tree = OverlayTree::default();
    let mut output: Option<PathBuf> = None;
    let mut profile: Option<PathBuf> = None;
    let mut bootloader: Option<PathBuf> = None;
    let mut spi_bootloader: Option<PathBuf> = None;
    let mut tag = "latest".to_owned();
    let mut format = PackFormat::OciArchive;
    let mut arch: Option<Arch> = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--installer-amd64" | "--installer-arm64" => {
                let arch = Arch::parse(flag.trim_start_matches("--installer-"))
                    .ok_or_else(|| format!("unknown architecture in {flag}"))?;
                tree.installers.insert(arch, read(Path::new(value))?);
            }
            "--bootloader" => bootloader = Some(PathBuf::from(value)),
            "--spi-bootloader" => spi_bootloader = Some(PathBuf::from(value)),
            "--format" => {
                format = PackFormat::parse(value).ok_or_else(|| {
                    format!("unknown --format {value:?}; use {}", PackFormat::NAMES)
                })?;
            }
            "--arch" => {
                arch = Some(
                    Arch::parse(value)
                        .ok_or_else(|| format!("unknown --arch {value:?}; use amd64 or arm64"))?,
                );
            }
            "--dtb" => {
                let path = Path::new(value);
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| format!("{value} has no usable file name"))?;
                tree.dtbs.insert(name.to_owned(), read(path)?);
            }
            "--profile" => profile = Some(PathBuf::from(value)),
            "--output" => output = Some(PathBuf::from(value)),
            "--tag" => tag = value.clone(),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let need =
        |v: Option<PathBuf>, flag: &str| v.ok_or_else(|| format!("pack needs {flag}\n{USAGE}"));
    tree.bootloader = read(&need(bootloader, "--bootloader")?)?;
    tree.spi_bootloader = spi_bootloader.as_deref().map(read).transpose()?;
    tree.profile = read(&need(profile, "--profile")?)?;
    let output = need(output, "--output")?;
    if arch.is_some() && format != PackFormat::TreeTar {
        return Err(
            "--arch applies to --format tree-tar only; the OCI formats carry both platforms"
                .to_owned(),
        );
    }
    let mtime = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("SOURCE_DATE_EPOCH {text:?} is not a number of seconds"))?,
        Err(_) => 0,
    };
    // The gate refuses at validation below; what it says without refusing is said here.
    for (name, dtb) in &tree.dtbs {
        if let Ok(accepted) = dtb_gate::check(dtb) {
            for warning in &accepted.warnings {
                eprintln!("warning: {name}: {warning}");
            }
        }
    }
    let write = |bytes: &[u8]| {
        std::fs::write(&output, bytes)
            .map_err(|e| format!("cannot write {}: {e}", output.display()))
    };
    match format {
        PackFormat::TreeTar => {
            let arch = match arch.or_else(Arch::host) {
                Some(arch) => arch,
                None => {
                    return Err(format!(
                        "this machine ({}) has no overlay installer; pass --arch amd64 or --arch arm64",
                        std::env::consts::ARCH
                    ));
                }
            };
            let tar = tree.tree_tar(arch, mtime).map_err(|e| error_chain(&e))?;
            write(&tar)?;
            println!(
                "wrote {} ({} bytes): the linux/{} overlay tree, for overlay.image.tarballPath",
                output.display(),
                tar.len(),
                arch.oci_name()
            );
        }
        PackFormat::OciArchive | PackFormat::OciDir => {
            let layout = tree
                .image_layout(&tag, mtime)
                .map_err(|e| error_chain(&e))?;
            if format == PackFormat::OciDir {
                layout.write_dir(&output).map_err(|e| error_chain(&e))?;
                println!(
                    "wrote the OCI layout {} (use it as overlay.image.ociPath, or oci:{}:{tag})",
                    output.display(),
                    output.display()
                );
            } else {
                let archive = layout.to_archive(mtime).map_err(|e| error_chain(&e))?;
                write(&archive)?;
                println!(
                    "wrote {} ({} bytes); publish with skopeo copy --all oci-archive:{}:{tag} docker://REGISTRY/IMAGE:{tag}",
                    output.display(),
                    archive.len(),
                    output.display()
                );
            }
            println!("image index {} (tag {tag})", layout.index_digest);
            for (arch, digest) in &layout.manifests {
                println!("  linux/{}: {digest}", arch.oci_name());
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check-dtb") => check_dtbs(&args[1..]),
        Some("pack") => pack(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
