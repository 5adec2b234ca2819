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
//! 4. Every run written is read back and compared by digest (unless `--verify none`), or,
//!    with `--verify device`, checked by the loader against its write parity as it is
//!    written ([`device_verify`]).

pub mod backup;
pub mod device_verify;
pub mod inspect;
pub mod journal;
pub mod layout;
pub mod pipeline;
pub mod session;
pub mod sparse;
pub mod target;
pub mod verify;

pub use device_verify::VerifyMode;
pub use session::Resumable;
pub use sparse::PartitionReport;
pub use target::{LoaderKind, Target, TargetError, prepare};
pub use verify::VerifyOutcome;

use crate::client::Client;
use crate::ops::sector_io::{IoFailure, SectorIo};
use crate::ops::sectors::Sectors;
use crate::ops::{Event, Observer, Phase};
use crate::protocol::StorageKind;
use crate::source::{Format, ImageAt, ImageSource};
use crate::transport::Transport;
use pipeline::{Chunk, Decoded, Feed, PlanHashConfig, StreamEnd, StreamFailure};
use rockusb_images::bmap::{Bmap, RangeVerifier};
use rockusb_images::gpt::{GptReadOptions, GptReport};
use rockusb_images::plan::{PlanConfig, Planner};
use rockusb_images::preflight::{self, Finding, PreflightInput};
use rockusb_images::read_at::Windows;
use rockusb_images::units::human_bytes;
use rockusb_images::{BoardLayout, ByteRange, regions};
use serde::Serialize;
use session::Writer;
use std::sync::mpsc::Receiver;
use std::time::Instant;

/// Zero gaps shorter than this between two extents are written rather than skipped:
/// one command's fixed cost (~0.5 ms) buys ~20 KB of payload at USB 2.0 speed.
pub const SPARSE_MIN_GAP: u64 = 16 * 1024;
/// Memory for runs on their way to the writer: ~0.8 s of USB 2.0 link, enough to ride
/// out the decoder's bursts without holding the link idle.
pub const RUN_BUDGET: usize = 32 << 20;
/// The same for a board fed by a decoder it shares with others (a fleet,
/// [`crate::source::shared`]): the shared window already buffers decoded blocks for every
/// board, so each board's own runs need only cover a few commands, and a station's
/// memory grows slowly with its boards.
pub const SHARED_RUN_BUDGET: usize = 2 << 20;
/// The largest run such a board builds (and reads back at once): a command's fixed cost
/// (~0.5 ms) is still 2% of the 1 MiB's time on a USB 2.0 link.
pub const SHARED_RUN_MAX: usize = 1 << 20;

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
    pub verify: VerifyMode,
    /// Sectors per write command; `None` for the loader's default.
    pub command_sectors: Option<u32>,
    /// Keep a journal (and resume from one): `None` for a flash that cannot be resumed
    /// (an image from standard input).
    pub resumable: Option<Resumable>,
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
    /// The image offset a resumed flash started from (what was written below it was read
    /// back, and kept where it matched).
    pub resumed_from: Option<u64>,
    /// Bytes a resumed flash found already written and did not write again.
    pub kept_bytes: u64,
    /// Commands that failed and went through when sent again.
    pub retried_commands: u64,
    /// Times the board dropped off the bus and was found again on its port.
    pub reattached: u32,
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
    #[error("cannot ask the loader whether it checks write parity: {0}. Nothing was written")]
    Capability(crate::client::CommandError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(
        "{cause}\nThe whole image was written, bootloader included. To repair what differs, run the same command with --resume: it reads back every run, writes again those that differ, and verifies everything"
    )]
    Unverified { cause: verify::VerifyError },
    #[error(
        "{cause}\nThe flash stopped after writing {} of the image (up to image offset {image_offset}). {state} {next}",
        human_bytes(*written)
    )]
    Interrupted {
        cause: Box<FlashError>,
        written: u64,
        image_offset: u64,
        state: &'static str,
        /// What to run next.
        next: String,
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

/// Warnings for the report, each also sent as an event the moment it is known.
#[derive(Default)]
struct Warnings(Vec<String>);

impl Warnings {
    fn add(&mut self, observer: &mut dyn Observer, message: impl Into<String>) {
        let message = message.into();
        observer.event(Event::Warning {
            message: message.clone(),
        });
        self.0.push(message);
    }

    /// What the link went through: each command size the loader refused, and commands
    /// that failed once and went through when sent again.
    fn link_trouble<S: Sectors>(&mut self, io: &S, observer: &mut dyn Observer) {
        for (from, to) in io.fallbacks() {
            self.add(
                observer,
                format!(
                    "the loader refused {from}-sector commands; used {to}-sector commands instead"
                ),
            );
        }
        if io.retried() > 0 {
            self.add(
                observer,
                format!(
                    "{} command(s) failed and went through when sent again: the USB link is \
                     unreliable (a long or worn cable, a hub, a front-panel port?)",
                    io.retried()
                ),
            );
        }
    }
}

/// What the source says about the image before it is decoded.
struct ImageFacts {
    name: String,
    format: Format,
    /// The length the source promised up front (raw size, xz index).
    known_len: Option<u64>,
}

/// The decoded leading region, held until it has been checked.
struct Prefix {
    chunks: Vec<Chunk>,
    /// The image's length, when the stream ended inside the region.
    ended: Option<u64>,
}

/// What is known about the image before the first write.
struct Checked<'a> {
    image: ImageFacts,
    /// Best knowledge of the length: the source, the end of a short stream, or a bmap.
    image_len: Option<u64>,
    preflight: preflight::Preflight,
    must_write: regions::MustWrite,
    options: FlashOptions<'a>,
}

