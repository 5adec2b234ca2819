//! Booting a loader: send the 0x471 then 0x472 areas to the BootROM with their delays,
//! then wait for the loader to re-enumerate on the same port and answer.

use super::{Event, Observer};
use crate::client::Client;
use crate::discovery::{BoardInfo, BoardMode, Bus, DiscoveryError};
use crate::protocol::{Area, MaskromUpload};
use crate::transport::TransportError;
use rockusb_loaders::raw::{MaskromStages, RawLoader};
use rockusb_loaders::soc::{self, ChipMismatch, Soc};
use rockusb_loaders::{EntryKind, LoaderContainer};
use std::time::{Duration, Instant};

/// One area upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootArea {
    pub area: Area,
    pub name: String,
    /// Bytes exactly as they go on the wire (already scrambled where the chip needs it).
    pub data: Vec<u8>,
    pub delay_ms: u32,
}

/// What to send to a board in MaskROM, in order.
#[derive(Debug, Clone)]
pub struct BootPlan {
    /// The SoC the loader is for, if known.
    pub soc: Option<&'static Soc>,
    /// The chip the loader names, as text (for messages when `soc` is unknown).
    pub chip: String,
    pub areas: Vec<BootArea>,
    /// The labelled stand-in loader, refused on a bus that does not accept it
    /// ([`Bus::accepts_standin_loader`]).
    pub standin: bool,
}

/// The 0x471 entries, then the 0x472 entries, as the loader stores them.
fn areas_of(stages: &dyn MaskromStages) -> Vec<BootArea> {
    [
        (EntryKind::Area471, Area::Sram),
        (EntryKind::Area472, Area::Dram),
    ]
    .into_iter()
    .flat_map(|(kind, area)| {
        stages
            .stage_entries(kind)
            .into_iter()
            .map(move |entry| BootArea {
                area,
                name: entry.name.clone(),
                data: entry.data.clone(),
                delay_ms: entry.delay_ms,
            })
    })
    .collect()
}

impl BootPlan {
    /// A loader container's areas, verbatim (container entries are stored in wire form,
    /// docs/protocol.md §2.4).
    pub fn from_container(container: &LoaderContainer) -> Self {
        BootPlan {
            soc: container.soc(),
            chip: container.chip_code().to_string(),
            areas: areas_of(container),
            standin: rockusb_loaders::standin::is_standin(container),
        }
    }

    /// A raw DDR init + usbplug/SPL pair, already made wire-ready for its SoC.
    pub fn from_raw(raw: &RawLoader) -> Self {
        BootPlan {
            soc: Some(raw.soc()),
            chip: raw.soc().name.to_string(),
            areas: areas_of(raw),
            standin: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(
        "the board at {port_path} is already running a loader; `boot` needs MaskROM. \
         Use it as it is, or run `rockusb reset --maskrom` (or hold the MaskROM/Recovery \
         button while powering on) to start over"
    )]
    NotInMaskrom { port_path: String },
    #[error(transparent)]
    ChipMismatch(#[from] ChipMismatch),
    #[error(
        "the board's USB PID {pid:#06x} is not in the SoC table, and the loader is for \
         {chip}; refusing to send a loader that may not match"
    )]
    UnknownBoard { pid: u16, chip: String },
    #[error(
        "this is the stand-in loader, made for the virtual board only: it cannot run on a \
         real board. Use a real loader for {soc} (e.g. rk3588_spl_loader_v1.16.113.bin from rkbin)"
    )]
    StandinOnRealBoard { soc: String },
    #[error("the loader has no {0} entry; it cannot boot a board from MaskROM")]
    MissingArea(Area),
    #[error(
        "the board refused area {area} ({name}): {source}. The BootROM refuses uploads after \
         a corrupt or partial one; power-cycle the board into MaskROM and run boot again"
    )]
    Upload {
        area: Area,
        name: String,
        #[source]
        source: TransportError,
    },
    #[error(
        "the loader did not come up on {port_path} within {seconds} s. The BootROM may have \
         discarded the upload (bad CRC) or the loader does not suit this board; power-cycle \
         the board into MaskROM and try again, or try another loader"
    )]
    LoaderTimeout { port_path: String, seconds: u64 },
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

