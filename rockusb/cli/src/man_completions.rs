//! Man pages and shell completion scripts, made from the clap definitions so they always
//! match the command.

use crate::args::Cli;
use crate::output::Output;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "rockusb", &mut stdout);
    stdout.flush().context("cannot write the completion script")
}

/// Writes a page per command into `folder`, or prints rockusb.1 without one.
pub fn man(folder: Option<&Path>, out: &Output) -> Result<()> {
    let Some(folder) = folder else {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .context("cannot render the man page")?;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&page)
            .and_then(|()| stdout.flush())
            .context("cannot write the man page")?;
        return Ok(());
    };
    std::fs::create_dir_all(folder)
        .with_context(|| format!("cannot create the folder {}", folder.display()))?;
    let mut root = Cli::command().disable_help_subcommand(true);
    // Building fills in the subcommands' full names (`rockusb-flash`), which name the pages.
    root.build();
    let mut written = Vec::new();
    write_pages(&root, folder, &mut written)?;
    out.result(&written, || {
        format!("wrote {} man pages to {}", written.len(), folder.display())
    });
    Ok(())
}

/// Writes the page of `command` and of each of its subcommands, recursively.
fn write_pages(command: &clap::Command, folder: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let page = clap_mangen::Man::new(command.clone());
    let path = page
        .generate_to(folder)
        .with_context(|| format!("cannot write a man page into {}", folder.display()))?;
    written.push(path);
    for subcommand in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(subcommand, folder, written)?;
    }
    Ok(())
}
