//! Turning operation events into progress bars (text) or NDJSON lines (`--json`).

use crate::ops::{Event, Observer};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::Write;

/// Prints events for a person (stderr) or as JSON lines (stdout).
pub struct Output {
    json: bool,
    bar: Option<ProgressBar>,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json, bar: None }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints a final result: a JSON object in JSON mode, else the text.
    pub fn result<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        if self.json {
            let line = serde_json::json!({ "event": "result", "result": value });
            println!("{line}");
        } else {
            let text = text();
            if !text.is_empty() {
                println!("{text}");
            }
        }
    }

    fn bar(total: u64, phase: &str) -> ProgressBar {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(phase.to_string());
        bar
    }
}

impl Observer for Output {
    fn event(&mut self, event: Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(&event) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
            return;
        }
        match event {
            Event::AreaStart { area, name, bytes } => {
                eprintln!("sending {name} ({bytes} bytes) to area {area}")
            }
            Event::AreaDone { .. } => {}
            Event::WaitingForLoader { port_path } => {
                eprintln!("waiting for the loader on {port_path}")
            }
            Event::LoaderUp { port_path, address } => {
                eprintln!("loader is up on {port_path} (address {address})")
            }
            Event::PhaseStart { phase, total_bytes } => {
                self.bar = Some(Self::bar(total_bytes, &phase));
            }
            Event::Progress { done_bytes, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(done_bytes);
                }
            }
            Event::PhaseDone {
                phase,
                bytes,
                seconds,
            } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                let rate = if seconds > 0.0 {
                    bytes as f64 / seconds / 1e6
                } else {
                    0.0
                };
                eprintln!("{phase}: {bytes} bytes in {seconds:.2} s ({rate:.1} MB/s)");
            }
            Event::WriteTotals {
                written_bytes,
                skipped_bytes,
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!(
                        "write (written {}, skipped {})",
                        indicatif::HumanBytes(written_bytes),
                        indicatif::HumanBytes(skipped_bytes)
                    ));
                }
            }
            Event::Warning { message } => eprintln!("warning: {message}"),
        }
    }
}
