//! The `nanopi-m6` command line: exactly the Talos overlay adapter's contract.
//! One argument, `get-options` or `install`; YAML on stdin; any failure is a message on
//! stderr and exit status 1 (the caller in `main` does the printing and exiting).

use crate::board::{LAYOUT, OVERLAY_NAME};
use crate::disk::WriteOutcome;
use crate::install::{self, InstallError};
use crate::options::{self, BoardOptions, OptionsError};
use crate::protocol::{self, OverlayOptions, PartitionOptions, ProtocolError};
use std::ffi::OsString;
use std::io::{Read, Write};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    // These two texts match the Go adapter word for word.
    #[error("missing command")]
    MissingCommand,
    #[error("unknown command: {0}")]
    UnknownCommand(String),
    #[error("reading stdin failed: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("writing stdout failed: {0}")]
    Stdout(#[source] std::io::Error),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Install(#[from] InstallError),
}

/// Runs one protocol command. `args` excludes the program name.
/// Warnings (unknown option names) go to `stderr`; the host shows stderr only when the
/// installer fails, but a person running the imager by hand sees them.
pub fn run(
    args: &[OsString],
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), CliError> {
    // Like the Go adapter, only the first argument is looked at.
    let command = args.first().ok_or(CliError::MissingCommand)?;
    let mut input = Vec::new();
    match command.to_str() {
        Some("get-options") => {
            stdin.read_to_end(&mut input).map_err(CliError::Stdin)?;
            get_options(&input, stdout, stderr)
        }
        Some("install") => {
            stdin.read_to_end(&mut input).map_err(CliError::Stdin)?;
            run_install(&input, stdout, stderr)
        }
        _ => Err(CliError::UnknownCommand(
            command.to_string_lossy().into_owned(),
        )),
    }
}

fn warn_unknown_options(extra: &protocol::ExtraOptions, stderr: &mut dyn Write) {
    if let Some(warning) = options::unknown_options_warning(extra) {
        // A warning that cannot be written is not worth failing the install for.
        let _ = writeln!(stderr, "{warning}");
    }
}

fn get_options(
    input: &[u8],
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), CliError> {
    let extra = protocol::decode_extra_options(input)?;
    warn_unknown_options(&extra, stderr);
    let options = BoardOptions::from_map(&extra)?;
    let reply = OverlayOptions {
        name: OVERLAY_NAME.to_owned(),
        kernel_args: options.kernel_args(),
        partition_options: PartitionOptions {
            offset: LAYOUT.gpt_skip_lbas,
        },
    };
    let yaml = protocol::encode_options(&reply)?;
    stdout
        .write_all(yaml.as_bytes())
        .map_err(CliError::Stdout)?;
    stdout.flush().map_err(CliError::Stdout)
}

fn run_install(
    input: &[u8],
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), CliError> {
    let request = protocol::decode_install_request(input)?;
    if let Some(extra) = &request.extra_options {
        warn_unknown_options(extra, stderr);
    }
    let report = install::install(&request)?;
    for warning in &report.dtb_warnings {
        // Like the options' warning: worth seeing in the install's log, not failing for.
        let _ = writeln!(stderr, "warning: {warning}");
    }
    // The host ignores stdout on install; it is a log for people running it by hand.
    let mut log = match report.bootloader {
        Some(outcome) => {
            let what = match outcome {
                WriteOutcome::Written => "wrote",
                WriteOutcome::AlreadyPresent => "already up to date:",
            };
            format!(
                "{what} u-boot-rockchip.bin ({} bytes) at byte {} of {}\n",
                report.bootloader_len,
                LAYOUT.bootloader_offset(),
                request.install_disk
            )
        }
        None => format!(
            "spi_boot: U-Boot runs from the SPI-NOR; {} left untouched\n",
            request.install_disk
        ),
    };
    for file in &report.dtb_files {
        log.push_str(&format!("installed DTB {}\n", file.display()));
    }
    if let Some(esp) = &report.dtb_skipped {
        log.push_str(&format!(
            "no ESP is mounted at {} (a Talos 1.13 install runs the overlay before partitioning); the DTB is installed by the next upgrade\n",
            esp.display()
        ));
    }
    stdout.write_all(log.as_bytes()).map_err(CliError::Stdout)
}
