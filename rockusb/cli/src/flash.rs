//! `flash`, `backup` and `gpt`: streaming a disk image onto a board's storage and back.
//! Argument handling and messages only; the work is in [`rockusb::ops::flash`].

use crate::adapt::{self, BoardFiles, BoardFilesArgs};
use crate::journal;
use crate::output::Output;
use crate::select;
use crate::values::{BoardArg, LayoutArg, StorageArg};
use anyhow::{Context, Result, bail};
use clap::Args;
use rockusb::client::Client;
use rockusb::discovery::UsbSpeed;
use rockusb::discovery::{BoardInfo, BoardMode, Bus};
use rockusb::ops::boot::{self, BootPlan};
use rockusb::ops::flash::backup::{self as backup_op, BackupFormat};
use rockusb::ops::flash::inspect;
use rockusb::ops::flash::layout::{self, LayoutChoice, LayoutName};
use rockusb::ops::flash::{
    self as flash_op, FlashMode, FlashOptions, FlashReport, VerifyMode, VerifyOutcome,
};
use rockusb::ops::sector_io::SectorIo;
use rockusb::ops::usb3::{self, SwitchOutcome};
use rockusb::ops::{Event, Observer};
use rockusb::protocol::StorageKind;
use rockusb::source::ImageSource;
use rockusb::source::check::{Estimate, IntegrityCheck, NotChecked};
use rockusb::source::shared::SharedImage;
use rockusb::transport::Transport;
use rockusb_images::bmap::Bmap;
use rockusb_images::gpt::GptReport;
use rockusb_images::units::human_bytes;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Args)]
pub struct FlashArgs {
    /// The image: .raw, .raw.xz, .gz, .zst, or - for stdin (the format is read from the
    /// content, not the name).
    pub image: PathBuf,
    /// Boot this loader first if the board is in MaskROM (e.g. rk3588_spl_loader_v1.16.113.bin).
    #[arg(long, value_name = "FILE")]
    pub loader: Option<PathBuf>,
    /// The storage to write: emmc, sd or spinor.
    #[arg(long, value_enum, ignore_case = true, default_value = "emmc")]
    pub storage: StorageArg,
    /// Write every block, zeros included (default: skip zero runs outside the regions
    /// that must be written in full).
    #[arg(long, conflicts_with = "bmap")]
    pub full: bool,
    /// A bmaptool block map (format 1.x or 2.0): write exactly its ranges, checking each
    /// range's checksum.
    #[arg(long, value_name = "FILE")]
    pub bmap: Option<PathBuf>,
    /// How to check what was written. readback (the default): read every written range
    /// back over USB and compare digests. device: send each write with its parity; the
    /// loader re-reads it from the storage and fails the write on a mismatch, so nothing
    /// crosses the link twice (writes go in commands of at most 2048 sectors); on a loader
    /// without write parity this falls back to readback, with a warning. none: no check.
    /// readback stays the default until write parity is confirmed on real boards.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = VerifyArg::Readback)]
    pub verify: VerifyArg,
    /// The same as --verify none.
    #[arg(long, conflicts_with = "verify")]
    pub no_verify: bool,
    /// Stay at USB 2.0 high speed: do not ask a loader that can switch to USB 3 to do so.
    #[arg(long)]
    pub usb2: bool,
    /// Decode the whole image before the first write, so a damaged download is refused
    /// before the board is touched. By default this is done only where it is cheap: when
    /// it is estimated to add at most a tenth to the flash (a dense image; a mostly empty
    /// one decodes long for little to write, about 5 s per 2 GiB on two cores). It runs in
    /// the background while the loader boots; standard input cannot be checked.
    #[arg(long, conflicts_with = "no_check")]
    pub check: bool,
    /// Never decode the image before the first write (damage is then found only when the
    /// stream reaches it, after the board's bootloader was cleared).
    #[arg(long)]
    pub no_check: bool,
    /// The board layout to check the image against and plan with (default: chosen from
    /// the board's SoC: nanopi-m6 for an RK3588, rockchip for the others).
    #[arg(long, value_enum, conflicts_with = "adapt")]
    pub layout: Option<LayoutArg>,
    /// The image is a generic Talos image (Omni, Image Factory): make it an image for
    /// this board while flashing (as `rockusb image adapt` would), with --uboot and --dtb.
    #[arg(long, value_enum, value_name = "BOARD")]
    pub adapt: Option<BoardArg>,
    #[command(flatten)]
    pub board_files: BoardFilesArgs,
    /// Continue a flash of this image onto this board that stopped part-way (a pulled
    /// cable, a reset, a killed process), from its journal: what was written is read back
    /// and kept where it matches, the rest written, then the bootloader and GPT last and
    /// everything verified. Refused when the journal records another image; without a
    /// journal, the flash starts from the beginning.
    #[arg(long)]
    pub resume: bool,
    /// Sectors per write command (default: 8192 for vendor loaders, 2048 for mainline
    /// U-Boot; halved automatically if the loader refuses a size).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(128..=65535))]
    pub command_sectors: Option<u32>,
    /// Write a local disk or a file instead of a board: an SD card in a reader (/dev/sdb,
    /// /dev/mmcblk0), a USB disk, a loop device, or an image file (created when missing).
    /// Refused when anything on the disk is mounted, when it holds the running system,
    /// and, without --force, when it is not removable; `rockusb disks` lists candidates.
    #[arg(
        long,
        value_name = "DEVICE",
        conflicts_with_all = ["loader", "storage", "command_sectors", "resume"]
    )]
    pub to: Option<PathBuf>,
    /// With --to: also write a disk that is not removable (never a mounted one, nor the
    /// one holding the running system).
    #[arg(long, requires = "to")]
    pub force: bool,
}

