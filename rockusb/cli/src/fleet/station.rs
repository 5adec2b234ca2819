//! What the station knows about its boards while it runs: one record per board taken,
//! updated from the same events the board's output prints, and turned into the report
//! (`--report`), the final summary and the live page's JSON.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// What one USB 2.0 high-speed hub carries in practice: its 480 Mbit/s shared by every
/// board behind it (the same 40 MB/s the virtual link model uses per link).
pub const HUB_BYTES_PER_SECOND: f64 = 40e6;
/// A hub moving at least this share of [`HUB_BYTES_PER_SECOND`] while several boards
/// behind it work is the bottleneck.
const HUB_SATURATED: f64 = 0.75;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Still being booted, flashed, verified or reset.
    Working,
    Flashed,
    Failed,
    /// The station was stopped (Ctrl-C) before the board was done.
    Unfinished,
}

/// One board the station took.
#[derive(Debug, Clone, Serialize)]
pub struct BoardRecord {
    pub port: String,
    pub name: Option<String>,
    /// The port path of the hub the board sits behind (`1-1` for `1-1.3`), if any.
    pub hub: Option<String>,
    pub chip: Option<String>,
    /// The storage's capacity, as the loader reports it.
    pub storage_bytes: Option<u64>,
    pub image_hash: String,
    /// boot, write, verify, reset or done.
    pub phase: String,
    /// Bytes done and expected in the current phase.
    pub phase_done_bytes: u64,
    pub phase_total_bytes: u64,
    /// Bytes per second in the current phase (of the last phase once done).
    pub rate: f64,
    pub bytes_written: u64,
    pub bytes_verified: u64,
    /// Seconds after the station started that the board was taken.
    pub started_at: f64,
    pub seconds: f64,
    pub result: Outcome,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    #[serde(skip)]
    taken: Option<Instant>,
    #[serde(skip)]
    phase_started: Option<Instant>,
    /// Seconds after the station started when the board stopped moving data.
    #[serde(skip)]
    ended_at: Option<f64>,
}

impl BoardRecord {
    /// Bytes that crossed the board's link (written, then read back).
    fn moved(&self) -> u64 {
        self.bytes_written + self.bytes_verified
    }
}

/// Throughput of the boards behind one hub.
#[derive(Debug, Clone, Serialize)]
pub struct HubFigures {
    pub hub: String,
    pub boards: usize,
    /// Bytes written and read back by its boards, over the time any of them was working.
    pub bytes: u64,
    pub seconds: f64,
    pub bytes_per_second: f64,
    /// The most of its boards working at once.
    pub most_at_once: usize,
    /// Set when the hub, not the boards, limited the flash.
    pub warning: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub image: String,
    /// xxh3-128 of the image file.
    pub image_hash: String,
    pub seconds: f64,
    pub boards_taken: usize,
    pub flashed: usize,
    pub failed: usize,
    pub unfinished: usize,
    /// Set when the station was stopped (Ctrl-C).
    pub interrupted: bool,
    /// Still running (the live page's snapshot).
    pub running: bool,
    pub boards: Vec<BoardRecord>,
    pub hubs: Vec<HubFigures>,
    /// How the image's decoding was shared: blocks decoded once, handed to boards, and
    /// decoded again by boards that fell behind (absent when each board decoded its own).
    pub decode: Option<rockusb::source::shared::SharedStats>,
}

struct Inner {
    boards: Vec<BoardRecord>,
    interrupted: bool,
    running: bool,
    /// Bumped on every change, for the page's long polls.
    version: u64,
}

