//! One [`VirtualBoard`] per board per process, shared by every device and handle that
//! refers to it — like a real device, which is one thing however many handles a program
//! opens. Between processes the board's files carry its state: each lookup re-reads them
//! (`reload`), so a `db` in one run is seen by the `wl` of the next.

use crate::config::{LinkSetting, ShimConfig};
use crate::guard::lock;
use rockusb_virtual::{BoardConfig, VirtualBoard};
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

pub type SharedBoard = Arc<Mutex<VirtualBoard>>;

fn boards() -> &'static Mutex<HashMap<PathBuf, SharedBoard>> {
    static BOARDS: OnceLock<Mutex<HashMap<PathBuf, SharedBoard>>> = OnceLock::new();
    BOARDS.get_or_init(Default::default)
}

/// The board called `name`, opened (or created) on first use and brought up to date
/// with its files.
pub fn board(config: &ShimConfig, name: &str) -> io::Result<SharedBoard> {
    let dir = config.bus.board_dir(name);
    let mut boards = lock(boards());
    if let Some(board) = boards.get(&dir) {
        lock(board).reload()?;
        return Ok(Arc::clone(board));
    }
    let mut board = open_or_create(config, name)?;
    if let LinkSetting::Set(link) = config.link {
        if board.config().link != link {
            board.set_link(link)?;
        }
    }
    let board = Arc::new(Mutex::new(board));
    boards.insert(dir, Arc::clone(&board));
    Ok(board)
}

/// Opens the board, creating it first (with the configured personality) if it is new.
fn open_or_create(config: &ShimConfig, name: &str) -> io::Result<VirtualBoard> {
    let Some(personality) = config.personality else {
        return config.bus.board(name);
    };
    // The place the virtual bus gives the board (1-1, 1-2, 1-3.1 behind a hub, …), so
    // the CLI's `--virtual` sees the same port path.
    let Some(board) = config.bus.new_board_config(name) else {
        return config.bus.board(name); // reports the unknown name
    };
    config.bus.open_or_place(
        name,
        BoardConfig {
            personality,
            ..board
        },
    )
}