/// `--verify`: how a flash checks what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyArg {
    /// Read back over USB and compare digests.
    Readback,
    /// The loader re-reads each write against its write parity.
    Device,
    /// No check.
    None,
}

impl FlashArgs {
    /// The verification asked for, `--no-verify` included.
    pub fn verify_mode(&self) -> VerifyMode {
        match (self.no_verify, self.verify) {
            (true, _) | (false, VerifyArg::None) => VerifyMode::None,
            (false, VerifyArg::Readback) => VerifyMode::Readback,
            (false, VerifyArg::Device) => VerifyMode::Device,
        }
    }
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Output file: xz-compressed when it ends in .xz, raw otherwise.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Read only this many sectors from the start (default: the whole storage).
    #[arg(long, value_name = "N")]
    pub sectors: Option<u64>,
    /// The storage to read: emmc, sd or spinor.
    #[arg(long, value_enum, ignore_case = true, default_value = "emmc")]
    pub storage: StorageArg,
    /// Boot this loader first if the board is in MaskROM.
    #[arg(long, value_name = "FILE")]
    pub loader: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GptArgs {
    /// An image file; without it, the board's storage.
    pub image: Option<PathBuf>,
    /// The board storage to read: emmc, sd or spinor.
    #[arg(long, value_enum, ignore_case = true, default_value = "emmc")]
    pub storage: StorageArg,
    /// Also draw the layout to scale: tables, partitions, free space.
    #[arg(long)]
    pub map: bool,
}

/// The board, running a loader: booted with `loader` first when it is in MaskROM.
fn loader_board(
    bus: &Bus,
    device: Option<&str>,
    loader: Option<&Path>,
    out: &mut Output,
) -> Result<BoardInfo> {
    let board = select::board(bus, device)?;
    match (board.mode, loader) {
        (BoardMode::Maskrom, Some(path)) => {
            let container = crate::loader_cmd::parse(path)?;
            let plan = BootPlan::from_container(&container);
            boot::check_plan(bus, &board, &plan)?;
            Ok(boot::boot(bus, &board, &plan, out)?)
        }
        (BoardMode::Loader, Some(_)) => {
            out.event(Event::Warning {
                message: "the board already runs a loader; --loader was not needed".into(),
            });
            Ok(board)
        }
        _ => {
            select::require_loader(&board)?;
            Ok(board)
        }
    }
}

/// Opens the board so that a glitch that drops it off the bus for a moment is ridden out:
/// it is found again on the same port ([`rockusb::discovery::Reattaching`]).
fn open(bus: &Bus, board: &BoardInfo) -> Result<Client<Box<dyn Transport>>> {
    Ok(Client::new(Box::new(
        bus.open_reattaching(&board.port_path)?,
    )))
}

/// `bus` is `None` with `--to` (a local disk needs no USB).
pub fn flash(
    bus: Option<&Bus>,
    device: Option<&str>,
    args: FlashArgs,
    out: &mut Output,
) -> Result<()> {
    flash_shared(bus, device, args, out, None)
}

/// [`flash`], taking the decoded image from `shared` (a fleet's one decoder) when it
/// serves this image and the image is not adapted on the way.
pub fn flash_shared(
    bus: Option<&Bus>,
    device: Option<&str>,
    args: FlashArgs,
    out: &mut Output,
    shared: Option<&SharedImage>,
) -> Result<()> {
    // Everything about the input is checked before the board is touched.
    let storage = StorageKind::from(args.storage);
    let mut source =
        ImageSource::open(&args.image).map_err(|e| anyhow::anyhow!("{e}\nNothing was written."))?;
    if let Some(shared) = shared.filter(|s| args.adapt.is_none() && s.serves(&source)) {
        source.shared = Some(shared.subscribe());
    }
    let image_identity = journal::image_identity(&args)?;
    let check = start_check(&source, &args, out);
    let (source, adapted_for) = match args.adapt {
        Some(board) => {
            let files = BoardFiles::load(board, &args.board_files)?;
            (adapt::for_flash(source, &files, out)?, Some(files.layout))
        }
        None if args.board_files.uboot.is_some() || args.board_files.dtb.is_some() => {
            bail!("--uboot and --dtb go with --adapt BOARD (a generic image to adapt)")
        }
        None => (source, None),
    };
    let mode = match &args.bmap {
        Some(path) => {
            let text = std::fs::read(path)
                .with_context(|| format!("cannot read the bmap {}", path.display()))?;
            let bmap = Bmap::parse(&text).with_context(|| {
                format!(
                    "{} is not a usable bmap; nothing was written",
                    path.display()
                )
            })?;
            FlashMode::Bmap(Box::new(bmap))
        }
        None if args.full => FlashMode::Full,
        None => FlashMode::Sparse,
    };
    #[cfg(target_os = "linux")]
    if args.to.is_some() {
        let image = crate::disks::Image {
            source,
            mode,
            check,
            adapted_for,
        };
        return crate::disks::flash(&args, device, image, out);
    }
    let Some(bus) = bus else {
        bail!("flashing a board needs USB access")
    };
    let board = loader_board(bus, device, args.loader.as_deref(), out)?;
    let client = open(bus, &board)?;
    let usb3::Connected {
        board,
        mut client,
        outcome: switch,
    } = usb3::switch_if_offered(bus, board, client, !args.usb2, out)?;
    let target = flash_op::prepare(&mut client, storage)?;
    let resumable = image_identity
        .map(|image| journal::start(image, &board, &target, args.resume, out))
        .transpose()?;
    if let Some(check) = check {
        let checked = check.wait()?;
        out.event(Event::ImageChecked {
            bytes: checked.bytes,
            seconds: checked.elapsed.as_secs_f64(),
        });
    }
    let chosen = match adapted_for {
        Some(layout) => LayoutChoice {
            layout,
            reason: "the image was adapted for it (--adapt)".into(),
        },
        None => layout::choose(board.soc, args.layout.map(LayoutName::from)),
    };
    out.event(chosen.event());
    let options = FlashOptions {
        layout: &chosen.layout,
        mode,
        verify: args.verify_mode(),
        command_sectors: args.command_sectors,
        resumable,
    };
    let report = flash_op::flash(&mut client, &target, source, options, out)?;
    let record = FlashSummary {
        report: &report,
        usb_speed: board.speed,
        usb3_switch: switch,
    };
    out.result(&record, || {
        summary(
            &report,
            &format!("the {}", report.storage),
            Some(board.speed),
        )
    });
    Ok(())
}

/// The flash's result as printed: the library's report and how the board was connected.
#[derive(serde::Serialize)]
struct FlashSummary<'a> {
    #[serde(flatten)]
    report: &'a FlashReport,
    usb_speed: UsbSpeed,
    usb3_switch: SwitchOutcome,
}

