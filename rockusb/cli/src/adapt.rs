//! `rockusb image adapt`, and the `--adapt` half of `rockusb flash`: a generic Talos image
//! (Omni, Image Factory) made into a board image — U-Boot at its sector, the partitions
//! moved past it, the board's DTB in the EFI partition — with a report of what the image
//! will do on first boot.

use crate::commands::read_file;
use crate::output::Output;
use crate::values::BoardArg;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use nanopi_m6_installer::{bootloader, dtb_gate};
use rockusb::ops::Phase;
use rockusb::ops::adapt::{self as adapt_op, OutputFormat, Spilled};
use rockusb::ops::flash::inspect;
use rockusb::source::ImageSource;
use rockusb::source::adapted::{Adapted, adapt_source};
use rockusb_images::adapt::{AdaptRequest, DtbFile, TableReport};
use rockusb_images::diskmap::{self, Style};
use rockusb_images::uki::esp::{FoundUki, find_ukis};
use rockusb_images::units::human_bytes;
use rockusb_images::{BoardLayout, NANOPI_M6};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The board files an adapted image carries.
#[derive(Debug, Clone, Args)]
pub struct BoardFilesArgs {
    /// U-Boot for the board: the `u-boot-rockchip.bin` its build writes (ID block first),
    /// written at byte 32768.
    #[arg(long, value_name = "FILE")]
    pub uboot: Option<PathBuf>,
    /// The board's device tree, placed in the EFI partition at /dtb/rockchip/, where
    /// U-Boot's EFI loader looks for it.
    #[arg(long, value_name = "FILE")]
    pub dtb: Option<PathBuf>,
    /// The DTB's file name in /dtb/rockchip/ (U-Boot's `fdtfile`).
    #[arg(long, value_name = "NAME", default_value = "rk3588s-nanopi-m6.dtb")]
    pub dtb_name: String,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Make a generic Talos image (metal-arm64.raw.xz from Omni or the Image Factory) into
    /// an image for the board, without docker or the Talos imager.
    Adapt(AdaptArgs),
}

#[derive(Debug, Args)]
pub struct AdaptArgs {
    /// The generic image: .raw, .raw.xz, .gz or .zst (recognised by content).
    pub image: PathBuf,
    /// The board to adapt it to.
    #[arg(long, value_enum)]
    pub board: BoardArg,
    #[command(flatten)]
    pub files: BoardFilesArgs,
    /// The adapted image: .raw, or .xz (compressed as Talos does, in 1 MiB blocks).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// U-Boot and the DTB, read and checked before anything is written.
pub struct BoardFiles {
    pub layout: BoardLayout,
    uboot: Vec<u8>,
    dtb: Vec<u8>,
    dtb_name: String,
}

impl BoardFiles {
    /// Reads both files and runs the overlay installer's own checks on them: U-Boot's ID
    /// block and size limit, and the DTB gate.
    pub fn load(board: BoardArg, args: &BoardFilesArgs) -> Result<Self> {
        let layout = match board {
            BoardArg::NanopiM6 => NANOPI_M6,
        };
        let Some(uboot_path) = &args.uboot else {
            bail!(
                "adapting needs the board's U-Boot: add --uboot u-boot-rockchip.bin (the file \
                 U-Boot's build writes for the {})",
                layout.display_name
            );
        };
        let Some(dtb_path) = &args.dtb else {
            bail!(
                "adapting needs the board's device tree: add --dtb {} (U-Boot's EFI loader \
                 looks for it in the EFI partition)",
                args.dtb_name
            );
        };
        let uboot = read_file(uboot_path, "U-Boot")?;
        bootloader::validate(&uboot, &layout)
            .with_context(|| format!("{} cannot be used as U-Boot", uboot_path.display()))?;
        let dtb = read_file(dtb_path, "device tree")?;
        dtb_gate::check(&dtb).with_context(|| {
            format!(
                "{} is not a device tree for the {}",
                dtb_path.display(),
                layout.display_name
            )
        })?;
        Ok(BoardFiles {
            layout,
            uboot,
            dtb,
            dtb_name: args.dtb_name.clone(),
        })
    }

    pub fn request(&self) -> AdaptRequest<'_> {
        AdaptRequest {
            layout: &self.layout,
            uboot: &self.uboot,
            dtb: Some(DtbFile {
                name: &self.dtb_name,
                bytes: &self.dtb,
            }),
        }
    }
}

pub fn run(cmd: ImageCommand, out: &mut Output) -> Result<()> {
    match cmd {
        ImageCommand::Adapt(args) => adapt_file(args, out),
    }
}

fn adapt_file(args: AdaptArgs, out: &mut Output) -> Result<()> {
    // Everything is checked before the first byte of output exists.
    adapt_op::check_output(&args.output, args.force)?;
    let files = BoardFiles::load(args.board, &args.files)?;
    let source = ImageSource::open(&args.image)?;
    // gzip and zstd streams decode only from their start; adapting reads both ends of the
    // table first, so such an image is decoded to a file beside the output, then removed.
    let _spilled;
    let source = if source.random_access.is_none() && source.xz_blocks.is_none() {
        let spilled = Spilled::decode(source, &args.output, out)?;
        let source = ImageSource::open(spilled.path())?;
        _spilled = spilled;
        source
    } else {
        source
    };
    let adapted = adapt_source(source, &files.request())?;
    let report = report(&adapted, out);
    let format = OutputFormat::for_path(&args.output);
    let written = adapt_op::write_image(adapted.source, &args.output, format, Phase::Adapt, out)?;
    let plan = &adapted.plan;
    let mut result = report;
    result["output"] = json!(args.output);
    result["format"] = json!(format);
    result["bytes"] = json!(written);
    out.result(&result, || {
        format!(
            "wrote {} ({}, {}): every partition moved by {} sectors, U-Boot at byte {}, the \
             DTB at {}",
            args.output.display(),
            human_bytes(written),
            match format {
                OutputFormat::Raw => "raw",
                OutputFormat::Xz => "xz",
            },
            plan.delta_lbas,
            files.layout.bootloader_offset(),
            plan.dtb_path.as_deref().unwrap_or("-"),
        )
    });
    Ok(())
}

