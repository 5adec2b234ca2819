//! Flashing a disk image onto a board's storage: streamed, Talos-safe sparse, verified.
//!
//! The order of a flash, and why:
//! 1. The source is opened and checked before the board is touched (format by content,
//!    the .xz index for the exact size; see [`crate::source`]).
//! 2. The first 11 MiB of the image (the leading must-write region: MBR, GPT, bootloader)
//!    are decoded and the `images` pre-flight check runs on them: the image fits the
//!    storage, its GPT is sane, a bootloader sits where the layout puts it. Errors stop
//!    here, with nothing written. Everything in those 11 MiB is also planned and
//!    checked (decode errors, bmap checksums) before the first write.
//! 3. The bootloader's first sector on the storage is cleared, then the rest of the image
//!    is streamed (zero runs skipped outside must-write regions, or everything with
//!    `--full`, or the bmap's ranges), the device's old backup GPT is wiped, and the
//!    leading 11 MiB are written **last**. So a flash that stops part-way (a corrupt
//!    stream, a pulled cable) leaves no bootloader at all: the BootROM then comes up in
//!    MaskROM by itself, and running the same command again rewrites everything. An
//!    interrupted flash never leaves a new bootloader in front of half an image.
//! 4. Every run written is read back and compared by digest (unless `--no-verify`).

pub mod backup;
pub mod inspect;
pub mod pipeline;
pub mod sparse;
pub mod target;
pub mod verify;
pub mod writer;

#[cfg(test)]
mod test_board;

pub use sparse::PartitionReport;
pub use target::{LoaderKind, Target, TargetError, prepare};
pub use verify::VerifyOutcome;

use crate::client::Client;
use crate::ops::{Event, Observer};
use crate::protocol::StorageKind;
use crate::source::{Format, ImageSource};
use crate::transport::Transport;
use pipeline::{Chunk, Decoded, PlanHashConfig, Run, StreamFailure, ToWriter};
use rockusb_images::bmap::Bmap;
use rockusb_images::gpt::{GptReadOptions, GptReport};
use rockusb_images::plan::{PlanConfig, Planner};
use rockusb_images::preflight::{self, Finding, PreflightInput};
use rockusb_images::read_at::ReadAt;
use rockusb_images::units::human_bytes;
use rockusb_images::{BoardLayout, ByteRange, regions};
use serde::Serialize;
use std::io;
use std::sync::mpsc::TryRecvError;
use std::time::Instant;
use verify::Written;
use writer::{IoFailure, SectorIo};

/// Zero gaps shorter than this between two extents are written rather than skipped:
/// one command's fixed cost (~0.5 ms) buys ~20 KB of payload at USB 2.0 speed.
pub const SPARSE_MIN_GAP: u64 = 16 * 1024;
/// Memory for runs on their way to the writer: ~0.8 s of USB 2.0 link, enough to ride
/// out the decoder's bursts without holding the link idle.
pub const RUN_BUDGET: usize = 32 << 20;

/// Which bytes to write.
#[derive(Debug, Clone)]
pub enum FlashMode {
    /// Everything but the zero runs that lie in a file system's free space or outside
    /// every partition (the default; see [`rockusb_images::sparse`]).
    Sparse,
    /// Every byte (`--full`).
    Full,
    /// The bmap's ranges, each checked against its checksum, plus the must-write regions.
    Bmap(Box<Bmap>),
}

#[derive(Debug, Clone)]
pub struct FlashOptions<'a> {
    pub layout: &'a BoardLayout,
    pub mode: FlashMode,
    pub verify: bool,
    /// Sectors per write command; `None` for the loader's default.
    pub command_sectors: Option<u32>,
}