/// The text result of a flash onto `onto` ("the emmc", "/dev/sdb").
pub(crate) fn summary(
    report: &flash_op::FlashReport,
    onto: &str,
    speed: Option<UsbSpeed>,
) -> String {
    let mut text = format!(
        "flashed {} ({}) onto {onto}: wrote {}, skipped {} of zeros",
        report.image,
        human_bytes(report.image_len),
        human_bytes(report.bytes_written),
        human_bytes(report.bytes_skipped),
    );
    if let Some((_, len)) = report.wiped {
        text += &format!(", wiped the old backup GPT ({})", human_bytes(len));
    }
    text += &match &report.verify {
        VerifyOutcome::Verified { bytes } => format!(
            "; verified {} by reading back ({} of it while waiting for the image)",
            human_bytes(*bytes),
            human_bytes(report.verified_during_write)
        ),
        VerifyOutcome::Device { bytes } => format!(
            "; verified {} on the device (the loader re-read every write from the storage \
             and checked its parity)",
            human_bytes(*bytes)
        ),
        VerifyOutcome::Skipped => "; not verified (--verify none)".into(),
        VerifyOutcome::ReadWall { .. } => "; verified below 32 MiB only (see the warning)".into(),
    };
    if let Some(speed) = speed {
        text += &format!("; the board ran at {speed}");
    }
    if let Some(from) = report.resumed_from {
        text += &format!(
            "\n  resumed an interrupted flash that had reached image byte {from}: {} of it \
             read back as written and was kept",
            human_bytes(report.kept_bytes)
        );
    }
    if report.reattached > 0 {
        text += &format!(
            "\n  the board dropped off the bus {} time(s) and was found again on its port",
            report.reattached
        );
    }
    for p in &report.partitions {
        text += &partition_line(p);
    }
    text
}

