//! `rockusb console`: a serial console on the board's debug UART, through a USB serial
//! adapter (the NanoPi M6 talks at 1500000 8N1).

mod exit_key;
mod lines;
mod log;
mod ports;
mod pump;
mod raw_terminal;

use crate::output::Output;
use anyhow::{Result, anyhow};
use exit_key::EXIT_KEY_TEXT;
use pump::Display;
use serde_json::json;
use serialport::{DataBits, FlowControl, Parity, SerialPort, StopBits};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit: press Ctrl-] then q. Ctrl-] twice sends one Ctrl-] to the board; \
    every other key, Ctrl-C included, goes to the board.\n\
    With --json (or when standard input is not a terminal) the terminal is left as it is: \
    standard input is sent to the board as it comes, the exit key still works, and SIGINT or \
    SIGTERM stop the console cleanly."
)]
pub struct ConsoleArgs {
    /// The serial port, e.g. /dev/ttyUSB0. Without it, the one USB serial adapter attached
    /// (CP210x, CH340, FTDI, PL2303) is used, and named.
    pub port: Option<PathBuf>,
    /// The baud rate (always 8 data bits, no parity, 1 stop bit, no flow control).
    #[arg(long, default_value_t = 1_500_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub baud: u32,
    /// Also append what the board sends to FILE, each line prefixed with the time it began
    /// (RFC 3339, UTC).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

pub fn run(args: ConsoleArgs, json: bool) -> Result<()> {
    let out = Output::new(json);
    let port_path = match args.port {
        Some(path) => path,
        None => find_adapter(&out)?,
    };
    let port_name = port_path
        .to_str()
        .ok_or_else(|| anyhow!("the port name {} is not UTF-8", port_path.display()))?
        .to_string();
    let port = open(&port_name, args.baud)?;
    let log = args
        .log
        .as_deref()
        .map(log::LogWriter::create)
        .transpose()?;

    out.show(
        "console-open",
        json!({ "port": port_name, "baud": args.baud, "log": args.log }),
        || {
            format!(
                "connected to {port_name} at {} 8N1; exit with {EXIT_KEY_TEXT}",
                args.baud
            )
        },
    );
    let ending = {
        // Dropped, and the terminal restored, before anything more is printed.
        let _raw = if json {
            None
        } else {
            raw_terminal::RawTerminal::enter()?
        };
        let display = if json {
            Display::Json
        } else {
            Display::Terminal
        };
        pump::run(port, &port_name, display, log)
    };
    let ending = ending?;
    if json {
        out.result(
            &json!({ "port": port_name, "ended": ending.describe() }),
            String::new,
        );
    } else {
        // On stderr, like the greeting: stdout carries only what the board sent. On a new
        // line, as the board's last line (often a prompt) has no line end.
        eprintln!("\nconsole on {port_name} closed ({})", ending.describe());
    }
    Ok(())
}

/// The one USB serial adapter attached, said on stderr (or as an event).
fn find_adapter(out: &Output) -> Result<PathBuf> {
    let ports = ports::usb_serial_ports(Path::new("/sys"), Path::new("/dev"));
    let adapter = ports::pick(&ports)?;
    out.show("console-port", json!({ "adapter": adapter }), || {
        format!("using {adapter}, the only USB serial adapter attached")
    });
    Ok(adapter.device.clone())
}

fn open(port_name: &str, baud: u32) -> Result<Box<dyn SerialPort>> {
    serialport::new(port_name, baud)
        .data_bits(DataBits::Eight)
        .parity(Parity::None)
        .stop_bits(StopBits::One)
        .flow_control(FlowControl::None)
        // Bounds each wait for the board: long enough for a slow port to drain a paste.
        .timeout(Duration::from_secs(1))
        .open()
        .map_err(|error| open_error(port_name, baud, error))
}

/// Says what went wrong opening the port and what to do about it.
fn open_error(port_name: &str, baud: u32, error: serialport::Error) -> anyhow::Error {
    use serialport::ErrorKind;
    let advice = match error.kind() {
        ErrorKind::Io(std::io::ErrorKind::PermissionDenied) => format!(
            "permission denied on {port_name}: your user may not open serial ports. Add it to \
             the group that owns the port (`ls -l {port_name}` shows it: `dialout` on Debian \
             and Ubuntu, `uucp` on Arch), e.g. `sudo usermod -aG dialout $USER`, then log out \
             and in again"
        ),
        ErrorKind::Io(std::io::ErrorKind::NotFound) => format!(
            "{port_name} does not exist: is the adapter plugged in? `rockusb console` without \
             a port finds USB serial adapters"
        ),
        ErrorKind::NoDevice => format!(
            "{port_name} is busy: another program has it open (screen, minicom, picocom, \
             another rockusb console, ModemManager); close it and try again"
        ),
        _ => format!(
            "cannot open {port_name} at {baud} baud 8N1 (is it a serial port, and can the \
             adapter do {baud} baud?)"
        ),
    };
    anyhow!(error).context(advice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_names_the_dialout_group() {
        let error = open_error(
            "/dev/ttyUSB0",
            1_500_000,
            serialport::Error::new(
                serialport::ErrorKind::Io(std::io::ErrorKind::PermissionDenied),
                "Permission denied",
            ),
        );
        let message = error.to_string();
        assert!(
            message.contains("permission denied on /dev/ttyUSB0"),
            "{message}"
        );
        assert!(message.contains("dialout"), "{message}");
    }
}