/// What a flash did.
#[derive(Debug, Clone, Serialize)]
pub struct FlashReport {
    pub image: String,
    pub format: Format,
    pub image_len: u64,
    pub storage: StorageKind,
    pub capacity: Option<u64>,
    pub bytes_written: u64,
    pub bytes_skipped: u64,
    pub commands: u64,
    pub command_sectors: u32,
    /// The end-of-storage range zeroed to remove the old backup GPT.
    pub wiped: Option<(u64, u64)>,
    pub verify: VerifyOutcome,
    /// Bytes read back while the writer waited for the pipeline (part of `verify`).
    pub verified_during_write: u64,
    pub warnings: Vec<String>,
    /// Per partition: file system, what decided its writes, bytes written and skipped
    /// (sparse flashes only).
    pub partitions: Vec<PartitionReport>,
    pub write_seconds: f64,
    /// Time the writer waited for the pipeline after its first write: the link idle
    /// because the CPU had nothing ready.
    pub writer_idle_seconds: f64,
    pub verify_seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error("the image cannot be flashed, nothing was written:\n{}", list(.0))]
    Preflight(Vec<Finding>),
    #[error("the image is damaged: {0}")]
    Stream(String),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(
        "the bmap describes an image of {bmap} bytes, but {image} is {actual} bytes: this bmap belongs to another image"
    )]
    BmapSize {
        bmap: u64,
        image: String,
        actual: u64,
    },
    #[error(
        "the image is longer than the storage: it reaches byte {end}, the storage holds {capacity} bytes ({})",
        human_bytes(*capacity)
    )]
    TooLarge { end: u64, capacity: u64 },
    #[error(
        "the image decoded to {actual} bytes, but {what} said {expected}: the file is damaged; download it again"
    )]
    LengthMismatch {
        expected: u64,
        actual: u64,
        what: &'static str,
    },
    #[error("the image's backup GPT (at its end) is damaged:\n{}", list(.0))]
    BackupGpt(Vec<String>),
    #[error("writing failed {0}")]
    Write(IoFailure),
    #[error("cannot read the image's first sectors: {0}")]
    Read(String),
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    #[error(
        "{cause}\nThe flash stopped after writing {} of the image (up to image offset {image_offset}). {state} Fix the cause, then run the same command again: it rewrites everything that matters.",
        human_bytes(*written)
    )]
    Interrupted {
        cause: Box<FlashError>,
        written: u64,
        image_offset: u64,
        state: &'static str,
    },
}

impl From<IoFailure> for FlashError {
    fn from(e: IoFailure) -> Self {
        FlashError::Write(e)
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn stream_failure(f: StreamFailure, source: &str, format: Format) -> FlashError {
    match f {
        StreamFailure::Decode { offset, error } => FlashError::Stream(format!(
            "{source}: the {format} data is corrupt or truncated at image byte {offset}: {error}; download it again"
        )),
        StreamFailure::Plan(e) => FlashError::Stream(format!("internal planning error: {e}")),
        StreamFailure::Bmap(e) => FlashError::Stream(e.to_string()),
    }
}

/// Image bytes held as a list of pieces (chunks, runs, the tail), read by offset.
struct Pieces<'a>(Vec<(u64, &'a [u8])>);

impl ReadAt for Pieces<'_> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut filled = 0usize;
        while filled < buf.len() {
            let at = offset + filled as u64;
            let piece = self
                .0
                .iter()
                .find(|(start, data)| *start <= at && at < start + data.len() as u64);
            let Some((start, data)) = piece else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("byte {at} is not held"),
                ));
            };
            let from = (at - start) as usize;
            let n = (data.len() - from).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&data[from..from + n]);
            filled += n;
        }
        Ok(())
    }
}

/// Progress and what has been done so far, for events and for the interrupted message.
struct WriteState {
    written: u64,
    skipped: u64,
    image_done: u64,
    started: bool,
    cleared_bootloader: bool,
    records: Vec<Written>,
    last_event: Instant,
}

impl WriteState {
    fn interrupted(&self, cause: FlashError) -> FlashError {
        if !self.started {
            return cause;
        }
        FlashError::Interrupted {
            cause: Box::new(cause),
            written: self.written,
            image_offset: self.image_done,
            state: if self.cleared_bootloader {
                "The bootloader on the storage was cleared first and is written last, so the board is not bootable now: it will start in MaskROM."
            } else {
                "The storage holds part of the image and is not bootable."
            },
        }
    }

    fn progress(&mut self, observer: &mut dyn Observer, force: bool) {
        if force || self.last_event.elapsed().as_millis() >= 100 {
            self.last_event = Instant::now();
            observer.event(Event::Progress {
                phase: "write".into(),
                done_bytes: self.image_done,
            });
            observer.event(Event::WriteTotals {
                written_bytes: self.written,
                skipped_bytes: self.skipped,
            });
        }
    }
}

