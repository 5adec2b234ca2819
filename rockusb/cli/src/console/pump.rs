//! The pump between the terminal and the serial port: what the board sends goes to the
//! screen (or as JSON lines) and to the log; what is typed goes to the board, until the
//! exit key, a signal, or the port going away.
//!
//! Each source blocks in its own thread (the port, standard input, signals) and sends
//! events to the one loop that acts on them; the loop owns every output, so the log and the
//! screen never interleave half-lines. Threads still blocked when the loop ends die with
//! the process.

use super::exit_key::ExitKey;
use super::lines::{Line, LineSplitter};
use super::log::LogWriter;
use anyhow::{Context, Result, anyhow};
use serialport::SerialPort;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::SystemTime;

/// How received bytes are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// As they come, escape sequences and all: the terminal draws them.
    Terminal,
    /// One `{"event":"console-line","text":…,"time":…}` line per received line.
    Json,
}

/// Why the console stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    ExitKey,
    /// SIGINT, SIGTERM or SIGHUP: how a script (or a closed terminal) stops the console.
    Signal(i32),
    /// Standard output was closed (the reader of a pipe went away).
    OutputClosed,
}

impl Ending {
    pub fn describe(self) -> String {
        match self {
            Ending::ExitKey => "exit key".into(),
            Ending::Signal(SIGINT) => "SIGINT".into(),
            Ending::Signal(SIGTERM) => "SIGTERM".into(),
            Ending::Signal(SIGHUP) => "SIGHUP".into(),
            Ending::Signal(other) => format!("signal {other}"),
            Ending::OutputClosed => "standard output closed".into(),
        }
    }
}

enum Event {
    Received(Vec<u8>),
    PortFailed(std::io::Error),
    Typed(Vec<u8>),
    Signal(i32),
}

/// Runs the console on an open port until it ends; the caller has put the terminal in raw
/// mode, or not.
pub fn run(
    port: Box<dyn SerialPort>,
    port_name: &str,
    display: Display,
    log: Option<LogWriter>,
) -> Result<Ending> {
    let (events, inbox) = channel();
    let reader = port
        .try_clone()
        .with_context(|| format!("cannot read and write {port_name} at once"))?;
    spawn_port_reader(reader, events.clone());
    spawn_input_reader(events.clone());
    spawn_signal_watcher(events)?;
    Pump {
        port,
        port_name,
        display,
        screen_lines: LineSplitter::default(),
        log,
        exit_key: ExitKey::default(),
    }
    .run(inbox)
}

struct Pump<'a> {
    port: Box<dyn SerialPort>,
    port_name: &'a str,
    display: Display,
    /// Lines for `Display::Json`.
    screen_lines: LineSplitter,
    log: Option<LogWriter>,
    exit_key: ExitKey,
}

impl Pump<'_> {
    fn run(mut self, inbox: Receiver<Event>) -> Result<Ending> {
        let ending = self.pump(inbox);
        // The unfinished last line (often the prompt) belongs in the log and the JSON
        // stream too, whatever ended the console.
        let finished = self.finish();
        let ending = ending?;
        finished?;
        Ok(ending)
    }

    fn pump(&mut self, inbox: Receiver<Event>) -> Result<Ending> {
        // Every sender lives in a thread that loops forever or until it sends its last
        // event, so `recv` fails only if all of them have gone: treat that as the port gone.
        while let Ok(event) = inbox.recv() {
            match event {
                Event::Received(bytes) => {
                    let now = SystemTime::now();
                    if let Some(log) = &mut self.log {
                        log.received(&bytes, now)?;
                    }
                    if self.show(&bytes, now).is_err() {
                        return Ok(Ending::OutputClosed);
                    }
                }
                Event::Typed(bytes) => {
                    let typed = self.exit_key.feed(&bytes);
                    self.port.write_all(&typed.send).with_context(|| {
                        format!(
                            "cannot write to {} (was the adapter unplugged?)",
                            self.port_name
                        )
                    })?;
                    if typed.exit {
                        return Ok(Ending::ExitKey);
                    }
                }
                Event::Signal(signal) => return Ok(Ending::Signal(signal)),
                Event::PortFailed(error) => return Err(self.port_lost(error)),
            }
        }
        Err(anyhow!("{} stopped answering", self.port_name))
    }

    fn port_lost(&self, error: std::io::Error) -> anyhow::Error {
        anyhow!(error).context(format!(
            "lost the serial port {} (was the adapter unplugged? plug it back in and start \
             the console again)",
            self.port_name
        ))
    }

    fn show(&mut self, bytes: &[u8], now: SystemTime) -> std::io::Result<()> {
        match self.display {
            Display::Terminal => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Display::Json => self
                .screen_lines
                .push(bytes, now)
                .iter()
                .try_for_each(print_json_line),
        }
    }

    fn finish(&mut self) -> Result<()> {
        if self.display == Display::Json {
            if let Some(line) = self.screen_lines.finish() {
                // The reader may be gone already; nothing to tell it then.
                let _ = print_json_line(&line);
            }
        }
        match &mut self.log {
            Some(log) => log.finish(),
            None => Ok(()),
        }
    }
}

fn print_json_line(line: &Line) -> std::io::Result<()> {
    let event = serde_json::json!({
        "event": "console-line",
        "text": line.text,
        "time": line.timestamp(),
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{event}")?;
    out.flush()
}

fn spawn_port_reader(mut port: Box<dyn SerialPort>, events: Sender<Event>) {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        loop {
            let event = match port.read(&mut buffer) {
                Ok(0) => Event::PortFailed(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "the port closed",
                )),
                Ok(n) => Event::Received(buffer[..n].to_vec()),
                // The read timeout only bounds each wait; a quiet board is normal.
                Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    continue;
                }
                Err(e) => Event::PortFailed(e),
            };
            let last = matches!(event, Event::PortFailed(_));
            if events.send(event).is_err() || last {
                return;
            }
        }
    });
}

/// Standard input, raw bytes. At its end (a script's pipe closed) the console goes on
/// showing what the board sends: there is just nothing more to type.
fn spawn_input_reader(events: Sender<Event>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = [0u8; 1024];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => {
                    if events.send(Event::Typed(buffer[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    });
}

/// Turns SIGINT, SIGTERM and SIGHUP into an ordinary ending, so the terminal is restored
/// and the log flushed instead of the process dying on the spot.
fn spawn_signal_watcher(events: Sender<Event>) -> Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot watch for signals")?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let _ = events.send(Event::Signal(signal));
        }
    });
    Ok(())
}