/// Flashes `source` onto the board storage `target` describes (see [`prepare`]), through
/// [`flash_to`].
pub fn flash<T: Transport>(
    client: &mut Client<T>,
    target: &Target,
    source: ImageSource,
    options: FlashOptions<'_>,
    observer: &mut dyn Observer,
) -> Result<FlashReport, FlashError> {
    let command_sectors = options
        .command_sectors
        .unwrap_or_else(|| target.command_sectors());
    let mut warnings = Warnings::default();
    let (verify, fallback) =
        device_verify::resolve(client, options.verify).map_err(FlashError::Capability)?;
    if let Some(why) = fallback {
        warnings.add(observer, why);
    }
    let mut io = SectorIo::new(client, command_sectors);
    if verify == VerifyMode::Device {
        io.set_write_parity();
    }
    let options = FlashOptions { verify, ..options };
    run(io, target, source, options, warnings, observer)
}

/// Flashes `source` through `io`: a board's storage ([`flash`]) or a local disk
/// ([`crate::local`]), which `target` describes. `options.command_sectors` is `io`'s
/// business.
///
/// The steps, in the crash-safe order the module documentation explains: decode and
/// check the leading region ([`receive_prefix`], [`check_prefix`]), decide what to write
/// ([`plan_writes`]), start the plan and hash stages, stream the runs ([`Writer::stream`]),
/// then the tail and the held leading region ([`write_tail`]), and read back what is left
/// to verify.
pub fn flash_to<S: Sectors>(
    io: S,
    target: &Target,
    source: ImageSource,
    options: FlashOptions<'_>,
    observer: &mut dyn Observer,
) -> Result<FlashReport, FlashError> {
    let mut warnings = Warnings::default();
    let options = if options.verify == VerifyMode::Device {
        warnings.add(
            observer,
            "--verify device: this storage has no loader to check writes on its side; verifying by reading back instead",
        );
        FlashOptions {
            verify: VerifyMode::Readback,
            ..options
        }
    } else {
        options
    };
    run(io, target, source, options, warnings, observer)
}

