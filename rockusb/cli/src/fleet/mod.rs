//! `rockusb fleet`: a provisioning station. Every board that shows up is booted, flashed
//! and verified in its own thread, and reset so it leaves the bus; the next board plugged
//! into the same port is taken in turn.
//!
//! - [`names`]: the fleet file naming ports;
//! - [`station`]: the record of every board taken, the report and per-hub figures;
//! - [`rows`]: one terminal row per board;
//! - [`serve`]: the status page (`--serve`).

mod names;
mod rows;
mod serve;
mod station;

use crate::flash::{self, FlashArgs};
use crate::output::{Output, Tap};
use anyhow::{Context, Result, bail};
use clap::Args;
use rockusb::client::{Client, ResetKind};
use rockusb::discovery::{BoardInfo, BoardMode, Bus};
use rockusb::ops::flash::journal::ImageIdentity;
use rockusb::ops::{Event, Observer};
use rockusb::source::ImageSource;
use rockusb::source::check::IntegrityCheck;
use rockusb::source::shared::SharedImage;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use names::FleetFile;
use station::{BoardRecord, Outcome, Station};

#[derive(Debug, Args)]
pub struct FleetArgs {
    #[command(flatten)]
    pub flash: FlashArgs,
    /// Stop after this many boards (default: run until interrupted, or --idle-timeout).
    #[arg(long)]
    pub count: Option<usize>,
    /// Stop when no board has been busy or waiting for this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    pub idle_timeout: u64,
    /// Leave each board in loader mode instead of resetting it after a good flash.
    #[arg(long)]
    pub no_reset: bool,
    /// A TOML file naming the station's ports ([ports] "1-1.2" = "slot-2"); the names
    /// appear in the output, the report and the page.
    #[arg(long, value_name = "FILE")]
    pub names: Option<PathBuf>,
    /// Write a JSON report when the station stops: per board its port, name, chip,
    /// storage size, image hash, bytes written and verified, duration, result and error;
    /// per hub its throughput.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Serve a read-only status page (one card per port) and its JSON (/status.json) at
    /// PORT on 127.0.0.1, or at HOST:PORT.
    #[arg(long, value_name = "[HOST:]PORT")]
    pub serve: Option<String>,
}

/// Decodes the image once for every board, then turns the per-board check off.
fn check_once(args: &mut FlashArgs, json: bool) -> Result<()> {
    if !args.no_check {
        let source = ImageSource::open(&args.image)?;
        if let Ok(check) = IntegrityCheck::start(&source, &args.image) {
            let checked = check.wait()?;
            Output::new(json).event(Event::ImageChecked {
                bytes: checked.bytes,
                seconds: checked.elapsed.as_secs_f64(),
            });
        }
        args.no_check = true;
    }
    Ok(())
}

/// Why the main loop wakes up before its poll interval: a board finished, the bus
/// changed, or the station was told to stop.
#[derive(Debug)]
enum Wake {
    Finished,
    Arrived,
    Stop,
}

/// How long the station waits for a bus that announces arrivals before looking anyway:
/// a safety net, not the way boards are found.
const WATCHED_RESCAN: Duration = Duration::from_secs(2);

/// Sets `stop` and wakes the loop on SIGINT or SIGTERM.
#[cfg(unix)]
fn on_stop_signal(stop: Arc<AtomicBool>, wake: Sender<Wake>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot catch Ctrl-C to stop the station cleanly")?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            stop.store(true, Ordering::SeqCst);
            let _ = wake.send(Wake::Stop);
        }
    });
    Ok(())
}

/// Sets `stop` and wakes the loop on Ctrl-C (SIGINT through the C runtime) or SIGTERM.
/// signal-hook's iterator is Unix only, so a thread watches the flag its handler sets.
#[cfg(windows)]
fn on_stop_signal(stop: Arc<AtomicBool>, wake: Sender<Wake>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let signalled = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, signalled.clone())
            .context("cannot catch Ctrl-C to stop the station cleanly")?;
    }
    std::thread::spawn(move || {
        while !signalled.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::SeqCst);
        let _ = wake.send(Wake::Stop);
    });
    Ok(())
}

