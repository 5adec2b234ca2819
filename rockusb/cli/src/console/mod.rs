//! `rockusb console`: a serial console on the board's debug UART, through a USB serial
//! adapter (the NanoPi M6 talks at 1500000 8N1).
//!
//! Unix only for now: the raw terminal (termios) and the signal watching have no Windows
//! counterpart here yet, so on Windows the command says so.

#[cfg(unix)]
mod exit_key;
#[cfg(unix)]
mod lines;
#[cfg(unix)]
mod log;
#[cfg(unix)]
mod ports;
#[cfg(unix)]
mod pump;
#[cfg(unix)]
mod raw_terminal;
#[cfg(unix)]
mod session;

use std::path::PathBuf;

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

#[cfg(unix)]
pub use session::run;

/// The console needs a raw terminal and signal handling this build does not have yet.
#[cfg(not(unix))]
pub fn run(_: ConsoleArgs, _: bool) -> anyhow::Result<()> {
    Err(crate::platform::unsupported(
        "console",
        "use a serial terminal program (PuTTY, Tera Term) at 1500000 8N1",
    ))
}