/// The flash itself, once the verification is settled (`options.verify` is what `io`
/// can do) and with the warnings found so far.
fn run<S: Sectors>(
    io: S,
    target: &Target,
    mut source: ImageSource,
    options: FlashOptions<'_>,
    mut warnings: Warnings,
    observer: &mut dyn Observer,
) -> Result<FlashReport, FlashError> {
    let (name, format, known_len) = (source.name.clone(), source.format, source.image_len);
    if let (FlashMode::Bmap(bmap), Some(len)) = (&options.mode, known_len) {
        check_bmap_len(bmap, &name, len)?;
    }
    let held_len = options.layout.must_write_prefix;
    let random_access = source.random_access.take();
    let xz_blocks = source.xz_blocks.take();
    let random_xz = xz_blocks.clone();
    let shared = source.shared.take();
    let (input, spec) = source.into_parts();
    let Feed {
        decoded,
        chunk_pool,
        mut threads,
        buffering,
    } = match shared {
        // Several boards, one decoder (crate::source::shared).
        Some(subscription) => subscription.start(held_len),
        None => pipeline::start_decode(input, spec, xz_blocks, held_len),
    };
    let describe = |f: StreamFailure| stream_failure(f, &name, format);

    let prefix = receive_prefix(&decoded, held_len, &name, &describe)?;
    let image = ImageFacts {
        name: name.clone(),
        format,
        known_len,
    };
    let checked = check_prefix(
        &prefix,
        random_access.as_ref(),
        image,
        target,
        options,
        &mut warnings,
        observer,
    )?;
    let random =
        sparse::RandomSource::choose(&prefix, random_access.as_ref(), random_xz, &name, format);
    let (plan_config, bmap_verifier, mut partitions) =
        plan_writes(&checked, &prefix.chunks, random, observer);
    let planner = Planner::new(plan_config)
        .map_err(|e| FlashError::Stream(format!("internal planning error: {e}")))?;

    let run_max = io.command_bytes().min(buffering.run_cap);
    let (to_writer, recycler, more) = pipeline::start_plan_hash(
        prefix.chunks,
        prefix.ended,
        decoded,
        chunk_pool,
        PlanHashConfig {
            planner,
            bmap: bmap_verifier,
            held_len,
            run_max,
            run_pool: (buffering.run_budget / run_max).max(2),
            surplus_chunks: buffering.surplus_chunks,
        },
    );
    threads.extend(more);

    observer.event(Event::PhaseStart {
        phase: Phase::Write,
        // Unknown up front for gzip and zstd streams: the GPT's idea of the length.
        total_bytes: checked.preflight.image_len.unwrap_or(0),
    });
    let started_at = Instant::now();
    let resumed_from = checked
        .options
        .resumable
        .as_ref()
        .map(|r| r.resume_below)
        .filter(|&below| below > 0);
    let mut writer = Writer::new(
        io,
        target.capacity.unwrap_or(u64::MAX),
        bootloader_sector(checked.options.layout, checked.image_len),
        checked.options.verify == VerifyMode::Readback,
        checked.options.resumable.clone(),
    );
    let end = writer.stream(&to_writer, &recycler, observer, &describe)?;
    for t in threads {
        let _ = t.join();
    }
    writer.begin().map_err(|e| writer.interrupted(e))?;
    let wiped =
        write_tail(&mut writer, &end, &checked, target).map_err(|e| writer.interrupted(e))?;
    writer.reached_end(end.len, end.stats.bytes_skipped, observer);
    let write_seconds = started_at.elapsed().as_secs_f64();
    observer.event(Event::PhaseDone {
        phase: Phase::Write,
        bytes: writer.written,
        seconds: write_seconds,
    });
    for p in &mut partitions {
        p.count(&writer.records);
    }

    let (verify, verified_during_write, verify_seconds) =
        read_back(&mut writer, &mut warnings, observer).map_err(|e| match e {
            FlashError::Verify(cause) if writer.has_journal() => FlashError::Unverified { cause },
            other => other,
        })?;
    warnings.link_trouble(&writer.io, observer);
    if let Err(e) = writer.finish_journal() {
        warnings.add(
            observer,
            format!("the flash is complete, but its journal could not be removed: {e}"),
        );
    }
    Ok(FlashReport {
        image: name,
        format,
        image_len: end.len,
        storage: target.storage,
        capacity: target.capacity,
        bytes_written: writer.written,
        bytes_skipped: end.stats.bytes_skipped,
        commands: writer.io.commands(),
        command_sectors: writer.io.command_sectors(),
        wiped: wiped.map(|w| (w.start, w.len)),
        verify,
        verified_during_write,
        warnings: warnings.0,
        partitions,
        write_seconds,
        writer_idle_seconds: writer.idle.as_secs_f64(),
        verify_seconds,
        resumed_from,
        kept_bytes: writer.kept,
        retried_commands: writer.io.retried(),
        reattached: writer.io.reattached(),
    })
}

/// Reads back whatever the writer has not verified yet: the outcome, the bytes verified
/// while the writer waited for the pipeline, and the seconds spent after writing.
fn read_back<S: Sectors>(
    writer: &mut Writer<S>,
    warnings: &mut Warnings,
    observer: &mut dyn Observer,
) -> Result<(VerifyOutcome, u64, f64), FlashError> {
    let Some(verifier) = writer.verifier.take() else {
        if let Some(bytes) = writer.io.parity_checked() {
            return Ok((VerifyOutcome::Device { bytes }, 0, 0.0));
        }
        return Ok((VerifyOutcome::Skipped, 0, 0.0));
    };
    let during_write = verifier.verified_bytes();
    let started = Instant::now();
    let outcome = verifier.finish(&mut writer.io, &writer.records, observer)?;
    if let VerifyOutcome::ReadWall {
        unverified_bytes, ..
    } = outcome
    {
        warnings.add(observer, read_wall_warning(unverified_bytes));
    }
    Ok((outcome, during_write, started.elapsed().as_secs_f64()))
}

