//! The USB 3 switch (docs/protocol.md §9.2): a loader whose capability has byte 1 bit 4
//! (the U-Boot-built usbplug) re-enumerates at SuperSpeed after command 0xBB, which takes a
//! verified flash from the ~40 MB/s of high speed towards the ~60 MB/s Rockchip measured.
//!
//! The switch is tried when the loader offers it, the board runs at high speed, the user
//! did not ask to stay there (`--usb2`) and the bus does not know the port to be high
//! speed only. The board then leaves the bus and comes back as a loader; rockusb waits for
//! it on the same port path. On Linux an xHCI port's SuperSpeed half sits on its own root
//! hub, with its own bus number, so a board that does not come back on the same port path
//! is also recognised as the one new loader with the same USB ids. Where SuperSpeed does
//! not come up (the port or the cable carries only USB 2.0), the loader falls back to high
//! speed and the job goes on there, with a warning.

use super::{Event, Observer};
use crate::client::{Client, CommandError};
use crate::discovery::{BoardInfo, BoardMode, Bus, DiscoveryError};
use crate::transport::Transport;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What happened to the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum SwitchOutcome {
    /// The board already ran at SuperSpeed.
    AlreadySuperSpeed,
    /// The loader has no USB 3 switch (or does not report its capabilities).
    NotOffered,
    /// `--usb2`: the loader offers the switch, it was not used.
    Declined,
    /// The bus knows the port to be high speed only.
    PortHighSpeedOnly,
    /// The board re-enumerated at SuperSpeed.
    Switched,
    /// The board re-enumerated, but came back at high speed.
    FellBack,
}

/// The board after [`switch_if_offered`]: as it answers now (its address, perhaps its port
/// path, changed), a client on it, and what happened.
pub struct Connected {
    pub board: BoardInfo,
    pub client: Client<Box<dyn Transport>>,
    pub outcome: SwitchOutcome,
}

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("cannot ask the loader for its capabilities: {0}")]
    Capability(CommandError),
    #[error(
        "the USB 3 switch (command 0xBB) failed: {0}. Run again with --usb2 to stay at high speed"
    )]
    Command(CommandError),
    #[error(
        "the board did not come back on {port_path} within {seconds} s after the USB 3 switch. \
         Replug it or power-cycle it into MaskROM, then run again with --usb2 to stay at high speed"
    )]
    Timeout { port_path: String, seconds: u64 },
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

/// Moves the board to SuperSpeed where the loader and the port allow it.
pub fn switch_if_offered(
    bus: &Bus,
    board: BoardInfo,
    mut client: Client<Box<dyn Transport>>,
    allow: bool,
    observer: &mut dyn Observer,
) -> Result<Connected, SwitchError> {
    let stay = |board, client, outcome| {
        Ok(Connected {
            board,
            client,
            outcome,
        })
    };
    if board.speed.is_superspeed() {
        return stay(board, client, SwitchOutcome::AlreadySuperSpeed);
    }
    let offered = match client.capability() {
        Ok(cap) => cap.switch_usb3(),
        Err(CommandError::Unsupported { .. }) => false,
        Err(e) => return Err(SwitchError::Capability(e)),
    };
    if !offered {
        return stay(board, client, SwitchOutcome::NotOffered);
    }
    if !allow {
        return stay(board, client, SwitchOutcome::Declined);
    }
    if bus.superspeed_port(&board.port_path) == Some(false) {
        observer.event(Event::Warning {
            message: format!(
                "the loader can switch to USB 3, but the port at {} is USB 2.0 only: staying at \
                 high speed (a USB 3 port and cable would be faster)",
                board.port_path
            ),
        });
        return stay(board, client, SwitchOutcome::PortHighSpeedOnly);
    }
    let others: Vec<String> = bus
        .scan()?
        .into_iter()
        .map(|b| b.port_path)
        .filter(|p| *p != board.port_path)
        .collect();
    client.switch_usb3().map_err(SwitchError::Command)?;
    drop(client);
    observer.event(Event::WaitingForLoader {
        port_path: board.port_path.clone(),
    });
    let up = wait_after_switch(bus, &board, &others, bus.timing().loader_timeout)?;
    observer.event(Event::LoaderUp {
        port_path: up.port_path.clone(),
        address: up.address,
    });
    let outcome = if up.speed.is_superspeed() {
        SwitchOutcome::Switched
    } else if up.address == board.address && up.port_path == board.port_path {
        observer.event(Event::Warning {
            message: "the loader accepted the USB 3 switch but did not leave the bus: staying \
                      at high speed (--usb2 skips the switch)"
                .into(),
        });
        SwitchOutcome::FellBack
    } else {
        observer.event(Event::Warning {
            message: format!(
                "the loader switched to USB 3 but came back at {}: the port or the cable \
                 carries only USB 2.0 (use a USB 3 port and cable, or --usb2 to skip the switch)",
                up.speed
            ),
        });
        SwitchOutcome::FellBack
    };
    // As the caller's own client did: a board that drops off the bus later is found again
    // on its (new) port path.
    let client = Client::new(Box::new(bus.open_reattaching(&up.port_path)?) as Box<dyn Transport>);
    Ok(Connected {
        board: up,
        client,
        outcome,
    })
}

/// Waits for the board to answer again as a loader after the switch: at its port path with
/// a new address, or as the one new loader with its USB ids at a port path that was not on
/// the bus before (the SuperSpeed root hub of an xHCI controller).
fn wait_after_switch(
    bus: &Bus,
    before: &BoardInfo,
    others: &[String],
    timeout: Duration,
) -> Result<BoardInfo, SwitchError> {
    let start = Instant::now();
    // A board that has not left the bus yet still answers at its old address.
    let is_back = |b: &BoardInfo| b.mode == BoardMode::Loader && b.address != before.address;
    loop {
        let boards = bus.scan()?;
        if let Some(b) = boards
            .iter()
            .find(|b| b.port_path == before.port_path && is_back(b))
        {
            return Ok(b.clone());
        }
        let new: Vec<&BoardInfo> = boards
            .iter()
            .filter(|b| {
                b.port_path != before.port_path
                    && !others.contains(&b.port_path)
                    && (b.vid, b.pid) == (before.vid, before.pid)
                    && b.mode == BoardMode::Loader
            })
            .collect();
        if let [one] = new.as_slice() {
            return Ok((*one).clone());
        }
        if start.elapsed() >= timeout {
            // A loader that reports the switch but never leaves the bus is still usable
            // where it is.
            if let Some(b) = boards.iter().find(|b| {
                b.port_path == before.port_path
                    && b.address == before.address
                    && b.mode == BoardMode::Loader
            }) {
                return Ok(b.clone());
            }
            return Err(SwitchError::Timeout {
                port_path: before.port_path.clone(),
                seconds: timeout.as_secs(),
            });
        }
        std::thread::sleep(bus.timing().loader_poll_interval);
    }
}