/// A board being worked on.
struct Busy {
    index: usize,
    thread: JoinHandle<Option<String>>,
}

pub fn run(bus: &Bus, mut args: FleetArgs, json: bool) -> Result<()> {
    if args.flash.image.as_os_str() == "-" {
        bail!(
            "fleet flashes many boards from one image file; standard input can be read only once"
        );
    }
    if args.flash.resume {
        bail!(
            "fleet starts every board afresh; to finish one board's interrupted flash, run \
             `rockusb --device PORT flash --resume IMAGE` for it"
        );
    }
    if args.flash.to.is_some() {
        bail!(
            "fleet flashes boards over USB; write a local disk with `rockusb flash IMAGE --to DEVICE`"
        );
    }
    let names = match &args.names {
        Some(path) => FleetFile::load(path)?,
        None => FleetFile::default(),
    };
    if let Some(report) = &args.report {
        // Refused now rather than after an hour of flashing.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(report)
            .with_context(|| format!("cannot write the report file {}", report.display()))?;
    }
    let serve_at = args.serve.as_deref().map(serve::parse_addr).transpose()?;
    if args.flash.loader.is_none() {
        eprintln!("no --loader: only boards already running a loader will be flashed");
    }
    let identity = ImageIdentity::of_files(&args.flash.image, &[])
        .with_context(|| format!("cannot read {}", args.flash.image.display()))?;
    // One check of the image for the whole station, before the first board is written;
    // the boards then skip it.
    check_once(&mut args.flash, json)?;
    // A station keeps its boards at high speed: on a real xHCI controller a board that
    // switches to USB 3 comes back on the port's SuperSpeed twin, another port path, where
    // the station would take it for a new board and flash it twice.
    args.flash.usb2 = true;
    let station = Arc::new(Station::new(
        args.flash.image.display().to_string(),
        identity.digest,
    ));
    if let Some(addr) = serve_at {
        let bound = serve::start(addr, station.clone())?;
        Output::new(json).show(
            "serving",
            serde_json::json!({ "url": format!("http://{bound}/") }),
            || format!("status page: http://{bound}/"),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (wake_tx, wake) = mpsc::channel();
    on_stop_signal(stop.clone(), wake_tx.clone())?;
    // Hotplug (libusb) or the virtual bus's announcements; else the bus is polled.
    let arrivals = wake_tx.clone();
    let watched = bus.watch(Arc::new(move || {
        let _ = arrivals.send(Wake::Arrived);
    }));
    let rescan = if watched {
        WATCHED_RESCAN
    } else {
        bus.timing().station_poll_interval
    };

    // One decoder for every board (a seekable .xz); others decode their own copy.
    let shared = ImageSource::open(&args.flash.image)
        .ok()
        .filter(|_| args.flash.adapt.is_none())
        .and_then(|source| SharedImage::for_source(&source));
    let ctx = BoardContext {
        rows: (!json).then(rows::Rows::new),
        shared: shared.clone(),
        bus: bus.clone(),
        station: station.clone(),
        json,
        reset: !args.no_reset,
        wake: wake_tx,
    };
    let stopped = station_loop(bus, &args, &names, &ctx, &stop, (&wake, rescan))?;
    station.stop();
    let status = Output::new(json);
    if stopped {
        let left = station.interrupt(|b| unfinished_message(b, &args.flash.image));
        for board in &left {
            status.show(
                "unfinished",
                serde_json::json!({ "board": board.port, "board_name": board.name, "error": board.error }),
                || format!("{}: {}", label(board), board.error.as_deref().unwrap_or("")),
            );
        }
    }
    let mut report = station.report();
    report.decode = shared.as_ref().map(SharedImage::stats);
    if let Some(path) = &args.report {
        write_report(path, &report)?;
    }
    status.result(&report, || summary_text(&report));
    if stopped && (report.unfinished > 0 || report.failed > 0) {
        bail!(
            "the station was stopped: {} board(s) flashed, {} failed, {} unfinished",
            report.flashed,
            report.failed,
            report.unfinished
        );
    }
    if report.failed > 0 {
        bail!(
            "{} of {} board(s) failed",
            report.failed,
            report.boards_taken
        );
    }
    Ok(())
}

/// What every board thread shares.
#[derive(Clone)]
struct BoardContext {
    shared: Option<SharedImage>,
    /// The terminal's rows (text output only).
    rows: Option<rows::Rows>,
    bus: Bus,
    station: Arc<Station>,
    json: bool,
    reset: bool,
    wake: Sender<Wake>,
}

/// Takes boards until `--count` is reached, `--idle-timeout` passes, or the station is
/// stopped; returns whether it was stopped (then boards may still be working).
fn station_loop(
    bus: &Bus,
    args: &FleetArgs,
    names: &FleetFile,
    ctx: &BoardContext,
    stop: &AtomicBool,
    (wake, rescan): (&Receiver<Wake>, Duration),
) -> Result<bool> {
    // Ports with a board being flashed, and ports whose board is done but still attached.
    let mut busy: BTreeMap<String, Busy> = BTreeMap::new();
    let mut done_here: HashSet<String> = HashSet::new();
    let mut done = 0usize;
    let mut last_activity = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(true);
        }
        // Collect the boards that finished.
        let finished: Vec<String> = busy
            .iter()
            .filter(|(_, b)| b.thread.is_finished())
            .map(|(p, _)| p.clone())
            .collect();
        for port in finished {
            if let Some(board) = busy.remove(&port) {
                let error = board
                    .thread
                    .join()
                    .unwrap_or_else(|_| Some("the flashing thread panicked".into()));
                ctx.station.finish(board.index, error);
                done_here.insert(port);
                done += 1;
                last_activity = Instant::now();
            }
        }
        if args.count.is_some_and(|n| done >= n) && busy.is_empty() {
            return Ok(false);
        }
        // Ports being worked on are not probed: that would claim their boards.
        let boards = bus.scan_where(&|port| !busy.contains_key(port))?;
        // A port whose board has left the bus is free for the next board.
        done_here.retain(|port| boards.iter().any(|b| &b.port_path == port));
        let wanted = args
            .count
            .map_or(usize::MAX, |n| n.saturating_sub(busy.len() + done));
        let new_boards: Vec<BoardInfo> = boards
            .into_iter()
            .filter(|b| !busy.contains_key(&b.port_path) && !done_here.contains(&b.port_path))
            .filter(|b| match b.mode {
                BoardMode::Maskrom => args.flash.loader.is_some(),
                BoardMode::Loader => true,
                BoardMode::Unknown => false,
            })
            .take(wanted)
            .collect();
        for board in new_boards {
            let port = board.port_path.clone();
            let name = names.name(&port);
            let index = ctx.station.take(&port, name, board.soc);
            let (ctx2, flash_args) = (ctx.clone(), args.flash.clone());
            let name = name.map(str::to_string);
            let thread = std::thread::spawn(move || {
                let error = flash_one(&ctx2, index, &port, name.as_deref(), flash_args);
                let _ = ctx2.wake.send(Wake::Finished);
                error
            });
            busy.insert(board.port_path, Busy { index, thread });
            last_activity = Instant::now();
        }
        if !busy.is_empty() {
            last_activity = Instant::now();
        }
        if args.idle_timeout > 0 && last_activity.elapsed().as_secs() >= args.idle_timeout {
            return Ok(false);
        }
        // A finished board, a change on the bus or a stop request ends the wait early.
        let wait = match args.idle_timeout {
            0 => rescan,
            secs => rescan.min(Duration::from_secs(secs).saturating_sub(last_activity.elapsed())),
        };
        match wake.recv_timeout(wait) {
            Ok(Wake::Stop) => return Ok(true),
            Ok(Wake::Finished | Wake::Arrived) | Err(_) => {}
        }
        // Several signals at once need one scan.
        while let Ok(signal) = wake.try_recv() {
            if let Wake::Stop = signal {
                return Ok(true);
            }
        }
    }
}

