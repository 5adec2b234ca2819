//! The writer's side of a flash: one object that owns the sector I/O, what has been
//! written so far, the read-back verifier and the time the link sat idle, and follows the
//! crash-safe order of [`super`]: clear the bootloader's first sector before the first
//! image byte, stream the runs, then the tail (wipe of the old backup GPT) and the held
//! leading region last.

use super::FlashError;
use super::journal::{BoardIdentity, ImageIdentity, Journal, JournalDir};
use super::pipeline::{Run, RunRecycler, StreamEnd, StreamFailure, ToWriter};
use super::verify::{self, Written};
use crate::ops::sectors::Sectors;
use crate::ops::{Event, Observer, Phase};
use rockusb_images::ByteRange;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};
use xxhash_rust::xxh3::xxh3_128;

/// A flash that keeps a journal, so it can be resumed after it stops part-way
/// (see [`super::journal`]).
#[derive(Debug, Clone)]
pub struct Resumable {
    pub dir: JournalDir,
    pub image: ImageIdentity,
    pub board: BoardIdentity,
    /// Runs ending at or below this image offset were written by the interrupted flash
    /// being resumed: each is read back and kept where it matches (0: a fresh flash).
    pub resume_below: u64,
}

/// Progress events are sent at most this often.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

pub struct Writer<S: Sectors> {
    pub io: S,
    /// Every range written, with its digest, for the read-back.
    pub records: Vec<Written>,
    pub verifier: Option<verify::Verifier>,
    /// Time spent waiting for the pipeline after the first write.
    pub idle: Duration,
    pub written: u64,
    skipped: u64,
    image_done: u64,
    started: bool,
    cleared_bootloader: bool,
    last_event: Instant,
    /// Writes that end past this fail with [`FlashError::TooLarge`].
    capacity: u64,
    /// The bootloader's first sector, cleared before the first image byte goes out; `None`
    /// when the image does not reach it inside the held region.
    bootloader: Option<ByteRange>,
    /// The journal to start at the first write, and the one started.
    resumable: Option<Resumable>,
    journal: Option<Journal>,
    /// Bytes a resumed flash found already on the storage and did not write again.
    pub kept: u64,
    compare_buf: Vec<u8>,
}

impl<S: Sectors> Writer<S> {
    pub fn new(
        io: S,
        capacity: u64,
        bootloader: Option<ByteRange>,
        verify: bool,
        resumable: Option<Resumable>,
    ) -> Self {
        Writer {
            io,
            records: Vec::new(),
            verifier: verify.then(verify::Verifier::new),
            idle: Duration::ZERO,
            written: 0,
            skipped: 0,
            image_done: 0,
            started: false,
            cleared_bootloader: false,
            last_event: Instant::now(),
            capacity,
            bootloader,
            resumable,
            journal: None,
            kept: 0,
            compare_buf: Vec::new(),
        }
    }

    /// What to do next after a failure once the board has been written to.
    fn next_step(&self, cause: &FlashError) -> String {
        let failure = match cause {
            FlashError::Write(f) | FlashError::Verify(verify::VerifyError::Read(f)) => Some(f),
            _ => None,
        };
        let back_in_maskrom = failure.and_then(|f| f.error.transport())
            == Some(&crate::transport::TransportError::BackInMaskrom);
        let loader = if back_in_maskrom {
            " and --loader (the board is in MaskROM now, so its loader must be sent again)"
        } else {
            ""
        };
        // A failed command is the link's or the board's doing; anything else (a damaged
        // image) has its own advice in the cause.
        let fix = if failure.is_some() {
            "Check the link first: a short cable straight into a port of the computer (not a \
             hub or front-panel socket) and a steady power supply for the board; if it keeps \
             failing at the same place, try another loader version. Then run"
        } else {
            "Fix the cause, then run"
        };
        match &self.journal {
            Some(j) => format!(
                "{fix} the same command with --resume{loader}: it reads back what was written below image byte {}, keeps what matches and goes on from there (without --resume it starts again from the beginning).",
                j.written_to()
            ),
            None => format!("{fix} the same command again: it rewrites everything that matters."),
        }
    }

    /// Whether this flash keeps a journal (and can be resumed).
    pub fn has_journal(&self) -> bool {
        self.journal.is_some()
    }

    /// The flash is complete: its journal is no longer needed.
    pub fn finish_journal(&mut self) -> std::io::Result<()> {
        match self.journal.take() {
            Some(j) => j.finish(),
            None => Ok(()),
        }
    }

