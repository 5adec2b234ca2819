//! Turning operation events into progress bars (text) or NDJSON lines (`--json`).

use indicatif::{ProgressBar, ProgressStyle};
use rockusb::ops::{Event, Observer, Phase};
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;

/// Receives every event and result an output gives, as the JSON line `--json` would print
/// (board label included), whatever the output mode: how `fleet` follows its boards.
pub type Tap = Arc<dyn Fn(&serde_json::Value) + Send + Sync>;

/// Where a labelled output's text lines go instead of stderr.
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Prints events for a person (stderr) or as JSON lines (stdout).
pub struct Output {
    json: bool,
    bar: Option<ProgressBar>,
    /// The board this output speaks for when several work at once (`fleet`): JSON lines
    /// carry it as `"board"`, text lines start with it, and there are no progress bars.
    label: Option<String>,
    /// The name the fleet file gives the board, shown beside its label.
    name: Option<String>,
    tap: Option<Tap>,
    /// Where text lines go instead of stderr (the fleet's rows of progress bars).
    lines: Option<LineSink>,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output {
            json,
            bar: None,
            label: None,
            name: None,
            tap: None,
            lines: None,
        }
    }

    /// An output for one of several boards working at once.
    pub fn labelled(json: bool, label: &str) -> Self {
        Output {
            label: Some(label.to_string()),
            ..Output::new(json)
        }
    }

    /// A labelled output for a fleet board: its name (if any, `"board_name"` in JSON) on every line, every event
    /// handed to `tap`, and text lines sent to `lines` when given.
    pub fn for_fleet(
        json: bool,
        label: &str,
        name: Option<&str>,
        tap: Tap,
        lines: Option<LineSink>,
    ) -> Self {
        Output {
            name: name.map(str::to_string),
            tap: Some(tap),
            lines,
            ..Output::labelled(json, label)
        }
    }

    /// Tags a line with the board (and its name) when labelled.
    fn tagged(&self, mut value: serde_json::Value) -> serde_json::Value {
        if let (Some(label), Some(map)) = (&self.label, value.as_object_mut()) {
            map.insert("board".into(), label.clone().into());
            if let Some(name) = &self.name {
                map.insert("board_name".into(), name.clone().into());
            }
        }
        value
    }

    /// Hands a line to the tap, if any.
    fn to_tap(&self, value: &serde_json::Value) {
        if let Some(tap) = &self.tap {
            tap(&self.tagged(value.clone()));
        }
    }

    /// Prints one JSON line, tagged with the board when labelled.
    fn json_line(&self, value: serde_json::Value) {
        let value = self.tagged(value);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
    }

    /// Prints a line for a person on stderr, prefixed with the board when labelled.
    fn say(&self, text: &str) {
        let line = match (&self.label, &self.name) {
            (Some(label), Some(name)) => format!("[{name} {label}] {text}"),
            (Some(label), None) => format!("[{label}] {text}"),
            _ => text.to_string(),
        };
        match &self.lines {
            Some(lines) => lines(&line),
            None => eprintln!("{line}"),
        }
    }

    /// Shows something before the result: a JSON line `{"event": event, ...value}` in
    /// JSON mode, else the text on stderr.
    pub fn show(&self, event: &str, value: serde_json::Value, text: impl FnOnce() -> String) {
        let mut line = serde_json::json!({ "event": event });
        if let (Some(line), serde_json::Value::Object(fields)) = (line.as_object_mut(), value) {
            line.extend(fields);
        }
        self.to_tap(&line);
        if self.json {
            self.json_line(line);
        } else {
            self.say(&text());
        }
    }

    /// Something worth knowing that is neither a warning nor a result: a `note` event in
    /// JSON mode, a line on stderr otherwise.
    pub fn note(&self, text: &str) {
        self.show("note", serde_json::json!({ "message": text }), || {
            text.to_string()
        });
    }

    /// A warning, as the operations send them.
    pub fn warn(&mut self, message: &str) {
        self.event(Event::Warning {
            message: message.to_string(),
        });
    }

    /// Prints a final result: a JSON object in JSON mode, else the text.
    pub fn result<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        let line = serde_json::json!({ "event": "result", "result": value });
        self.to_tap(&line);
        if self.json {
            self.json_line(line);
        } else {
            let text = text();
            match (&self.label, &self.name, text.is_empty()) {
                (_, _, true) => {}
                (Some(label), Some(name), false) => println!("[{name} {label}] {text}"),
                (Some(label), None, false) => println!("[{label}] {text}"),
                (None, _, false) => println!("{text}"),
            }
        }
    }

    fn bar(total: u64, phase: Phase) -> ProgressBar {
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
        if self.tap.is_some() || self.json {
            if let Ok(value) = serde_json::to_value(&event) {
                self.to_tap(&value);
                if self.json {
                    self.json_line(value);
                }
            }
        }
        if self.json {
            return;
        }
        match event {
            Event::AreaStart { area, name, bytes } => {
                self.say(&format!("sending {name} ({bytes} bytes) to area {area}"))
            }
            Event::AreaDone { .. } => {}
            Event::ImageChecked { bytes, seconds } => self.say(&format!(
                "image checked before writing: {} decoded in {seconds:.1} s",
                rockusb_images::units::human_bytes(bytes)
            )),
            Event::Layout {
                display_name,
                reason,
                ..
            } => self.say(&format!("layout: {display_name} ({reason})")),
            Event::WaitingForLoader { port_path } => {
                self.say(&format!("waiting for the loader on {port_path}"))
            }
            Event::LoaderUp { port_path, address } => {
                self.say(&format!("loader is up on {port_path} (address {address})"))
            }
            Event::PhaseStart { phase, total_bytes } => {
                if self.label.is_none() {
                    self.bar = Some(Self::bar(total_bytes, phase));
                }
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
                self.say(&format!(
                    "{phase}: {bytes} bytes in {seconds:.2} s ({rate:.1} MB/s)"
                ));
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
            Event::Warning { message } => self.say(&format!("warning: {message}")),
            // Shown with the figures in the flash summary.
            Event::PartitionPlan(_) => {}
        }
    }
}