/// Flashes the board at `port` and resets it, reporting through a labelled output whose
/// events also update the station's record; returns the error, if any.
fn flash_one(
    ctx: &BoardContext,
    index: usize,
    port: &str,
    name: Option<&str>,
    args: FlashArgs,
) -> Option<String> {
    let station = ctx.station.clone();
    let row = ctx.rows.as_ref().map(|rows| Arc::new(rows.add(port, name)));
    let row_tap = row.clone();
    let tap: Tap = Arc::new(move |line| {
        station.observe(index, line);
        if let Some(row) = &row_tap {
            row.observe(line);
        }
    });
    let lines = ctx.rows.as_ref().map(rows::Rows::lines);
    let mut out = Output::for_fleet(ctx.json, port, name, tap, lines);
    let result = flash::flash_shared(
        Some(&ctx.bus),
        Some(port),
        args,
        &mut out,
        ctx.shared.as_ref(),
    )
    .and_then(|()| {
        if ctx.reset {
            let mut client = Client::new(ctx.bus.open(port)?);
            client.reset(ResetKind::Reboot)?;
        }
        Ok(())
    });
    let error = result.err().map(|e| format!("{e:#}"));
    if let Some(row) = row {
        row.finish(if error.is_some() { "failed" } else { "flashed" });
    }
    error
}

