//! Where flash journals live, and what `flash` and `flash --resume` say about them.
//! The journal itself is [`rockusb::ops::flash::journal`].

use crate::flash::FlashArgs;
use crate::output::Output;
use anyhow::{Context, Result, bail};
use rockusb::discovery::BoardInfo;
use rockusb::ops::flash::Resumable;
use rockusb::ops::flash::Target;
use rockusb::ops::flash::journal::{BoardIdentity, ImageIdentity, JournalDir, Start};
use std::path::PathBuf;

/// Overrides where journals are kept (they go in its `journal` folder).
pub const ENV_STATE_DIR: &str = "ROCKUSB_STATE_DIR";

/// The folder of journals: `$ROCKUSB_STATE_DIR/journal`; for a virtual board, beside the
/// virtual boards (so trying the tool never touches a real board's journal); else the
/// user's state directory (`$XDG_STATE_HOME/rockusb/journal`, `~/.local/state/…`, or
/// `%LOCALAPPDATA%\rockusb\journal` on Windows).
pub fn journal_dir(board: &BoardInfo) -> Option<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = env(ENV_STATE_DIR) {
        return Some(PathBuf::from(dir).join("journal"));
    }
    if board.virtual_name.is_some() {
        return Some(rockusb_virtual::bus::default_root().join("journal"));
    }
    let state = env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .or_else(|| env("LOCALAPPDATA").map(PathBuf::from))?;
    Some(state.join("rockusb").join("journal"))
}

/// The image's identity for the journal, read before the board is touched; `None` for
/// standard input, which cannot be read a second time to resume.
pub fn image_identity(args: &FlashArgs) -> Result<Option<ImageIdentity>> {
    if args.image.as_os_str() == "-" {
        if args.resume {
            bail!(
                "--resume reads the image again from the start, which standard input cannot \
                 do: name the image file. Nothing was written."
            );
        }
        return Ok(None);
    }
    let extra: Vec<&std::path::Path> = [&args.board_files.uboot, &args.board_files.dtb]
        .into_iter()
        .flatten()
        .map(|p| p.as_path())
        .collect();
    ImageIdentity::of_files(&args.image, &extra)
        .map(Some)
        .with_context(|| format!("cannot read {}", args.image.display()))
}

/// Decides where the flash starts and says so: resumed from the journal, or from the
/// beginning (replacing the record of an interrupted flash, which is mentioned).
pub fn start(
    image: ImageIdentity,
    board: &BoardInfo,
    target: &Target,
    resume: bool,
    out: &mut Output,
) -> Result<Resumable> {
    let identity = BoardIdentity {
        port_path: board.port_path.clone(),
        soc: board.soc.map(String::from),
        flash_id: target.flash_id.clone(),
        capacity: target.capacity,
        storage: target.storage,
    };
    let Some(dir) = journal_dir(board) else {
        bail!(
            "no folder for the flash journal: set {ENV_STATE_DIR} (or HOME). Nothing was written."
        );
    };
    let dir = JournalDir::new(dir);
    let resume_below = match dir.start(&image, &identity, resume)? {
        Start::Resume { written_to } => {
            out.note(&format!(
                "resuming the interrupted flash of {} onto {identity}: what it wrote below image \
                 byte {written_to} is read back and kept where it matches",
                image.name
            ));
            written_to
        }
        Start::Fresh {
            replaced: Some(old),
        } => {
            out.note(&format!(
                "an interrupted flash of {} onto this board (written up to image byte {}) was \
                 recorded; flashing from the beginning replaces it (--resume would continue it)",
                old.image.name, old.written_to
            ));
            0
        }
        Start::Fresh { replaced: None } => {
            if resume {
                out.note(&format!(
                    "no interrupted flash is recorded for {identity}: flashing from the beginning"
                ));
            }
            0
        }
    };
    Ok(Resumable {
        dir,
        image,
        board: identity,
        resume_below,
    })
}