/// Starts decoding the whole image in the background, unless asked not to or impossible.
fn start_check(source: &ImageSource, args: &FlashArgs, out: &mut Output) -> Option<IntegrityCheck> {
    if args.no_check {
        return None;
    }
    if !args.check {
        if let Some(estimate) = Estimate::for_source(source).filter(|e| !e.is_cheap()) {
            out.note(&format!(
                "not decoding the whole image before writing: it would add about {:.0} s to a \
                 flash of about {:.0} s (--check to do it anyway)",
                estimate.check_seconds, estimate.flash_seconds
            ));
            return None;
        }
    }
    match IntegrityCheck::start(source, &args.image) {
        Ok(check) => Some(check),
        Err(NotChecked::Stdin) => {
            out.warn(
                "the image comes from standard input, which can be read only once: it is not \
                 decoded before writing, so damage in it is found only when the stream reaches it",
            );
            None
        }
        Err(NotChecked::Raw) => None,
    }
}

/// One summary line per partition: what decided its writes and the figures.
fn partition_line(p: &flash_op::PartitionReport) -> String {
    let label = match p.name.as_str() {
        "" => format!("partition {}", p.number),
        name => format!("partition {} {name}", p.number),
    };
    let fs = p.file_system.as_deref().unwrap_or("unknown");
    let how = match (&p.reason, p.writes) {
        (Some(reason), _) => format!("written in full: {reason}"),
        (None, _) => format!(
            "skipped {} of zeros in its free space ({} free)",
            human_bytes(p.bytes_skipped),
            human_bytes(p.free_bytes)
        ),
    };
    format!(
        "\n  {label} ({fs}, {}): wrote {}, {how}",
        human_bytes(p.len),
        human_bytes(p.bytes_written)
    )
}

