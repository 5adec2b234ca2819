//! `rockusb loader …`: inspect, verify, unpack and build loader files, and find the right
//! loader for a board.

use crate::commands::read_file;
use crate::output::Output;
use crate::values::SocArg;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use rockusb_loaders::choose::{Choice, ChooseOptions, choose_loader};
use rockusb_loaders::ini::{ComponentDirs, build_from_ini};
use rockusb_loaders::report;
use rockusb_loaders::soc::Soc;
use rockusb_loaders::{EntryKind, LoaderContainer, ReleaseTime};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum LoaderCommand {
    /// Show a loader's header and entries.
    Info { file: PathBuf },
    /// Check a loader: structure, CRC-32, the RKNS hashes of its heads; names each failed check.
    Verify { file: PathBuf },
    /// Write each entry's payload (decoded to plain bytes) into a folder.
    Extract {
        file: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Build a loader from an RKBOOT ini and its component files, like boot_merger.
    Pack {
        /// The RKBOOT ini (e.g. RK3588MINIALL.ini).
        ini: PathBuf,
        /// Folders holding the component files the ini names (searched in order).
        #[arg(long = "components", short = 'C', required = true)]
        components: Vec<PathBuf>,
        /// Release time to record, as Unix seconds; defaults to SOURCE_DATE_EPOCH, else now.
        #[arg(long, env = "SOURCE_DATE_EPOCH")]
        release_time: Option<u64>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write the labelled stand-in loader: a valid container that only the virtual board
    /// accepts (rkbin loaders cannot ship with this project).
    Standin {
        /// SoC to make it for.
        #[arg(long, value_enum, ignore_case = true, default_value = "RK3588")]
        soc: SocArg,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Show which loader `rockusb boot` would choose for a SoC, and why.
    Find {
        #[arg(long, value_enum, ignore_case = true, default_value = "RK3588")]
        soc: SocArg,
        /// Extra folders to search first.
        #[arg(long = "loader-dir")]
        dirs: Vec<PathBuf>,
    },
}

pub fn run(command: LoaderCommand, out: &Output) -> Result<()> {
    match command {
        LoaderCommand::Info { file } => info(&file, out),
        LoaderCommand::Verify { file } => verify(&file, out),
        LoaderCommand::Extract { file, output } => extract(&file, &output, out),
        LoaderCommand::Pack {
            ini,
            components,
            release_time,
            output,
        } => pack(&ini, components, release_time, &output, out),
        LoaderCommand::Standin { soc, output } => standin(soc, &output, out),
        LoaderCommand::Find { soc, dirs } => {
            let choice = find(soc.0, &dirs, false)?;
            out.result(&choice, || describe_choice(&choice));
            Ok(())
        }
    }
}

fn info(file: &Path, out: &Output) -> Result<()> {
    let container = parse(file)?;
    let info = report::info(&container);
    out.result(&info, || {
        let mut lines = vec![format!(
            "{}: {} loader for {} (chip code {}), version {}, released {}{}{}",
            file.display(),
            info.magic.trim(),
            info.soc.unwrap_or("an unknown SoC"),
            info.chip,
            info.version,
            info.release_time,
            if info.signed { ", signed" } else { "" },
            if info.standin {
                ", STAND-IN (virtual board only)"
            } else {
                ""
            },
        )];
        for e in &info.entries {
            lines.push(format!(
                "  {:<8} {:<22} {:>8} bytes  delay {} ms",
                format!("{:?}", e.kind),
                e.name,
                e.size,
                e.delay_ms
            ));
        }
        lines.join("\n")
    });
    Ok(())
}

fn verify(file: &Path, out: &Output) -> Result<()> {
    let bytes = read_file(file, "loader")?;
    let report = report::verify(&bytes);
    out.result(&report, || {
        report
            .checks
            .iter()
            .map(|c| format!("{:?}  {}: {}", c.status, c.name, c.detail))
            .collect::<Vec<_>>()
            .join("\n")
    });
    if !report.ok {
        bail!(
            "{} failed verification (see the checks above)",
            file.display()
        );
    }
    Ok(())
}

fn extract(file: &Path, output: &Path, out: &Output) -> Result<()> {
    let container = parse(file)?;
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let mut written = Vec::new();
    for (i, entry) in container.all_entries().iter().enumerate() {
        let kind = match entry.kind {
            EntryKind::Area471 => "471",
            EntryKind::Area472 => "472",
            EntryKind::Loader => "loader",
        };
        let name = format!("{i:02}-{kind}-{}.bin", sanitize(&entry.name));
        let path = output.join(&name);
        std::fs::write(&path, entry.decoded(container.tag()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    out.result(&written, || {
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

fn pack(
    ini: &Path,
    components: Vec<PathBuf>,
    release_time: Option<u64>,
    output: &Path,
    out: &Output,
) -> Result<()> {
    let text =
        std::fs::read_to_string(ini).with_context(|| format!("cannot read {}", ini.display()))?;
    let secs = match release_time {
        Some(s) => s,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let container = build_from_ini(
        &text,
        ReleaseTime::from_unix_seconds(secs),
        &ComponentDirs::new(components),
    )
    .with_context(|| format!("cannot build a loader from {}", ini.display()))?;
    let bytes = container.to_bytes()?;
    std::fs::write(output, &bytes).with_context(|| format!("cannot write {}", output.display()))?;
    let info = report::info(&container);
    out.result(&info, || {
        format!(
            "wrote {} ({} bytes) for {}",
            output.display(),
            bytes.len(),
            info.chip
        )
    });
    Ok(())
}

fn standin(soc: SocArg, output: &Path, out: &Output) -> Result<()> {
    let soc = soc.0;
    let bytes = rockusb_loaders::standin::build(soc);
    std::fs::write(output, &bytes).with_context(|| format!("cannot write {}", output.display()))?;
    out.result(
        &serde_json::json!({ "file": output, "soc": soc.name }),
        || {
            format!(
                "wrote the {} stand-in loader to {} ({} bytes): for the virtual board only",
                soc.name,
                output.display(),
                bytes.len()
            )
        },
    );
    Ok(())
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Reads and parses a loader file: the one place that says which file was unreadable or
/// not a loader.
pub fn parse(path: &Path) -> Result<LoaderContainer> {
    LoaderContainer::parse(&read_file(path, "loader")?)
        .with_context(|| format!("{} is not a usable loader", path.display()))
}

/// The loader search path: `extra` folders, then `ROCKUSB_LOADER_PATH` (colon-separated),
/// then `$XDG_DATA_HOME/rockusb/loaders` (`~/.local/share/rockusb/loaders`).
pub fn search_path(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = extra.to_vec();
    if let Some(list) = std::env::var_os("ROCKUSB_LOADER_PATH") {
        dirs.extend(std::env::split_paths(&list));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(data) = data {
        dirs.push(data.join("rockusb").join("loaders"));
    }
    dirs
}

/// Finds the newest loader for `soc` on the search path.
pub fn find(soc: &'static Soc, extra: &[PathBuf], allow_standin: bool) -> Result<Choice> {
    let dirs = search_path(extra);
    Ok(choose_loader(&dirs, soc, ChooseOptions { allow_standin })?)
}

pub fn describe_choice(choice: &Choice) -> String {
    let mut lines = vec![format!(
        "chose {} (version {}, released {}): {}",
        choice.chosen.path.display(),
        choice.chosen.version,
        choice.chosen.release_time,
        choice.why
    )];
    for r in &choice.rejected {
        lines.push(format!("  skipped {}: {}", r.path.display(), r.reason));
    }
    lines.join("\n")
}