/// The bootloader's first sector, which the writer clears before the first image byte
/// (and writes back last); `None` when the image ends before it.
fn bootloader_sector(layout: &BoardLayout, image_len: Option<u64>) -> Option<ByteRange> {
    let sector = ByteRange::new(layout.bootloader_offset(), 512);
    let held_len = layout.must_write_prefix;
    (sector.end() <= held_len.min(image_len.unwrap_or(u64::MAX))).then_some(sector)
}

fn check_bmap_len(bmap: &Bmap, image: &str, actual: u64) -> Result<(), FlashError> {
    if bmap.image_size == actual {
        return Ok(());
    }
    Err(FlashError::BmapSize {
        bmap: bmap.image_size,
        image: image.to_string(),
        actual,
    })
}

fn read_wall_warning(unverified_bytes: u64) -> String {
    format!(
        "this loader answers every read that ends past 32 MiB (sector 65536) with 0xCC bytes, a known limitation of some Rockchip vendor loaders (writes are not affected): the {} written beyond it could not be read back. Everything below 32 MiB (bootloader and GPT included) was verified. To verify the rest, flash with a loader that reads the whole eMMC, such as the FriendlyELEC RK3588 usbplug",
        human_bytes(unverified_bytes)
    )
}

/// Receives the leading `held_len` bytes of the decoded image (or all of a shorter one):
/// the chunks, and the image's length when the stream already ended.
fn receive_prefix(
    decoded: &Receiver<Decoded>,
    held_len: u64,
    name: &str,
    describe: &dyn Fn(StreamFailure) -> FlashError,
) -> Result<Prefix, FlashError> {
    let mut first: Vec<Chunk> = Vec::new();
    let mut first_len = 0u64;
    while first_len < held_len {
        match decoded.recv() {
            Ok(Decoded::Chunk(c)) => {
                first_len += c.len as u64;
                first.push(c);
            }
            Ok(Decoded::End { len: 0 }) => break,
            Ok(Decoded::End { len }) => {
                return Ok(Prefix {
                    chunks: first,
                    ended: Some(len),
                });
            }
            Ok(Decoded::Failed(f)) => return Err(describe(f)),
            Err(_) => return Err(FlashError::Stream("the decoder stopped".into())),
        }
    }
    if first_len == 0 {
        return Err(FlashError::Stream(format!("{name} decodes to nothing")));
    }
    Ok(Prefix {
        chunks: first,
        ended: None,
    })
}

/// The pre-flight check on the leading region: on the raw file itself when there is one
/// (its backup GPT is readable now), else on the decoded start. Errors stop the flash
/// with nothing written; warnings are collected.
fn check_prefix<'a>(
    prefix: &Prefix,
    random_access: Option<&ImageAt>,
    image: ImageFacts,
    target: &Target,
    options: FlashOptions<'a>,
    warnings: &mut Warnings,
    observer: &mut dyn Observer,
) -> Result<Checked<'a>, FlashError> {
    // A bmap knows the length too (a gzip or zstd stream does not say it up front).
    let bmap_len = match &options.mode {
        FlashMode::Bmap(bmap) => Some(bmap.image_size),
        _ => None,
    };
    let image_len = image.known_len.or(prefix.ended).or(bmap_len);
    let input = PreflightInput {
        layout: options.layout,
        image_len,
        storage_len: target.capacity,
        check_backup_gpt: random_access.is_some() || prefix.ended.is_some(),
    };
    let checked = match random_access {
        Some(image) => preflight::preflight(image, input),
        None => preflight::preflight(
            prefix
                .chunks
                .iter()
                .map(|c| (c.offset, c.data()))
                .collect::<Windows>(),
            input,
        ),
    }
    .map_err(|e| FlashError::Read(e.to_string()))?;
    if !checked.may_flash() {
        return Err(FlashError::Preflight(checked.errors().cloned().collect()));
    }
    for w in checked.warnings() {
        warnings.add(observer, w.to_string());
    }
    if target.capacity.is_none() && target.loader != LoaderKind::LocalDisk {
        warnings.add(observer, "the loader does not report the storage size (mainline U-Boot): whether the image fits is checked only while writing, and the old backup GPT at the end of the storage cannot be wiped");
    }
    let gpt = (!checked.gpt.is_absent()).then_some(&checked.gpt);
    let must_write = regions::must_write(options.layout, gpt, image_len.unwrap_or(u64::MAX), None);
    Ok(Checked {
        image,
        image_len,
        preflight: checked,
        must_write,
        options,
    })
}