/// The station's records, shared by the board threads, the main loop and the page.
pub struct Station {
    image: String,
    image_hash: String,
    started: Instant,
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl Station {
    pub fn new(image: String, image_hash: String) -> Self {
        Station {
            image,
            image_hash,
            started: Instant::now(),
            inner: Mutex::new(Inner {
                boards: Vec::new(),
                interrupted: false,
                running: true,
                version: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self, mut inner: MutexGuard<'_, Inner>) {
        inner.version += 1;
        drop(inner);
        self.changed.notify_all();
    }

    /// Records a board taken at `port`; returns its index for [`Station::observe`].
    pub fn take(&self, port: &str, name: Option<&str>, chip: Option<&str>) -> usize {
        let mut inner = self.lock();
        inner.boards.push(BoardRecord {
            port: port.to_string(),
            name: name.map(str::to_string),
            hub: hub_of(port),
            chip: chip.map(str::to_string),
            storage_bytes: None,
            image_hash: self.image_hash.clone(),
            phase: "boot".into(),
            phase_done_bytes: 0,
            phase_total_bytes: 0,
            rate: 0.0,
            bytes_written: 0,
            bytes_verified: 0,
            started_at: self.started.elapsed().as_secs_f64(),
            seconds: 0.0,
            result: Outcome::Working,
            error: None,
            warnings: Vec::new(),
            taken: Some(Instant::now()),
            phase_started: None,
            ended_at: None,
        });
        let index = inner.boards.len() - 1;
        self.changed(inner);
        index
    }

    /// Updates board `index` from one of its output's events (the JSON line `--json`
    /// prints).
    pub fn observe(&self, index: usize, line: &Value) {
        let mut inner = self.lock();
        let Some(board) = inner.boards.get_mut(index) else {
            return;
        };
        let now = Instant::now();
        let number = |v: &Value| v.as_u64().unwrap_or(0);
        match line["event"].as_str().unwrap_or("") {
            "area-start" => board.phase = "boot".into(),
            "phase-start" => {
                board.phase = line["phase"].as_str().unwrap_or("").to_string();
                board.phase_total_bytes = number(&line["total_bytes"]);
                board.phase_done_bytes = 0;
                board.phase_started = Some(now);
            }
            "progress" => {
                board.phase_done_bytes = number(&line["done_bytes"]);
                if let Some(started) = board.phase_started {
                    let secs = now.duration_since(started).as_secs_f64();
                    if secs > 0.0 {
                        board.rate = board.phase_done_bytes as f64 / secs;
                    }
                }
            }
            "phase-done" => {
                let bytes = number(&line["bytes"]);
                let seconds = line["seconds"].as_f64().unwrap_or(0.0);
                board.phase_done_bytes = board.phase_total_bytes.max(bytes);
                if seconds > 0.0 {
                    board.rate = bytes as f64 / seconds;
                }
                match line["phase"].as_str() {
                    Some("write") => board.bytes_written = bytes,
                    Some("verify") => board.bytes_verified = bytes,
                    _ => {}
                }
            }
            "warning" => {
                if let Some(message) = line["message"].as_str() {
                    board.warnings.push(message.to_string());
                }
            }
            "result" => {
                let result = &line["result"];
                board.bytes_written = number(&result["bytes_written"]);
                board.storage_bytes = result["capacity"].as_u64();
                let verify = &result["verify"];
                board.bytes_verified = match verify["verify"].as_str() {
                    Some("verified") => number(&verify["bytes"]),
                    Some("read-wall") => number(&verify["verified_bytes"]),
                    _ => 0,
                };
                board.ended_at = Some(self.started.elapsed().as_secs_f64());
                board.phase = "reset".into();
            }
            _ => return,
        }
        self.changed(inner);
    }

    /// Board `index` is done: flashed, or failed with `error`.
    pub fn finish(&self, index: usize, error: Option<String>) {
        let mut inner = self.lock();
        let at = self.started.elapsed().as_secs_f64();
        if let Some(board) = inner.boards.get_mut(index) {
            board.result = match error {
                None => Outcome::Flashed,
                Some(_) => Outcome::Failed,
            };
            board.error = error;
            board.phase = "done".into();
            board.seconds = board.taken.map_or(0.0, |t| t.elapsed().as_secs_f64());
            board.ended_at.get_or_insert(at);
        }
        self.changed(inner);
    }

    /// The station was stopped: every board still working is left unfinished, with
    /// `why` as its error.
    pub fn interrupt(&self, why: impl Fn(&BoardRecord) -> String) -> Vec<BoardRecord> {
        let mut inner = self.lock();
        inner.interrupted = true;
        let at = self.started.elapsed().as_secs_f64();
        let mut left = Vec::new();
        for board in inner
            .boards
            .iter_mut()
            .filter(|b| b.result == Outcome::Working)
        {
            board.result = Outcome::Unfinished;
            board.error = Some(why(board));
            board.seconds = board.taken.map_or(0.0, |t| t.elapsed().as_secs_f64());
            board.ended_at.get_or_insert(at);
            left.push(board.clone());
        }
        self.changed(inner);
        left
    }

    /// The station stopped taking boards.
    pub fn stop(&self) {
        let mut inner = self.lock();
        inner.running = false;
        self.changed(inner);
    }

    /// A snapshot of everything, as the report and the page show it.
    pub fn report(&self) -> Report {
        let inner = self.lock();
        let mut boards = inner.boards.clone();
        let now = self.started.elapsed().as_secs_f64();
        for b in boards.iter_mut().filter(|b| b.result == Outcome::Working) {
            b.seconds = b.taken.map_or(0.0, |t| t.elapsed().as_secs_f64());
        }
        let count = |o: Outcome| boards.iter().filter(|b| b.result == o).count();
        Report {
            image: self.image.clone(),
            image_hash: self.image_hash.clone(),
            seconds: now,
            boards_taken: boards.len(),
            flashed: count(Outcome::Flashed),
            failed: count(Outcome::Failed),
            unfinished: count(Outcome::Unfinished),
            interrupted: inner.interrupted,
            running: inner.running,
            hubs: hub_figures(&boards, now),
            boards,
            decode: None,
        }
    }
}

/// The hub a port sits behind: the path without its last port, when it has one below a
/// root port (`1-1.3` → `1-1`; `1-2` is on the root hub).
pub fn hub_of(port: &str) -> Option<String> {
    let (bus, ports) = port.split_once('-')?;
    let (hub, _) = ports.rsplit_once('.')?;
    Some(format!("{bus}-{hub}"))
}

/// Per hub: what its boards moved over the time any of them worked, and whether the hub
/// limited them.
fn hub_figures(boards: &[BoardRecord], now: f64) -> Vec<HubFigures> {
    let mut hubs: BTreeMap<&str, Vec<&BoardRecord>> = BTreeMap::new();
    for b in boards {
        if let Some(hub) = &b.hub {
            hubs.entry(hub).or_default().push(b);
        }
    }
    hubs.into_iter()
        .map(|(hub, members)| {
            let spans: Vec<(f64, f64)> = members
                .iter()
                .map(|b| (b.started_at, b.ended_at.unwrap_or(now)))
                .collect();
            let seconds = union_length(&spans);
            let most_at_once = most_overlapping(&spans);
            let bytes: u64 = members.iter().map(|b| b.moved()).sum();
            let rate = if seconds > 0.0 {
                bytes as f64 / seconds
            } else {
                0.0
            };
            let warning =
                (most_at_once >= 2 && rate >= HUB_SATURATED * HUB_BYTES_PER_SECOND).then(|| {
                    format!(
                        "the hub at {hub} was the bottleneck: its {} boards moved {:.1} MB/s \
                         together, near the ~{:.0} MB/s one USB 2.0 hub carries for all of \
                         them; spread the boards over root ports or hubs on separate \
                         controllers to flash them faster",
                        members.len(),
                        rate / 1e6,
                        HUB_BYTES_PER_SECOND / 1e6
                    )
                });
            HubFigures {
                hub: hub.to_string(),
                boards: members.len(),
                bytes,
                seconds,
                bytes_per_second: rate,
                most_at_once,
                warning,
            }
        })
        .collect()
}

/// The length of the union of the intervals.
fn union_length(spans: &[(f64, f64)]) -> f64 {
    let mut sorted = spans.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (start, end) in sorted {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map_or(0.0, |(s, e)| e - s)
}

/// The most intervals that overlap at one moment.
fn most_overlapping(spans: &[(f64, f64)]) -> usize {
    let mut edges: Vec<(f64, i32)> = spans.iter().flat_map(|&(s, e)| [(s, 1), (e, -1)]).collect();
    // Ends before starts at the same moment: back-to-back boards do not overlap.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hubs_and_overlaps() {
        assert_eq!(hub_of("1-1.3").as_deref(), Some("1-1"));
        assert_eq!(hub_of("2-4.1.2").as_deref(), Some("2-4.1"));
        assert_eq!(hub_of("1-2"), None);
        assert_eq!(union_length(&[(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]), 4.0);
        assert_eq!(most_overlapping(&[(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]), 2);
        assert_eq!(most_overlapping(&[(0.0, 1.0), (1.0, 2.0)]), 1);
    }

    #[test]
    fn records_follow_events_and_a_busy_hub_is_named() {
        let station = Station::new("img".into(), "abc".into());
        let boards: Vec<usize> = ["1-1.1", "1-1.2", "1-2"]
            .iter()
            .map(|p| station.take(p, None, Some("RK3588")))
            .collect();
        station.observe(
            boards[0],
            &json!({"event": "phase-start", "phase": "write", "total_bytes": 100}),
        );
        assert_eq!(station.report().boards[0].phase, "write");
        for &i in &boards {
            station.observe(
                i,
                &json!({"event": "result", "result": {"bytes_written": 40_000_000u64,
                    "capacity": 1000, "verify": {"verify": "verified", "bytes": 40_000_000u64}}}),
            );
        }
        station.finish(boards[0], None);
        station.finish(boards[1], Some("writing failed".into()));
        let left = station.interrupt(|b| format!("{} unfinished", b.port));
        assert_eq!(left.len(), 1);
        let report = station.report();
        assert_eq!(
            (report.flashed, report.failed, report.unfinished),
            (1, 1, 1)
        );
        assert_eq!(report.boards[2].error.as_deref(), Some("1-2 unfinished"));
        assert_eq!(report.boards[1].bytes_verified, 40_000_000);
        assert_eq!(report.boards[0].storage_bytes, Some(1000));
        // Two boards moved 160 MB behind hub 1-1 in (almost) no time: a bottleneck.
        assert_eq!(report.hubs.len(), 1);
        assert_eq!(report.hubs[0].hub, "1-1");
        assert_eq!(report.hubs[0].bytes, 160_000_000);
        assert!(report.hubs[0].warning.is_some(), "{:?}", report.hubs);
    }
}
