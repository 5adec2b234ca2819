//! One console session: the port opened, the terminal in raw mode, the pump running.

use super::ConsoleArgs;
use super::exit_key::EXIT_KEY_TEXT;
use super::pump::Display;
use super::{log, ports, pump, raw_terminal};
use crate::output::Output;
use anyhow::{Result, anyhow};
use serde_json::json;
use serialport::{DataBits, FlowControl, Parity, SerialPort, StopBits};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs the console until the exit key, a signal or the port going away.
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