/// Adapts `source` for flashing, after showing what adapting does.
pub fn for_flash(source: ImageSource, files: &BoardFiles, out: &mut Output) -> Result<ImageSource> {
    let adapted = adapt_source(source, &files.request())?;
    report(&adapted, out);
    Ok(adapted.source)
}

/// Shows the plan (warnings, before and after maps, the UKIs) and returns it as JSON.
fn report(adapted: &Adapted, out: &mut Output) -> Value {
    let plan = &adapted.plan;
    for warning in &plan.warnings {
        out.warn(warning);
    }
    let maps = diskmap::render_before_after(
        &plan.before.disk_map(),
        &plan.after.disk_map(),
        terminal_width(),
        Style::Unicode,
    );
    let ukis = match find_ukis(&adapted.original, plan.esp.source) {
        Ok(found) => found,
        Err(e) => {
            out.warn(&format!("{e}; the UKIs were not checked"));
            Vec::new()
        }
    };
    if ukis.is_empty() {
        out.warn(
            "no UKI found in EFI/Linux of the EFI partition: this does not look like a Talos \
             image made for UEFI (systemd-boot); it boots only if its EFI partition boots by \
             other means",
        );
    }
    let uki_reports: Vec<Value> = ukis.iter().map(|u| uki_report(u, out)).collect();
    let value = json!({
        "delta_lbas": plan.delta_lbas,
        "dtb_path": plan.dtb_path,
        "esp": { "number": plan.esp.number, "name": plan.esp.name },
        "before": table_json(&plan.before),
        "after": table_json(&plan.after),
        "ukis": uki_reports,
        "warnings": plan.warnings,
    });
    out.show("adapt-plan", value.clone(), || maps.to_string());
    value
}

fn table_json(table: &TableReport) -> Value {
    json!({
        "len": table.len,
        "entries_lba": table.entries_lba,
        "bootloader": table.bootloader.map(|b| json!({ "offset": b.start, "len": b.len })),
        "partitions": table.partitions.iter().map(|p| json!({
            "number": p.number,
            "name": p.name,
            "type": p.type_guid.to_string(),
            "first_lba": p.first_lba,
            "last_lba": p.last_lba,
            "len": p.len,
        })).collect::<Vec<_>>(),
    })
}

/// What one UKI says, shown to the user; its notes' warnings go out as warnings.
fn uki_report(uki: &FoundUki, out: &mut Output) -> Value {
    let info = match &uki.info {
        Ok(info) => info,
        Err(e) => {
            out.warn(&format!("{} is not a readable UKI: {e}", uki.path));
            return json!({ "path": uki.path, "error": e.to_string() });
        }
    };
    let version = info.talos_version().map(str::to_string);
    let assessment = info.assessment();
    let mut lines = vec![format!(
        "UKI {}: Talos {}",
        uki.path,
        version.as_deref().unwrap_or("(version unknown)")
    )];
    match &info.cmdline {
        Some(cmdline) => lines.push(format!("  command line: {}", masked(cmdline))),
        None => lines.push("  no .cmdline section".into()),
    }
    if let Some(a) = &assessment {
        lines.push(match &a.siderolink_api {
            Some(api) => format!("  joins Omni at {}", masked(api)),
            None => "  does not join Omni (no siderolink.api= argument)".into(),
        });
        for note in a.notes() {
            if note.warning {
                out.warn(&format!("{}: {}", uki.path, note.text));
            } else {
                lines.push(format!("  {}", note.text));
            }
        }
    }
    out.show("uki", json!({ "path": uki.path }), || lines.join("\n"));
    json!({
        "path": uki.path,
        "len": uki.len,
        "cmdline": info.cmdline,
        "talos_version": version,
        "joins_omni": assessment.as_ref().is_some_and(|a| a.joins_omni()),
        "siderolink_api": assessment.as_ref().and_then(|a| a.siderolink_api.clone()),
        "events_sink": assessment.as_ref().is_some_and(|a| a.events_sink),
        "logging_kernel": assessment.as_ref().is_some_and(|a| a.logging_kernel),
        "serial_console": assessment.as_ref().is_some_and(|a| a.serial_console),
    })
}

/// The command line with Omni's join token hidden: it is a credential, and terminals
/// and logs are shared.
fn masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("jointoken=") {
        let (before, after) = rest.split_at(at + "jointoken=".len());
        out.push_str(before);
        let end = after
            .find(|c: char| c == '&' || c.is_whitespace())
            .unwrap_or(after.len());
        out.push('…');
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(80)
        .clamp(40, 160)
}

/// The table drawn to scale, for `rockusb gpt --map`.
pub fn map_of(
    report: &rockusb_images::gpt::GptReport,
    len: u64,
    bootloader_sector: Option<&[u8]>,
) -> Option<String> {
    inspect::table_layout(report, len, bootloader_sector)
        .map(|t| t.disk_map().render(terminal_width(), Style::Unicode))
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn the_join_token_is_hidden_and_the_rest_kept() {
        assert_eq!(
            masked("a siderolink.api=https://o:8090/?jointoken=s3cr3t b"),
            "a siderolink.api=https://o:8090/?jointoken=… b"
        );
        assert_eq!(masked("x?jointoken=t&y=1"), "x?jointoken=…&y=1");
        assert_eq!(masked("nothing secret"), "nothing secret");
    }
}
