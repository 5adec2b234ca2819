//! `nanopi-m6-overlay`: build-time companion of the `nanopi-m6` installer.
//!
//! - `check-dtb FILE...` runs the DTB gate on each file.
//! - `pack ...` validates the overlay inputs and writes the OCI image archive.

#![forbid(unsafe_code)]

use nanopi_m6_installer::dtb_gate;
use nanopi_m6_installer::error_chain;
use nanopi_m6_installer::oci::{Arch, OverlayTree};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage:
  nanopi-m6-overlay check-dtb FILE.dtb...
  nanopi-m6-overlay pack --installer-amd64 FILE --installer-arm64 FILE
                         --bootloader u-boot-rockchip.bin --dtb FILE.dtb [--dtb FILE.dtb]
                         --profile nanopi-m6.yaml --output overlay.oci.tar [--tag TAG]

pack stamps every entry with SOURCE_DATE_EPOCH (default 0), so equal inputs give an
identical archive. Publish it with: skopeo copy --all oci-archive:overlay.oci.tar docker://REGISTRY/IMAGE:TAG";

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
            Ok(accepted) => println!(
                "{file}: OK, {} ({})",
                accepted.model.as_deref().unwrap_or("no model"),
                accepted.compatible.join(", ")
            ),
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
    let mut tag = "latest".to_owned();
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
    tree.profile = read(&need(profile, "--profile")?)?;
    let output = need(output, "--output")?;
    let mtime = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("SOURCE_DATE_EPOCH {text:?} is not a number of seconds"))?,
        Err(_) => 0,
    };
    let packed = tree.pack(&tag, mtime).map_err(|e| error_chain(&e))?;
    std::fs::write(&output, &packed.archive)
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    println!(
        "wrote {} ({} bytes)",
        output.display(),
        packed.archive.len()
    );
    println!("image index {} (tag {tag})", packed.index_digest);
    for (arch, digest) in &packed.manifests {
        println!("  linux/{}: {digest}", arch.oci_name());
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