/// Flashes `source` onto the storage `target` describes (see [`prepare`]).
pub fn flash<T: Transport>(
    client: &mut Client<T>,
    target: &Target,
    mut source: ImageSource,
    options: FlashOptions<'_>,
    observer: &mut dyn Observer,
) -> Result<FlashReport, FlashError> {
    let layout = options.layout;
    let name = source.name.clone();
    let format = source.format;
    let known_len = source.image_len;
    let raw_file = source.raw_file.take();
    if let (FlashMode::Bmap(bmap), Some(len)) = (&options.mode, known_len) {
        if bmap.image_size != len {
            return Err(FlashError::BmapSize {
                bmap: bmap.image_size,
                image: name,
                actual: len,
            });
        }
    }
    let command_sectors = options
        .command_sectors
        .unwrap_or_else(|| target.loader.default_command_sectors());
    let held_len = layout.must_write_prefix;

    // Decode the leading region before anything else.
    let xz_blocks = source.xz_blocks.take();
    let random_xz = xz_blocks.clone();
    let (input, spec) = source.into_parts();
    let (decoded, chunk_pool, mut threads) =
        pipeline::start_decode(input, spec, xz_blocks, held_len);
    let mut first: Vec<Chunk> = Vec::new();
    let mut first_len = 0u64;
    let mut ended: Option<u64> = None;
    while first_len < held_len {
        match decoded.recv() {
            Ok(Decoded::Chunk(c)) => {
                first_len += c.len as u64;
                first.push(c);
            }
            Ok(Decoded::End { len }) => {
                ended = Some(len);
                break;
            }
            Ok(Decoded::Failed(f)) => return Err(stream_failure(f, &name, format)),
            Err(_) => return Err(FlashError::Stream("the decoder stopped".into())),
        }
    }
    if first_len == 0 {
        return Err(FlashError::Stream(format!("{name} decodes to nothing")));
    }
    // A bmap knows the length too (a gzip or zstd stream does not say it up front).
    let bmap_len = match &options.mode {
        FlashMode::Bmap(bmap) => Some(bmap.image_size),
        _ => None,
    };
    let image_len = known_len.or(ended).or(bmap_len);

    // Pre-flight: on the raw file itself when there is one (its backup GPT is readable
    // now), else on the decoded start.
    let input = PreflightInput {
        layout,
        image_len,
        storage_len: target.capacity,
        check_backup_gpt: raw_file.is_some() || ended.is_some(),
    };
    let pieces = || Pieces(first.iter().map(|c| (c.offset, c.data())).collect());
    let checked = match &raw_file {
        Some(file) => preflight::preflight(file, input),
        None => preflight::preflight(pieces(), input),
    }
    .map_err(|e| FlashError::Read(e.to_string()))?;
    if !checked.may_flash() {
        return Err(FlashError::Preflight(checked.errors().cloned().collect()));
    }
    let mut warnings = Vec::new();
    for w in checked.warnings() {
        warnings.push(w.to_string());
        observer.event(Event::Warning {
            message: w.to_string(),
        });
    }
    if target.capacity.is_none() {
        let message = "the loader does not report the storage size (mainline U-Boot): whether the image fits is checked only while writing, and the old backup GPT at the end of the storage cannot be wiped".to_string();
        observer.event(Event::Warning {
            message: message.clone(),
        });
        warnings.push(message);
    }
    let gpt = (!checked.gpt.is_absent()).then_some(&checked.gpt);
    let must_write = regions::must_write(layout, gpt, image_len.unwrap_or(u64::MAX), None);

    // Plan and hash.
    let mut partitions = Vec::new();
    let (plan_config, bmap_verifier) = match &options.mode {
        FlashMode::Sparse => {
            let random = if ended.is_some() {
                sparse::RandomSource::Held(&first)
            } else if let Some(file) = &raw_file {
                sparse::RandomSource::Raw(file)
            } else if let Some(blocks) = random_xz {
                sparse::RandomSource::Xz(blocks)
            } else {
                sparse::RandomSource::Sequential(sparse::RandomSource::sequential_reason(
                    &name, format,
                ))
            };
            let skips = sparse::plan(&checked.gpt, &first, image_len, random);
            for p in &skips.partitions {
                let planned = PartitionReport::planned(p);
                observer.event(Event::PartitionPlan(planned.clone()));
                partitions.push(planned);
            }
            let forced = regions::merge_ranges(must_write.merged().into_iter().chain(skips.forced));
            (
                PlanConfig {
                    min_gap: SPARSE_MIN_GAP,
                    ..PlanConfig::sparse(forced)
                },
                None,
            )
        }
        FlashMode::Full => (PlanConfig::full(), None),
        FlashMode::Bmap(bmap) => (
            PlanConfig::mapped(bmap.mapped_byte_ranges(), must_write.merged()),
            Some(bmap.verifier()),
        ),
    };
    let planner = Planner::new(plan_config)
        .map_err(|e| FlashError::Stream(format!("internal planning error: {e}")))?;
    let mut io = SectorIo::new(client, command_sectors);
    let run_max = io.command_bytes();
    let (to_writer, recycler, more) = pipeline::start_plan_hash(
        first,
        ended,
        decoded,
        chunk_pool,
        PlanHashConfig {
            planner,
            bmap: bmap_verifier,
            held_len,
            run_max,
            run_pool: (RUN_BUDGET / run_max).max(2),
            surplus_chunks: pipeline::extra_buffers(held_len),
        },
    );
    threads.extend(more);

    observer.event(Event::PhaseStart {
        phase: "write".into(),
        // Unknown up front for gzip and zstd streams: the GPT's idea of the length.
        total_bytes: checked.image_len.unwrap_or(0),
    });
    let started_at = Instant::now();
    let mut state = WriteState {
        written: 0,
        skipped: 0,
        image_done: 0,
        started: false,
        cleared_bootloader: false,
        records: Vec::new(),
        last_event: Instant::now(),
    };
    let capacity = target.capacity.unwrap_or(u64::MAX);
    let bootloader = ByteRange::new(layout.bootloader_offset(), 512);
    // Clears the storage's bootloader before the first image byte goes out.
    let start = |io: &mut SectorIo<'_, T>, state: &mut WriteState| -> Result<(), FlashError> {
        if state.started {
            return Ok(());
        }
        state.started = true;
        if bootloader.end() <= held_len.min(image_len.unwrap_or(u64::MAX)) {
            io.write(bootloader.start, &[0u8; 512])?;
            state.cleared_bootloader = true;
        }
        Ok(())
    };
    let mut idle = std::time::Duration::ZERO;
    let mut verifier = options.verify.then(verify::Verifier::new);
    let end = loop {
        // Nothing to write yet: read back what was written instead of idling the link.
        let received = match to_writer.try_recv() {
            Ok(m) => Ok(m),
            Err(TryRecvError::Disconnected) => Err(()),
            Err(TryRecvError::Empty) => {
                if let Some(v) = verifier.as_mut().filter(|v| v.pending(&state.records)) {
                    v.step(&mut io, &state.records)
                        .map_err(|e| state.interrupted(e.into()))?;
                    continue;
                }
                let waiting = Instant::now();
                let m = to_writer.recv().map_err(|_| ());
                if state.started {
                    idle += waiting.elapsed();
                }
                m
            }
        };
        let msg = match received {
            Ok(m) => m,
            Err(_) => {
                return Err(state.interrupted(FlashError::Stream(
                    "the image pipeline stopped unexpectedly".into(),
                )));
            }
        };
        match msg {
            ToWriter::PrefixChecked => {
                start(&mut io, &mut state).map_err(|e| state.interrupted(e))?
            }
            ToWriter::Run(run) => {
                start(&mut io, &mut state).map_err(|e| state.interrupted(e))?;
                write_run(&mut io, &run, capacity, &mut state).map_err(|e| state.interrupted(e))?;
                state.image_done = run.image_done;
                state.skipped = run.skipped;
                recycler.recycle(run);
                state.progress(observer, false);
            }
            ToWriter::Progress {
                image_done,
                skipped,
            } => {
                state.image_done = image_done;
                state.skipped = skipped;
                state.progress(observer, false);
            }
            ToWriter::End(end) => break end,
            ToWriter::Failed(f) => {
                return Err(state.interrupted(stream_failure(f, &name, format)));
            }
        }
    };
    for t in threads {
        let _ = t.join();
    }
    start(&mut io, &mut state).map_err(|e| state.interrupted(e))?;

    // The whole image has gone by: check what only its end can tell, before the
    // leading region (bootloader, GPT) is written.
    let finish = |state: &mut WriteState,
                  io: &mut SectorIo<'_, T>|
     -> Result<Option<ByteRange>, FlashError> {
        if let Some(expected) = known_len.filter(|&l| l != end.len) {
            return Err(FlashError::LengthMismatch {
                expected,
                actual: end.len,
                what: if format == Format::Xz {
                    "its xz index"
                } else {
                    "its file size"
                },
            });
        }
        if let FlashMode::Bmap(bmap) = &options.mode {
            if bmap.image_size != end.len {
                return Err(FlashError::BmapSize {
                    bmap: bmap.image_size,
                    image: name.clone(),
                    actual: end.len,
                });
            }
        }
        if end.len > capacity {
            return Err(FlashError::TooLarge {
                end: end.len,
                capacity,
            });
        }
        let mut held_pieces: Vec<(u64, &[u8])> = end
            .held
            .iter()
            .map(|r| (r.offset, r.data.as_slice()))
            .collect();
        held_pieces.push((end.tail.0, &end.tail.1));
        let full_gpt = GptReport::read(
            Pieces(held_pieces),
            GptReadOptions {
                len: Some(end.len),
                ..GptReadOptions::default()
            },
        )
        .map_err(|e| FlashError::Read(e.to_string()))?;
        let new_damage: Vec<String> = full_gpt
            .problems
            .iter()
            .filter(|p| p.is_corruption() && !checked.gpt.problems.contains(p))
            .filter(|_| !checked.gpt.is_absent())
            .map(|p| p.to_string())
            .collect();
        if !new_damage.is_empty() {
            return Err(FlashError::BackupGpt(new_damage));
        }
        let gpt = (!full_gpt.is_absent()).then_some(&full_gpt);
        let wipe = regions::must_write(layout, gpt, end.len, target.capacity).wipe_after_image;
        if let Some(w) = wipe {
            let zeros = vec![0u8; w.len as usize];
            io.write(w.start, &zeros)?;
            state.records.push(Written {
                range: w,
                hash: xxhash_rust::xxh3::xxh3_128(&zeros),
            });
        }
        // The run holding the bootloader's first sector goes last of all.
        for run in end.held.iter().rev() {
            write_run(io, run, capacity, state)?;
        }
        Ok(wipe)
    };
    let wiped = finish(&mut state, &mut io).map_err(|e| state.interrupted(e))?;
    state.image_done = end.len;
    state.skipped = end.stats.bytes_skipped;
    state.progress(observer, true);
    let write_seconds = started_at.elapsed().as_secs_f64();
    observer.event(Event::PhaseDone {
        phase: "write".into(),
        bytes: state.written,
        seconds: write_seconds,
    });
    for (from, to) in &io.fallbacks {
        let message =
            format!("the loader refused {from}-sector commands; used {to}-sector commands instead");
        observer.event(Event::Warning {
            message: message.clone(),
        });
        warnings.push(message);
    }

    for p in &mut partitions {
        p.count(&state.records);
    }
    let verified_during_write = verifier.as_ref().map_or(0, |v| v.verified_bytes());
    let verify_start = Instant::now();
    let verify = match verifier {
        Some(v) => v.finish(&mut io, &state.records, observer)?,
        None => VerifyOutcome::Skipped,
    };
    if let VerifyOutcome::ReadWall {
        unverified_bytes, ..
    } = verify
    {
        let message = format!(
            "this loader answers every read that ends past 32 MiB (sector 65536) with 0xCC bytes, a known limitation of some Rockchip vendor loaders (writes are not affected): the {} written beyond it could not be read back. Everything below 32 MiB (bootloader and GPT included) was verified. To verify the rest, flash with a loader that reads the whole eMMC, such as the FriendlyELEC RK3588 usbplug",
            human_bytes(unverified_bytes)
        );
        observer.event(Event::Warning {
            message: message.clone(),
        });
        warnings.push(message);
    }
    Ok(FlashReport {
        image: name,
        format,
        image_len: end.len,
        storage: target.storage,
        capacity: target.capacity,
        bytes_written: state.written,
        bytes_skipped: end.stats.bytes_skipped,
        commands: io.commands,
        command_sectors: io.command_sectors(),
        wiped: wiped.map(|w| (w.start, w.len)),
        verify,
        verified_during_write,
        warnings,
        partitions,
        write_seconds,
        writer_idle_seconds: idle.as_secs_f64(),
        verify_seconds: if options.verify {
            verify_start.elapsed().as_secs_f64()
        } else {
            0.0
        },
    })
}

fn write_run<T: Transport>(
    io: &mut SectorIo<'_, T>,
    run: &Run,
    capacity: u64,
    state: &mut WriteState,
) -> Result<(), FlashError> {
    let range = run.range();
    if range.end() > capacity {
        return Err(FlashError::TooLarge {
            end: range.end(),
            capacity,
        });
    }
    io.write(range.start, &run.data)?;
    state.written += range.len;
    state.records.push(Written {
        range,
        hash: run.hash,
    });
    Ok(())
}