/// The board's name and port, as lines show it.
fn label(board: &BoardRecord) -> String {
    match &board.name {
        Some(name) => format!("{name} ({})", board.port),
        None => board.port.clone(),
    }
}

/// What a board left mid-way is told: where it stopped, and how to finish it.
fn unfinished_message(board: &BoardRecord, image: &Path) -> String {
    let device = &board.port;
    match board.phase.as_str() {
        "boot" => "stopped while booting its loader, nothing written; power-cycle it into \
                   MaskROM and flash it again"
            .to_string(),
        "reset" => "flashed and verified, stopped before it was reset; reset it by hand \
                    (`rockusb --device PORT reset`)"
            .replace("PORT", device),
        phase => format!(
            "stopped during {phase}: the flash is incomplete and its bootloader not yet \
             written, so the board will not boot from it; its journal records how far it got, \
             and `rockusb --device {device} flash --resume {}` finishes it",
            image.display()
        ),
    }
}

/// Writes the report, replacing the file whole (a half-written report is never left).
fn write_report(path: &Path, report: &station::Report) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write the report {}", path.display()))
}

/// The summary printed at the end.
fn summary_text(report: &station::Report) -> String {
    let mut lines = vec![format!(
        "fleet: {} board(s) flashed, {} failed{}",
        report.flashed,
        report.failed,
        if report.unfinished > 0 {
            format!(", {} unfinished", report.unfinished)
        } else {
            String::new()
        }
    )];
    for b in &report.boards {
        match b.result {
            Outcome::Failed | Outcome::Unfinished => lines.push(format!(
                "  {}: {}",
                label(b),
                b.error.as_deref().unwrap_or("")
            )),
            _ => {}
        }
    }
    for hub in &report.hubs {
        lines.push(format!(
            "  hub {}: {} board(s), {:.1} MB/s together",
            hub.hub,
            hub.boards,
            hub.bytes_per_second / 1e6
        ));
        if let Some(warning) = &hub.warning {
            lines.push(format!("  warning: {warning}"));
        }
    }
    lines.join("\n")
}
