//! The command line's arguments and subcommands (clap).

use crate::values::{StorageArg, WaitFor};
use crate::{adapt, console, flash, fleet, loader_cmd};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "rockusb",
    version,
    about = "Flash and recover Rockchip boards over USB (MaskROM and rockusb loaders)",
    after_help = "Without hardware, try the virtual NanoPi M6: rockusb --virtual nanopi-m6 list"
)]
pub struct Cli {
    /// The board to use, by USB port path (as `rockusb list` shows). Needed when several
    /// boards are attached.
    #[arg(long, short = 'd', global = true, value_name = "PORTPATH")]
    pub device: Option<String>,

    /// Use virtual boards instead of USB: a comma-separated list of names. Each is a
    /// NanoPi M6 that powers on in MaskROM, kept under ROCKUSB_VIRTUAL_DIR.
    #[arg(
        long = "virtual",
        global = true,
        env = "ROCKUSB_VIRTUAL",
        value_name = "NAMES"
    )]
    pub virtual_boards: Option<String>,

    /// Print newline-delimited JSON (events, then a result) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List attached Rockchip boards with their mode, SoC and port path.
    List,
    /// Wait until boards are attached (for scripts and fleets): by default one board in
    /// MaskROM.
    Wait {
        /// The mode to wait for.
        #[arg(long, value_enum, default_value_t = WaitFor::Maskrom)]
        mode: WaitFor,
        /// How many boards to wait for.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Send a loader to a board in MaskROM (DDR init to 0x471, usbplug to 0x472) and wait
    /// for it to answer.
    Boot {
        /// The loader container (rkbin `*_loader_*.bin`, RKBOOT "BOOT" or "LDR "). Without
        /// it, the newest loader for the board's SoC on the search path is used
        /// (--loader-dir, ROCKUSB_LOADER_PATH, ~/.local/share/rockusb/loaders).
        loader: Option<PathBuf>,
        /// Extra folders to search for a loader when none is named.
        #[arg(long = "loader-dir")]
        loader_dirs: Vec<PathBuf>,
        /// A raw DDR init blob for area 0x471 (with --spl instead of a container).
        #[arg(long, requires = "spl", conflicts_with = "loader")]
        ddr: Option<PathBuf>,
        /// A raw usbplug or SPL blob for area 0x472 (with --ddr).
        #[arg(long, requires = "ddr", conflicts_with = "loader")]
        spl: Option<PathBuf>,
    },
    /// Write a disk image (e.g. a Talos .raw.xz) onto the board's storage: streamed,
    /// zero runs skipped where safe, verified by reading back.
    Flash(flash::FlashArgs),
    /// List local disks that `flash --to` can write: size, model, removable, mounted.
    Disks,
    /// A provisioning station: flash every board that shows up (in parallel), verify, and
    /// reset it; the next board on a freed port is taken in turn.
    Fleet(fleet::FleetArgs),
    /// Read the board's storage into a compressed image.
    Backup(flash::BackupArgs),
    /// Print the partition table of the board's storage or of an image file.
    Gpt(flash::GptArgs),
    /// Image files: make a generic Talos image into a board image.
    #[command(subcommand)]
    Image(adapt::ImageCommand),
    /// Show what the loader reports: chip, flash id and geometry, capabilities, storage.
    Info,
    /// Read sectors from the board's storage into a file.
    Read {
        /// First sector (512 bytes each).
        lba: u64,
        /// Number of sectors.
        count: u64,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write a file to the board's storage at a sector.
    Write {
        /// First sector (512 bytes each).
        lba: u64,
        /// The file; its size must be a whole number of sectors.
        file: PathBuf,
    },
    /// Erase sectors on the board's storage.
    Erase {
        /// First sector.
        lba: u64,
        /// Number of sectors.
        count: u64,
    },
    /// Reset the board: reboot (it boots from its storage, or falls back to MaskROM).
    Reset {
        /// Ask the loader to reset into MaskROM instead.
        #[arg(long)]
        maskrom: bool,
    },
    /// Show or switch the storage the loader reads and writes.
    Storage {
        /// The storage to switch to (emmc, sd, spinor, …); without it, show the current one.
        #[arg(value_enum, ignore_case = true)]
        kind: Option<StorageArg>,
    },
    /// Print udev rules that give the logged-in user access to Rockchip boards.
    Udev,
    /// Loader files: inspect, verify, extract, build, find; the virtual board's stand-in.
    #[command(subcommand)]
    Loader(loader_cmd::LoaderCommand),
    /// Write the loader's ID block (FlashHead/FlashData/FlashBoot) to sector 64 of the
    /// storage, so the board boots it by itself (rkdeveloptool's `ul`).
    UpgradeLoader {
        /// The loader container.
        loader: PathBuf,
    },
    /// A serial console on the board's debug UART through a USB serial adapter (1500000
    /// 8N1 by default). Exit with Ctrl-] then q.
    Console(console::ConsoleArgs),
    /// Print a shell completion script, e.g. `rockusb completions bash >
    /// ~/.local/share/bash-completion/completions/rockusb`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages, one per subcommand (rockusb.1, rockusb-flash.1, …); without
    /// --output, print rockusb.1.
    Man {
        /// The folder to write the pages to (created if missing).
        #[arg(long, short, value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Manage virtual boards (state, power-cycle).
    #[command(subcommand, name = "virtual")]
    Virtual(VirtualCommand),
}

#[derive(Debug, Subcommand)]
pub enum VirtualCommand {
    /// Show each virtual board's state.
    Status,
    /// Power-cycle a virtual board: back to MaskROM, storage kept.
    PowerCycle,
}