/// Checks that the plan may be sent to `board`, before anything is sent.
pub fn check_plan(bus: &Bus, board: &BoardInfo, plan: &BootPlan) -> Result<(), BootError> {
    if board.mode == BoardMode::Loader {
        return Err(BootError::NotInMaskrom {
            port_path: board.port_path.clone(),
        });
    }
    let Some(board_soc) = soc::by_usb_pid(board.pid) else {
        return Err(BootError::UnknownBoard {
            pid: board.pid,
            chip: plan.chip.clone(),
        });
    };
    match plan.soc {
        Some(loader_soc) if loader_soc == board_soc => {}
        Some(loader_soc) => {
            return Err(BootError::ChipMismatch(ChipMismatch::WrongChip {
                loader_chip: loader_soc.name.to_string(),
                board: board_soc.name,
                board_pid: board.pid,
            }));
        }
        None => {
            return Err(BootError::ChipMismatch(ChipMismatch::UnknownLoaderChip {
                loader_chip: plan.chip.clone(),
                board: board_soc.name,
            }));
        }
    }
    if plan.standin && !bus.accepts_standin_loader() {
        return Err(BootError::StandinOnRealBoard {
            soc: board_soc.name.to_string(),
        });
    }
    for area in [Area::Sram, Area::Dram] {
        if !plan.areas.iter().any(|a| a.area == area) {
            return Err(BootError::MissingArea(area));
        }
    }
    Ok(())
}

/// Sends the plan to a board in MaskROM and waits for the loader. Returns the board as it
/// answers in loader mode.
pub fn boot(
    bus: &Bus,
    board: &BoardInfo,
    plan: &BootPlan,
    observer: &mut dyn Observer,
) -> Result<BoardInfo, BootError> {
    check_plan(bus, board, plan)?;
    let timing = bus.timing();
    let transport = bus.open(&board.port_path)?;
    let mut client = Client::new(transport);
    for area in &plan.areas {
        observer.event(Event::AreaStart {
            area: area.area.to_string(),
            name: area.name.clone(),
            bytes: area.data.len(),
        });
        let upload = MaskromUpload::new(area.area, &area.data);
        client
            .maskrom_upload(&upload)
            .map_err(|source| BootError::Upload {
                area: area.area,
                name: area.name.clone(),
                source,
            })?;
        observer.event(Event::AreaDone {
            area: area.area.to_string(),
            name: area.name.clone(),
            delay_ms: area.delay_ms,
        });
        if timing.area_delays {
            std::thread::sleep(Duration::from_millis(u64::from(area.delay_ms)));
        }
    }
    drop(client);
    observer.event(Event::WaitingForLoader {
        port_path: board.port_path.clone(),
    });
    let up = wait_for_loader(bus, &board.port_path, timing.loader_timeout)?;
    observer.event(Event::LoaderUp {
        port_path: up.port_path.clone(),
        address: up.address,
    });
    Ok(up)
}

/// Polls the bus until the board at `port_path` answers as a loader, as often as the bus
/// suggests ([`crate::discovery::BusTiming::loader_poll_interval`]).
pub fn wait_for_loader(
    bus: &Bus,
    port_path: &str,
    timeout: Duration,
) -> Result<BoardInfo, BootError> {
    let start = Instant::now();
    loop {
        if let Some(board) = bus
            .scan_port(port_path)?
            .filter(|b| b.mode == BoardMode::Loader)
        {
            return Ok(board);
        }
        if start.elapsed() >= timeout {
            return Err(BootError::LoaderTimeout {
                port_path: port_path.to_string(),
                seconds: timeout.as_secs(),
            });
        }
        std::thread::sleep(bus.timing().loader_poll_interval);
    }
}
