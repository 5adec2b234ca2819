//! `flash`, `backup` and `gpt`: streaming a disk image onto a board's storage and back.

use super::output::Output;
use crate::discovery::Bus;
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct FlashArgs {
    /// The image: .raw, .raw.xz, .gz, .zst, or - for stdin.
    pub image: PathBuf,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Output file (.raw.xz).
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct GptArgs {
    /// An image file; without it, the board's storage.
    pub image: Option<PathBuf>,
}

pub fn flash(_bus: &Bus, _device: Option<&str>, _args: FlashArgs, _out: &mut Output) -> Result<()> {
    bail!("flash is not available in this build yet")
}

pub fn backup(
    _bus: &Bus,
    _device: Option<&str>,
    _args: BackupArgs,
    _out: &mut Output,
) -> Result<()> {
    bail!("backup is not available in this build yet")
}

pub fn gpt(
    _bus: Option<&Bus>,
    _device: Option<&str>,
    _args: GptArgs,
    _out: &mut Output,
) -> Result<()> {
    bail!("gpt is not available in this build yet")
}
