//! The terminal in raw mode while the console runs: keys go to the board one by one, as
//! typed (Ctrl-C included), and nothing is echoed twice. The settings before are put back
//! when the guard is dropped, which is every way out of the console: the exit key, a
//! signal, an error, a panic.

use anyhow::{Context, Result};
use rustix::termios::{self, OptionalActions, Termios};
use std::io::IsTerminal;

/// Holds the terminal in raw mode until dropped.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Puts standard input's terminal into raw mode; `None` when standard input is not a
    /// terminal (a pipe from a script), which is left as it is.
    pub fn enter() -> Result<Option<Self>> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let saved = termios::tcgetattr(&stdin).context("cannot read the terminal's settings")?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Flush, &raw)
            .context("cannot put the terminal into raw mode")?;
        Ok(Some(RawTerminal { saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // Nothing better to do if this fails: the terminal is gone (SIGHUP) or `reset` fixes it.
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}
