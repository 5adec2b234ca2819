//! One terminal row per board (text output only): port and name, phase, bytes, rate and
//! time left, with the boards' messages printed above the rows. Nothing is drawn when
//! stderr is not a terminal; the messages are printed as lines then.

use crate::output::LineSink;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;
use std::sync::Arc;

#[derive(Clone)]
pub struct Rows {
    multi: MultiProgress,
}

/// One board's row.
pub struct Row {
    bar: ProgressBar,
}

impl Rows {
    pub fn new() -> Self {
        Rows {
            multi: MultiProgress::new(),
        }
    }

    /// Prints text lines above the rows.
    pub fn lines(&self) -> LineSink {
        let multi = self.multi.clone();
        Arc::new(move |line: &str| {
            if multi.is_hidden() {
                eprintln!("{line}");
            } else {
                let _ = multi.println(line);
            }
        })
    }

    /// A row for the board at `port`, labelled with its name when it has one.
    pub fn add(&self, port: &str, name: Option<&str>) -> Row {
        let bar = self.multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:<24} {msg:<8} [{bar:24}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(match name {
            Some(name) => format!("{name} ({port})"),
            None => port.to_string(),
        });
        bar.set_message("boot");
        Row { bar }
    }
}

impl Row {
    /// Follows one of the board's events (the JSON line `--json` prints).
    pub fn observe(&self, line: &Value) {
        let number = |v: &Value| v.as_u64().unwrap_or(0);
        match line["event"].as_str().unwrap_or("") {
            "phase-start" => {
                self.bar.set_length(number(&line["total_bytes"]));
                self.bar.set_position(0);
                self.bar.reset_eta();
                self.bar
                    .set_message(line["phase"].as_str().unwrap_or("").to_string());
            }
            "progress" => self.bar.set_position(number(&line["done_bytes"])),
            "result" => self.bar.set_message("reset"),
            _ => {}
        }
    }

    /// The board is done: the row keeps its outcome.
    pub fn finish(&self, outcome: &str) {
        self.bar.set_message(outcome.to_string());
        self.bar.abandon();
    }
}
