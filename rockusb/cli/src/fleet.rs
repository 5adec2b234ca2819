//! `rockusb fleet`: a provisioning station. Every board that shows up is booted, flashed
//! and verified in its own thread, and reset so it leaves the bus; the next board plugged
//! into the same port is taken in turn.

use crate::flash::{self, FlashArgs};
use crate::output::Output;
use anyhow::{Result, bail};
use clap::Args;
use rockusb::client::{Client, ResetKind};
use rockusb::discovery::{BoardMode, Bus};
use rockusb::ops::{Event, Observer};
use rockusb::source::ImageSource;
use rockusb::source::check::IntegrityCheck;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::thread::JoinHandle;
use std::time::Instant;

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

/// How one board went.
struct Outcome {
    port_path: String,
    error: Option<String>,
}

pub fn run(bus: &Bus, mut args: FleetArgs, json: bool) -> Result<()> {
    if args.flash.image.as_os_str() == "-" {
        bail!(
            "fleet flashes many boards from one image file; standard input can be read only once"
        );
    }
    if args.flash.to.is_some() {
        bail!(
            "fleet flashes boards over USB; write a local disk with `rockusb flash IMAGE --to DEVICE`"
        );
    }
    if args.flash.loader.is_none() {
        eprintln!("no --loader: only boards already running a loader will be flashed");
    }
    let status = Output::new(json);
    // One check of the image for the whole station, before the first board is written;
    // the boards then skip it.
    check_once(&mut args.flash, json)?;
    // A station keeps its boards at high speed: on a real xHCI controller a board that
    // switches to USB 3 comes back on the port's SuperSpeed twin, another port path, where
    // the station would take it for a new board and flash it twice.
    args.flash.usb2 = true;
    // Ports with a board being flashed, and ports whose board is done but still attached.
    let mut busy: BTreeMap<String, JoinHandle<Outcome>> = BTreeMap::new();
    let mut done_here: HashSet<String> = HashSet::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut last_activity = Instant::now();
    loop {
        // Collect the boards that finished.
        let finished: Vec<String> = busy
            .iter()
            .filter(|(_, h)| h.is_finished())
            .map(|(p, _)| p.clone())
            .collect();
        for port in finished {
            if let Some(handle) = busy.remove(&port) {
                let outcome = handle.join().unwrap_or_else(|_| Outcome {
                    port_path: port.clone(),
                    error: Some("the flashing thread panicked".into()),
                });
                done_here.insert(port);
                outcomes.push(outcome);
                last_activity = Instant::now();
            }
        }
        if args.count.is_some_and(|n| outcomes.len() >= n) && busy.is_empty() {
            break;
        }
        let boards = bus.scan()?;
        // A port whose board has left the bus is free for the next board.
        done_here.retain(|port| boards.iter().any(|b| &b.port_path == port));
        let started = busy.len() + outcomes.len();
        let wanted = args.count.map_or(usize::MAX, |n| n.saturating_sub(started));
        let new_boards: Vec<_> = boards
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
            let (bus, flash_args, reset) = (bus.clone(), args.flash.clone(), !args.no_reset);
            let label = port.clone();
            busy.insert(
                port.clone(),
                std::thread::spawn(move || flash_one(&bus, &label, flash_args, reset, json)),
            );
            last_activity = Instant::now();
        }
        if !busy.is_empty() {
            last_activity = Instant::now();
        }
        if args.idle_timeout > 0 && last_activity.elapsed().as_secs() >= args.idle_timeout {
            break;
        }
        std::thread::sleep(bus.timing().station_poll_interval);
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    let summary = json!({
        "boards": outcomes.len(),
        "flashed": outcomes.len() - failed.len(),
        "failed": failed
            .iter()
            .map(|o| json!({ "port_path": o.port_path, "error": o.error }))
            .collect::<Vec<_>>(),
    });
    status.result(&summary, || {
        let mut lines = vec![format!(
            "fleet: {} board(s) flashed, {} failed",
            outcomes.len() - failed.len(),
            failed.len()
        )];
        for o in &failed {
            lines.push(format!(
                "  {}: {}",
                o.port_path,
                o.error.as_deref().unwrap_or("")
            ));
        }
        lines.join("\n")
    });
    if !failed.is_empty() {
        bail!("{} of {} board(s) failed", failed.len(), outcomes.len());
    }
    Ok(())
}

/// Flashes the board at `port` and resets it, reporting through a labelled output.
fn flash_one(bus: &Bus, port: &str, args: FlashArgs, reset: bool, json: bool) -> Outcome {
    let mut out = Output::labelled(json, port);
    let result = flash::flash(Some(bus), Some(port), args, &mut out).and_then(|()| {
        if reset {
            let mut client = Client::new(bus.open(port)?);
            client.reset(ResetKind::Reboot)?;
        }
        Ok(())
    });
    Outcome {
        port_path: port.to_string(),
        error: result.err().map(|e| format!("{e:#}")),
    }
}
