//! Choosing the bus and the board a command acts on, with errors that say what to do.

use anyhow::{Result, bail};
use rockusb::discovery::{BoardInfo, BoardMode, Bus};
use rockusb_virtual::{VirtualBus, bus as vbus};

/// The bus the command line names: the virtual boards of `--virtual`, else real USB.
pub fn bus(virtual_boards: Option<&str>) -> Result<Bus> {
    match virtual_boards {
        Some(names) => Ok(virtual_bus(names)?.into()),
        None => Ok(Bus::usb()?),
    }
}

/// The virtual boards `--virtual` (or `ROCKUSB_VIRTUAL`) names.
pub fn virtual_bus(names: &str) -> Result<VirtualBus> {
    let names = vbus::parse_names(names);
    if names.is_empty() {
        bail!("--virtual (or ROCKUSB_VIRTUAL) names no board; try --virtual nanopi-m6");
    }
    Ok(VirtualBus::new(vbus::default_root(), names))
}

pub fn describe(board: &BoardInfo) -> String {
    let soc = board.soc.unwrap_or("unknown SoC");
    let name = board
        .virtual_name
        .as_ref()
        .map(|n| format!(" (virtual {n})"))
        .unwrap_or_default();
    let problem = board
        .probe_error
        .as_ref()
        .map(|e| format!("  ({e})"))
        .unwrap_or_default();
    format!(
        "{}  {:04x}:{:04x}  {}  {}  {}{}{}",
        board.port_path,
        board.vid,
        board.pid,
        soc,
        board.mode,
        board.speed.short(),
        name,
        problem
    )
}

const NO_BOARD_HELP: &str = "\
no Rockchip board found.
- Put the board in MaskROM: hold its MaskROM/Recovery button while powering it on (the \
NanoPi M6's Recovery key sits near the eMMC socket), then connect its USB-C OTG port to \
this computer. A board with no valid bootloader enters MaskROM by itself.
- On Linux, without udev rules the board is invisible or inaccessible to non-root users: \
run `rockusb udev | sudo tee /etc/udev/rules.d/70-rockusb.rules` and replug.
- On Windows, libusb needs the WinUSB driver on the board: install it with Zadig for \
`2207:350b` (Rockchip's DriverAssistant driver is not libusb-compatible).
- No hardware? Use the virtual NanoPi M6: add `--virtual nanopi-m6`.";

/// The board the command acts on: `--device` if given, else the only one attached.
pub fn board(bus: &Bus, device: Option<&str>) -> Result<BoardInfo> {
    // Only the board named is opened to probe it: others may be in use (a fleet).
    if let Some(board) = device
        .map(|port| bus.scan_port(port))
        .transpose()?
        .flatten()
    {
        return Ok(board);
    }
    let boards = bus.scan()?;
    if let Some(port) = device {
        return match boards.iter().find(|b| b.port_path == port) {
            Some(b) => Ok(b.clone()),
            None if boards.is_empty() => bail!("no board at {port}: {NO_BOARD_HELP}"),
            None => bail!(
                "no board at {port}; attached boards:\n{}",
                list_lines(&boards)
            ),
        };
    }
    match boards.as_slice() {
        [] => bail!("{NO_BOARD_HELP}"),
        [one] => Ok(one.clone()),
        many => bail!(
            "{} boards are attached; choose one with --device PORTPATH:\n{}",
            many.len(),
            list_lines(many)
        ),
    }
}

fn list_lines(boards: &[BoardInfo]) -> String {
    boards
        .iter()
        .map(|b| format!("  {}", describe(b)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Refuses a board that is not running a loader, saying how to get there.
pub fn require_loader(board: &BoardInfo) -> Result<()> {
    match board.mode {
        BoardMode::Loader => Ok(()),
        BoardMode::Maskrom => bail!(
            "the board at {} is in MaskROM mode, which only accepts a loader download. \
             Run `rockusb boot <loader>` first (e.g. rk3588_spl_loader_v1.16.113.bin; \
             `rockusb loader standin` makes one for the virtual board)",
            board.port_path
        ),
        BoardMode::Unknown => match &board.probe_error {
            Some(error) => match error.hint() {
                Some(hint) => bail!(
                    "cannot open the board at {}: {error}. {hint}",
                    board.port_path
                ),
                None => bail!(
                    "cannot talk to the board at {}: {error}. Is another program \
                     (rkdeveloptool, upgrade_tool) using it?",
                    board.port_path
                ),
            },
            None => bail!(
                "cannot talk to the board at {}: it did not answer. Is another program \
                 (rkdeveloptool, upgrade_tool) using it?",
                board.port_path
            ),
        },
    }
}