pub fn backup(bus: &Bus, device: Option<&str>, args: BackupArgs, out: &mut Output) -> Result<()> {
    let storage = StorageKind::from(args.storage);
    let format = if args
        .output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xz"))
    {
        BackupFormat::Xz
    } else {
        BackupFormat::Raw
    };
    let board = loader_board(bus, device, args.loader.as_deref(), out)?;
    let mut client = open(bus, &board)?;
    let target = flash_op::prepare(&mut client, storage)?;
    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let sectors = target.command_sectors();
    let mut io = SectorIo::new(&mut client, sectors);
    let result = backup_op::backup(
        &mut io,
        &target,
        args.sectors,
        format,
        std::io::BufWriter::new(file),
        out,
    );
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            // A partial backup must not be mistaken for a good one.
            let _ = std::fs::remove_file(&args.output);
            return Err(e).context(format!(
                "the backup failed; {} was removed",
                args.output.display()
            ));
        }
    };
    out.result(&report, || {
        format!(
            "backed up {} of the {} into {} ({} stored)",
            human_bytes(report.bytes),
            target.storage,
            args.output.display(),
            human_bytes(report.stored_bytes)
        )
    });
    Ok(())
}

pub fn gpt(bus: Option<&Bus>, device: Option<&str>, args: GptArgs, out: &mut Output) -> Result<()> {
    if let Some(path) = &args.image {
        let source = ImageSource::open(path)?;
        let bootloader_sector = args.map.then(|| image_sector(&source)).flatten();
        let report = inspect::image_gpt(source)?;
        let map = map(&args, &report, report.len, bootloader_sector.as_deref());
        out.result(
            &json!({ "image": path, "table": format!("{report}"), "map": map }),
            || {
                format!(
                    "{}:\n{report}{}",
                    path.display(),
                    map.as_deref().unwrap_or("")
                )
            },
        );
        return Ok(());
    }
    let Some(bus) = bus else {
        bail!("name an image file, or attach a board to read its storage's partition table");
    };
    let storage = StorageKind::from(args.storage);
    let board = loader_board(bus, device, None, out)?;
    let mut client = open(bus, &board)?;
    let target = flash_op::prepare(&mut client, storage)?;
    let sectors = target.loader.default_command_sectors();
    let mut io = SectorIo::new(&mut client, sectors);
    let (report, read_wall) = inspect::storage_gpt(&mut io, &target)?;
    let bootloader_sector = args
        .map
        .then(|| {
            let mut sector = vec![0u8; 512];
            io.read(inspect::BOOTLOADER_OFFSET, &mut sector).ok()?;
            Some(sector)
        })
        .flatten();
    if read_wall {
        out.event(Event::Warning {
            message: "this loader answers reads past 32 MiB with 0xCC (a known limitation of some Rockchip vendor loaders), so the backup GPT at the end of the storage could not be read; problems reported for it are not real".into(),
        });
    }
    let map = map(
        &args,
        &report,
        target.capacity,
        bootloader_sector.as_deref(),
    );
    out.result(
        &json!({ "storage": target.storage, "table": format!("{report}"), "read_wall": read_wall, "map": map }),
        || {
            format!(
                "{} of the board at {}:\n{report}{}",
                target.storage,
                board.port_path,
                map.as_deref().unwrap_or("")
            )
        },
    );
    Ok(())
}

/// The disk map `--map` asks for, when the table and the length are known.
fn map(
    args: &GptArgs,
    report: &GptReport,
    len: Option<u64>,
    bootloader_sector: Option<&[u8]>,
) -> Option<String> {
    if !args.map {
        return None;
    }
    let len = len.or(report.len)?;
    adapt::map_of(report, len, bootloader_sector).map(|m| format!("\n{m}"))
}

/// The image's sector where the BootROM looks for an ID block, when the image can be read
/// out of order (a raw file, an .xz with an index).
fn image_sector(source: &ImageSource) -> Option<Vec<u8>> {
    use rockusb_images::read_at::ReadAt;
    let image = source.random_reader()?;
    let mut sector = vec![0u8; 512];
    (&image)
        .read_exact_at(inspect::BOOTLOADER_OFFSET, &mut sector)
        .ok()?;
    Some(sector)
}