/// What to write: the planner's configuration, the bmap's checksum verifier, and (for a
/// sparse flash) each partition's decision, also sent as `partition-plan` events.
fn plan_writes(
    checked: &Checked<'_>,
    first: &[Chunk],
    random: sparse::RandomSource<'_>,
    observer: &mut dyn Observer,
) -> (PlanConfig, Option<RangeVerifier>, Vec<PartitionReport>) {
    let must_write = checked.must_write.merged();
    match &checked.options.mode {
        FlashMode::Sparse => {
            let skips = sparse::plan(&checked.preflight.gpt, first, checked.image_len, random);
            let partitions: Vec<PartitionReport> = skips
                .partitions
                .iter()
                .map(PartitionReport::planned)
                .collect();
            for p in &partitions {
                observer.event(Event::PartitionPlan(p.clone()));
            }
            let forced = regions::merge_ranges(must_write.into_iter().chain(skips.forced));
            let config = PlanConfig {
                min_gap: SPARSE_MIN_GAP,
                ..PlanConfig::sparse(forced)
            };
            (config, None, partitions)
        }
        FlashMode::Full => (PlanConfig::full(), None, Vec::new()),
        FlashMode::Bmap(bmap) => (
            PlanConfig::mapped(bmap.mapped_byte_ranges(), must_write),
            Some(bmap.verifier()),
            Vec::new(),
        ),
    }
}

/// The whole image has gone by: checks what only its end can tell (its length, its
/// backup GPT), wipes the storage's old backup GPT, then writes the held leading region
/// (bootloader, GPT) last of all. Returns the wiped range.
fn write_tail<S: Sectors>(
    writer: &mut Writer<S>,
    end: &StreamEnd,
    checked: &Checked<'_>,
    target: &Target,
) -> Result<Option<ByteRange>, FlashError> {
    if let Some(expected) = checked.image.known_len.filter(|&l| l != end.len) {
        return Err(FlashError::LengthMismatch {
            expected,
            actual: end.len,
            what: if checked.image.format == Format::Xz {
                "its xz index"
            } else {
                "its file size"
            },
        });
    }
    if let FlashMode::Bmap(bmap) = &checked.options.mode {
        check_bmap_len(bmap, &checked.image.name, end.len)?;
    }
    let capacity = target.capacity.unwrap_or(u64::MAX);
    if end.len > capacity {
        return Err(FlashError::TooLarge {
            end: end.len,
            capacity,
        });
    }
    let held: Windows = end
        .held
        .iter()
        .map(|r| (r.offset, &r.data[..]))
        .chain(end.tail.iter().map(|c| (c.offset, c.data())))
        .collect();
    let full_gpt = GptReport::read(
        held,
        GptReadOptions {
            len: Some(end.len),
            ..GptReadOptions::default()
        },
    )
    .map_err(|e| FlashError::Read(e.to_string()))?;
    let prefix_gpt = &checked.preflight.gpt;
    let new_damage: Vec<String> = full_gpt
        .problems
        .iter()
        .filter(|p| p.is_corruption() && !prefix_gpt.problems.contains(p))
        .filter(|_| !prefix_gpt.is_absent())
        .map(|p| p.to_string())
        .collect();
    if !new_damage.is_empty() {
        return Err(FlashError::BackupGpt(new_damage));
    }
    let gpt = (!full_gpt.is_absent()).then_some(&full_gpt);
    let layout = checked.options.layout;
    // SPI flash holds a boot image, not a partitioned disk, and its last blocks often hold
    // U-Boot's environment: there is no old backup GPT there to remove.
    let wipe = regions::must_write(layout, gpt, end.len, target.capacity)
        .wipe_after_image
        .filter(|_| !target.storage.is_spi_flash());
    if let Some(w) = wipe {
        writer.write_zeros(w)?;
    }
    // The run holding the bootloader's first sector goes last of all.
    for run in end.held.iter().rev() {
        writer.write_run(run)?;
    }
    Ok(wipe)
}