    /// Wraps a failure after the first write with what the storage holds now.
    pub fn interrupted(&self, cause: FlashError) -> FlashError {
        if !self.started {
            return cause;
        }
        FlashError::Interrupted {
            next: self.next_step(&cause),
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

    /// Clears the storage's bootloader before the first image byte goes out (once).
    pub fn begin(&mut self) -> Result<(), FlashError> {
        if self.started {
            return Ok(());
        }
        // The journal is on disk before the first byte reaches the board, so any stop
        // from here on (kill -9 included) leaves something to resume.
        if let Some(r) = self.resumable.take() {
            let journal = r
                .dir
                .begin(r.image, r.board, r.resume_below)
                .map_err(FlashError::Journal)?;
            self.journal = Some(journal);
        }
        self.started = true;
        if let Some(sector) = self.bootloader {
            self.io.write(sector.start, &[0u8; 512])?;
            self.cleared_bootloader = true;
        }
        Ok(())
    }

    pub fn write_run(&mut self, run: &Run) -> Result<(), FlashError> {
        let range = run.range();
        if range.end() > self.capacity {
            return Err(FlashError::TooLarge {
                end: range.end(),
                capacity: self.capacity,
            });
        }
        self.io.write(range.start, &run.data)?;
        self.written += range.len;
        self.records.push(Written {
            range,
            hash: run.hash,
            verified: false,
        });
        Ok(())
    }

    /// A streamed run: written, or, when a resumed flash already wrote it, read back and
    /// kept if it matches. The journal moves past it either way.
    fn stream_run(&mut self, run: &Run, resume_below: u64) -> Result<(), FlashError> {
        let range = run.range();
        if range.end() <= resume_below && self.already_there(run)? {
            self.kept += range.len;
            self.records.push(Written {
                range,
                hash: run.hash,
                verified: true,
            });
        } else {
            self.write_run(run)?;
        }
        if let Some(j) = &mut self.journal {
            j.advance(range.end());
        }
        Ok(())
    }

    /// Whether the storage already holds `run` (read back and compared by digest).
    fn already_there(&mut self, run: &Run) -> Result<bool, FlashError> {
        let range = run.range();
        if range.end() > self.capacity {
            return Ok(false);
        }
        self.compare_buf.resize(range.len as usize, 0);
        self.io.read(range.start, &mut self.compare_buf)?;
        Ok(xxh3_128(&self.compare_buf) == run.hash)
    }

    /// Zeroes `range` (the old backup GPT past the image) and records it for the read-back.
    pub fn write_zeros(&mut self, range: ByteRange) -> Result<(), FlashError> {
        let zeros = vec![0u8; range.len as usize];
        self.io.write(range.start, &zeros)?;
        self.records.push(Written {
            range,
            hash: xxh3_128(&zeros),
            verified: false,
        });
        Ok(())
    }

    /// Writes every run the pipeline sends until the stream ends; reads back what was
    /// written while nothing is ready, rather than leave the link idle. Errors come back
    /// already wrapped by [`Self::interrupted`].
    pub fn stream(
        &mut self,
        to_writer: &Receiver<ToWriter>,
        recycler: &RunRecycler,
        observer: &mut dyn Observer,
        describe: &dyn Fn(StreamFailure) -> FlashError,
    ) -> Result<StreamEnd, FlashError> {
        let resume_below = self.resumable.as_ref().map_or(0, |r| r.resume_below);
        loop {
            let msg = self.next_message(to_writer)?;
            match msg {
                ToWriter::PrefixChecked => self.begin().map_err(|e| self.interrupted(e))?,
                ToWriter::Run(run) => {
                    self.begin()
                        .and_then(|()| self.stream_run(&run, resume_below))
                        .map_err(|e| self.interrupted(e))?;
                    self.image_done = run.image_done;
                    self.skipped = run.skipped;
                    recycler.recycle(run);
                    self.progress(observer, false);
                }
                ToWriter::Progress {
                    image_done,
                    skipped,
                } => {
                    self.image_done = image_done;
                    self.skipped = skipped;
                    self.progress(observer, false);
                }
                ToWriter::End(end) => return Ok(end),
                ToWriter::Failed(f) => return Err(self.interrupted(describe(f))),
            }
        }
    }

    /// The next message; verifies pending ranges while the pipeline has nothing ready.
    fn next_message(&mut self, to_writer: &Receiver<ToWriter>) -> Result<ToWriter, FlashError> {
        loop {
            match to_writer.try_recv() {
                Ok(m) => return Ok(m),
                Err(TryRecvError::Disconnected) => return Err(self.pipeline_stopped()),
                Err(TryRecvError::Empty) => {}
            }
            if let Some(v) = self.verifier.as_mut().filter(|v| v.pending(&self.records)) {
                let step = v.step(&mut self.io, &self.records);
                step.map_err(|e| self.interrupted(e.into()))?;
                continue;
            }
            let waiting = Instant::now();
            let m = to_writer.recv().map_err(|_| self.pipeline_stopped())?;
            if self.started {
                self.idle += waiting.elapsed();
            }
            return Ok(m);
        }
    }

    fn pipeline_stopped(&self) -> FlashError {
        self.interrupted(FlashError::Stream(
            "the image pipeline stopped unexpectedly".into(),
        ))
    }

    /// The stream is over: the image was `len` bytes, `skipped` of them left out.
    pub fn reached_end(&mut self, len: u64, skipped: u64, observer: &mut dyn Observer) {
        self.image_done = len;
        self.skipped = skipped;
        self.progress(observer, true);
    }

    fn progress(&mut self, observer: &mut dyn Observer, force: bool) {
        if force || self.last_event.elapsed() >= PROGRESS_INTERVAL {
            self.last_event = Instant::now();
            observer.event(Event::Progress {
                phase: Phase::Write,
                done_bytes: self.image_done,
            });
            observer.event(Event::WriteTotals {
                written_bytes: self.written,
                skipped_bytes: self.skipped,
            });
        }
    }
}
