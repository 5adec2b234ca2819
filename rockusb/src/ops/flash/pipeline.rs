//! The stages between the image file and the USB writer, each a thread joined to the next
//! by a bounded channel: read → decode → plan → hash → (writer, on the caller's thread).
//!
//! - **read** pulls the stored (compressed) bytes in 1 MiB pieces, so a slow disk or pipe
//!   and the decoder overlap;
//! - **decode** fills 1 MiB chunks from a fixed pool of buffers; an empty pool is the
//!   back-pressure that bounds memory whatever the image size. An all-zero chunk travels
//!   as a bare length, so decoding runs ahead through zero runs. A seekable .xz file
//!   whose index shows Talos-style 1 MiB blocks skips the read stage: its blocks are
//!   decoded in parallel and out of order, ahead of need ([`crate::source::xz_blocks`]);
//!   anything else (stdin, gzip, zstd, raw, other block sizes) goes through one
//!   streaming decoder (liblzma's multi-threaded one for .xz);
//! - **plan** runs the `images` planner (zero scan, must-write regions, bmap ranges);
//! - **hash** checks bmap range checksums and copies the planned extents into *runs*:
//!   contiguous bytes of at most one write command, each with an xxh3-128 digest for
//!   the read-back. Zero chunks never reach the writer, so the writer's queue holds only
//!   bytes that must cross the link. A run is handed over when it is full, when the
//!   next extent is not contiguous, or when no more input is ready: the link never
//!   waits while the CPU still has bytes for it.
//!
//! Runs inside the leading must-write region (bootloader and GPT) are *held* and go to the
//! writer last (see [`super`] for why).

use crate::source::block_pool::PooledBlock;
use crate::source::xz_blocks::{ParallelBlocks, Piece, XzBlocks};
use rockusb_images::ByteRange;
use rockusb_images::bmap::{BmapVerifyError, RangeVerifier};
use rockusb_images::plan::{PlanError, PlanStats, Planner};
use std::io::{self, Read};
use std::ops::Deref;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use xxhash_rust::xxh3::xxh3_128;

/// Bytes per decoded chunk: the size of a Talos xz block, and a multiple of every plan
/// block size.
pub const CHUNK_LEN: usize = 1 << 20;
const _: () = assert!(CHUNK_LEN as u64 == crate::source::xz_blocks::UNIT);
/// Blocks with data the block-parallel xz decoder may hold ahead of the planner.
const XZ_KEEP_AHEAD: usize = 8;
/// Decoded chunks holding data in flight besides those the caller keeps before planning
/// starts (memory: this × [`CHUNK_LEN`]).
pub const CHUNK_POOL: usize = 6;
/// Decoded chunks queued between decode and plan, most of them all-zero chunks, which
/// hold no buffer: the decoder runs ahead through long zero runs (a Talos image is 85 %
/// zeros after its data) while the writer is still busy with data, instead of
/// decoding them only after the writer's queue has drained and the link sits idle.
pub(crate) const DECODED_QUEUE: usize = 16384;
/// Stored-byte pieces in flight between the reader and the decoder.
const READ_PIECES: usize = 4;
const READ_PIECE_LEN: usize = 1 << 20;
/// Bytes the hash stage keeps from the end of the image, for the backup GPT.
pub(crate) const TAIL_CHUNKS: usize = 2;
/// The writer is told how far the image has got at least this often while only zeros go by.
const PROGRESS_EVERY: u64 = 32 << 20;

/// Stands in for the bytes of every all-zero chunk.
static ZEROS: [u8; CHUNK_LEN] = [0; CHUNK_LEN];

/// Decoded image bytes at `offset`: `buf[..len]`, or `len` zeros when `buf` is empty.
pub struct Chunk {
    pub offset: u64,
    /// The chunk's own bytes, from the pool (empty for a zero chunk or a shared one).
    pub buf: Vec<u8>,
    pub len: usize,
    /// Bytes of a decoded block several boards read (a fleet's shared decoder,
    /// [`crate::source::shared`]), and where in it the chunk starts: no copy per board.
    pub shared: Option<(Arc<PooledBlock>, usize)>,
}

impl Chunk {
    pub fn data(&self) -> &[u8] {
        if let Some((block, start)) = &self.shared {
            &block[*start..*start + self.len]
        } else if self.buf.is_empty() {
            &ZEROS[..self.len]
        } else {
            &self.buf[..self.len]
        }
    }
}

/// Why the stream stopped early.
#[derive(Debug)]
pub enum StreamFailure {
    /// Reading or decoding failed at this image offset.
    Decode {
        offset: u64,
        error: io::Error,
    },
    Plan(PlanError),
    Bmap(BmapVerifyError),
}

pub enum Decoded {
    Chunk(Chunk),
    End { len: u64 },
    Failed(StreamFailure),
}

/// Contiguous bytes for one write (or fewer, if the loader wants smaller commands).
pub struct Run {
    /// Storage byte offset (= image offset).
    pub offset: u64,
    pub data: RunBytes,
    /// xxh3-128 of `data`, for the read-back.
    pub hash: u128,
    /// Image bytes planned when this run was handed over, and how many were skipped.
    pub image_done: u64,
    pub skipped: u64,
    pooled: bool,
}

/// A run's bytes: its own buffer while it is built and streamed, or, once held, bytes it
/// may share with the identical held runs of other flashes in this process.
#[derive(Debug)]
pub enum RunBytes {
    Own(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Deref for RunBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            RunBytes::Own(v) => v,
            RunBytes::Shared(v) => v,
        }
    }
}

impl RunBytes {
    /// The buffer to build in (a shared run gets a copy of its own first).
    fn own(&mut self) -> &mut Vec<u8> {
        if let RunBytes::Shared(shared) = self {
            *self = RunBytes::Own(shared.to_vec());
        }
        match self {
            RunBytes::Own(v) => v,
            RunBytes::Shared(_) => unreachable!("made its own just above"),
        }
    }
}

/// Held runs alive in this process, by offset and digest: every board of a fleet holds
/// the same bootloader and GPT bytes until its end, and one copy serves them all.
static HELD_RUNS: Mutex<Vec<HeldRunEntry>> = Mutex::new(Vec::new());

/// A held run's offset, digest and bytes (while some flash holds them).
type HeldRunEntry = (u64, u128, Weak<Vec<u8>>);

/// The held bytes `data` at `offset`, shared with an identical held run if one is alive.
fn share_held(offset: u64, hash: u128, data: Vec<u8>) -> Arc<Vec<u8>> {
    let mut alive = HELD_RUNS.lock().unwrap_or_else(|e| e.into_inner());
    alive.retain(|(_, _, run)| run.strong_count() > 0);
    let same = alive
        .iter()
        .filter(|(o, h, _)| *o == offset && *h == hash)
        .filter_map(|(_, _, run)| run.upgrade())
        // The digest picks the candidate; the bytes decide.
        .find(|run| **run == data);
    if let Some(run) = same {
        return run;
    }
    let run = Arc::new(data);
    alive.push((offset, hash, Arc::downgrade(&run)));
    run
}

impl Run {
    pub fn range(&self) -> ByteRange {
        ByteRange::new(self.offset, self.data.len() as u64)
    }
}

/// The end of the stream, with what the writer needs to finish.
pub struct StreamEnd {
    pub len: u64,
    pub stats: PlanStats,
    /// Runs of the leading must-write region, in image order.
    pub held: Vec<Run>,
    /// The image's last chunks, in order (read for its backup GPT, not copied).
    pub tail: Vec<Chunk>,
}

pub enum ToWriter {
    Run(Run),
    /// Every held (leading) byte has been planned and checked: nothing found so far
    /// forbids writing.
    PrefixChecked,
    Progress {
        image_done: u64,
        skipped: u64,
    },
    End(StreamEnd),
    Failed(StreamFailure),
}

/// Returns run buffers to the hash stage's pool once written.
#[derive(Clone)]
pub struct RunRecycler(SyncSender<Vec<u8>>);

impl RunRecycler {
    pub fn recycle(&self, run: Run) {
        if let (true, RunBytes::Own(mut buf)) = (run.pooled, run.data) {
            buf.clear();
            let _ = self.0.try_send(buf);
        }
    }
}

/// Chunk buffers added to the pool for a caller that holds `keep` bytes.
pub fn extra_buffers(keep: u64) -> usize {
    keep.div_ceil(CHUNK_LEN as u64) as usize
}

/// How much a board's pipeline buffers between its decoder and its writer; chosen by
/// whoever starts the decoder, which knows what it buffers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffering {
    /// Bytes of runs on their way to the writer.
    pub run_budget: usize,
    /// The largest run built (and read back at once), below the command's own limit.
    pub run_cap: usize,
    /// Chunk buffers the decoder's pool holds for the bytes kept before planning.
    pub surplus_chunks: usize,
}

impl Buffering {
    /// A board with a decoder of its own, holding `keep` bytes before planning.
    pub fn own_decoder(keep: u64) -> Self {
        Buffering {
            run_budget: super::RUN_BUDGET,
            run_cap: usize::MAX,
            surplus_chunks: extra_buffers(keep),
        }
    }

    /// A board fed by a decoder several boards share ([`crate::source::shared`]): its
    /// window already buffers decoded blocks for every board, and lends the leading
    /// chunks without pool buffers.
    pub fn shared_decoder() -> Self {
        Buffering {
            run_budget: super::SHARED_RUN_BUDGET,
            run_cap: super::SHARED_RUN_MAX,
            surplus_chunks: 0,
        }
    }
}

/// A started decoder, as a board's pipeline takes it.
pub struct Feed {
    /// Decoded chunks, in image order.
    pub decoded: Receiver<Decoded>,
    /// Where the chunks' buffers go back.
    pub chunk_pool: SyncSender<Vec<u8>>,
    pub threads: Vec<JoinHandle<()>>,
    pub buffering: Buffering,
}

/// Starts read + decode for `input`. `keep` is how many bytes the caller will receive
/// and hold before it starts planning (the pool gets room for them on top of
/// [`CHUNK_POOL`], or the decoder would wait for buffers the caller never returns).
pub fn start_decode(
    input: Box<dyn Read + Send>,
    spec: crate::source::decode::DecoderSpec,
    xz_blocks: Option<XzBlocks>,
    keep: u64,
) -> Feed {
    let feed = |decoded, chunk_pool, threads| Feed {
        decoded,
        chunk_pool,
        threads,
        buffering: Buffering::own_decoder(keep),
    };
    let buffers = CHUNK_POOL + extra_buffers(keep);
    let (pool_tx, pool_rx) = sync_channel::<Vec<u8>>(buffers);
    for _ in 0..buffers {
        // Zeroed allocations are mapped lazily: untouched buffers cost no memory.
        let _ = pool_tx.try_send(vec![0u8; CHUNK_LEN]);
    }
    let (out_tx, out_rx) = sync_channel::<Decoded>(DECODED_QUEUE);
    let mut threads = Vec::new();
    if let Some(blocks) = xz_blocks {
        threads.push(std::thread::spawn(move || {
            block_decode_stage(blocks, pool_rx, out_tx)
        }));
        return feed(out_rx, pool_tx, threads);
    }
    let reader: Box<dyn Read + Send> = if spec.format == crate::source::Format::Raw {
        input
    } else {
        let (piece_tx, piece_rx) = sync_channel::<io::Result<Vec<u8>>>(READ_PIECES);
        threads.push(std::thread::spawn(move || read_stage(input, piece_tx)));
        Box::new(ChannelReader {
            rx: piece_rx,
            current: Vec::new(),
            pos: 0,
        })
    };
    threads.push(std::thread::spawn(move || {
        decode_stage(reader, spec, pool_rx, out_tx)
    }));
    feed(out_rx, pool_tx, threads)
}

fn read_stage(mut input: Box<dyn Read + Send>, out: SyncSender<io::Result<Vec<u8>>>) {
    loop {
        let mut piece = vec![0u8; READ_PIECE_LEN];
        let mut n = 0;
        while n < piece.len() {
            match input.read(&mut piece[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = out.send(Err(e));
                    return;
                }
            }
        }
        piece.truncate(n);
        if n == 0 || out.send(Ok(piece)).is_err() {
            return;
        }
    }
}

/// The decoder's input: pieces from the read stage.
struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(Ok(piece)) => {
                    self.current = piece;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The read stage ended: end of input.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn decode_stage(
    input: Box<dyn Read + Send>,
    spec: crate::source::decode::DecoderSpec,
    pool: Receiver<Vec<u8>>,
    out: SyncSender<Decoded>,
) {
    let mut reader = match spec.decoder(input) {
        Ok(r) => r,
        Err(e) => {
            let _ = out.send(Decoded::Failed(StreamFailure::Decode {
                offset: 0,
                error: io::Error::other(e.to_string()),
            }));
            return;
        }
    };
    let mut offset = 0u64;
    let mut spare: Option<Vec<u8>> = None;
    loop {
        // Every consumer gone means the flash stopped: stop decoding too.
        let mut buf = match spare.take() {
            Some(b) => b,
            None => match pool.recv() {
                Ok(b) => b,
                Err(_) => return,
            },
        };
        buf.resize(CHUNK_LEN, 0);
        let mut n = 0;
        while n < CHUNK_LEN {
            match reader.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let _ = out.send(Decoded::Failed(StreamFailure::Decode {
                        offset: offset + n as u64,
                        error,
                    }));
                    return;
                }
            }
        }
        if n > 0 {
            // An all-zero chunk travels without its buffer, which is reused at once.
            let buf = if rockusb_images::zero::is_zero(&buf[..n]) {
                spare = Some(buf);
                Vec::new()
            } else {
                buf
            };
            let chunk = Chunk {
                offset,
                buf,
                len: n,
                shared: None,
            };
            offset += n as u64;
            if out.send(Decoded::Chunk(chunk)).is_err() {
                return;
            }
        }
        if n < CHUNK_LEN {
            let _ = out.send(Decoded::End { len: offset });
            return;
        }
    }
}

/// The decode stage for a seekable .xz file: blocks decoded in parallel, ahead of need
/// (see [`crate::source::xz_blocks`]), cut into chunks.
fn block_decode_stage(blocks: XzBlocks, pool: Receiver<Vec<u8>>, out: SyncSender<Decoded>) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut decoder = ParallelBlocks::start(blocks, threads, XZ_KEEP_AHEAD);
    let mut offset = 0u64;
    let send = |chunk: Chunk| out.send(Decoded::Chunk(chunk)).is_ok();
    while let Some(piece) = decoder.next_piece() {
        match piece {
            Err(error) => {
                let _ = out.send(Decoded::Failed(StreamFailure::Decode { offset, error }));
                return;
            }
            Ok(Piece::Zero(mut len)) => {
                while len > 0 {
                    let n = len.min(CHUNK_LEN as u64) as usize;
                    if !send(Chunk {
                        offset,
                        buf: Vec::new(),
                        len: n,
                        shared: None,
                    }) {
                        return;
                    }
                    offset += n as u64;
                    len -= n as u64;
                }
            }
            Ok(Piece::Data(data)) => {
                for part in data.chunks(CHUNK_LEN) {
                    let buf = if rockusb_images::zero::is_zero(part) {
                        Vec::new()
                    } else {
                        let Ok(mut buf) = pool.recv() else { return };
                        buf.resize(CHUNK_LEN, 0);
                        buf[..part.len()].copy_from_slice(part);
                        buf
                    };
                    if !send(Chunk {
                        offset,
                        buf,
                        len: part.len(),
                        shared: None,
                    }) {
                        return;
                    }
                    offset += part.len() as u64;
                }
            }
        }
    }
    let _ = out.send(Decoded::End { len: offset });
}

enum Planned {
    Chunk(Chunk, Vec<ByteRange>, PlanStats),
    End { len: u64, stats: PlanStats },
    Failed(StreamFailure),
}

/// What the plan and hash stages need.
pub struct PlanHashConfig {
    pub planner: Planner,
    pub bmap: Option<RangeVerifier>,
    /// Image bytes at the start whose runs are held back (the leading must-write region).
    pub held_len: u64,
    /// Largest run, a whole number of sectors.
    pub run_max: usize,
    /// Runs in flight to the writer (memory: this × `run_max`).
    pub run_pool: usize,
    /// Chunk buffers to free instead of returning to the pool: those the decoder was
    /// given only so the caller could hold the leading chunks (see [`start_decode`]).
    pub surplus_chunks: usize,
}

/// Starts plan + hash over `first` (chunks already received, e.g. for the pre-flight
/// check) and then the rest of `decoded`.
pub fn start_plan_hash(
    first: Vec<Chunk>,
    ended: Option<u64>,
    decoded: Receiver<Decoded>,
    chunk_pool: SyncSender<Vec<u8>>,
    config: PlanHashConfig,
) -> (Receiver<ToWriter>, RunRecycler, Vec<JoinHandle<()>>) {
    let (planned_tx, planned_rx) = sync_channel::<Planned>(4);
    let (run_tx, run_rx) = sync_channel::<Vec<u8>>(config.run_pool);
    for _ in 0..config.run_pool {
        let _ = run_tx.try_send(Vec::with_capacity(config.run_max));
    }
    let (out_tx, out_rx) = sync_channel::<ToWriter>(config.run_pool + 4);
    let planner = config.planner;
    let plan = std::thread::spawn(move || plan_stage(first, ended, decoded, planner, planned_tx));
    let hasher = HashStage {
        bmap: config.bmap,
        held_len: config.held_len,
        run_max: config.run_max,
        runs: run_rx,
        chunk_pool,
        out: out_tx,
        current: None,
        held: Vec::new(),
        tail: Vec::new(),
        image_done: 0,
        skipped: 0,
        last_progress: 0,
        prefix_announced: false,
        gone: false,
        surplus: config.surplus_chunks,
    };
    let hash = std::thread::spawn(move || hasher.run(planned_rx));
    (out_rx, RunRecycler(run_tx), vec![plan, hash])
}

/// `ended` is the image length when the caller already received the end of the stream.
fn plan_stage(
    first: Vec<Chunk>,
    ended: Option<u64>,
    decoded: Receiver<Decoded>,
    mut planner: Planner,
    out: SyncSender<Planned>,
) {
    let mut extents = Vec::new();
    let mut plan = |chunk: Chunk| -> Option<Planned> {
        match planner.plan_chunk(chunk.offset, chunk.data(), &mut extents) {
            Ok(_) => Some(Planned::Chunk(chunk, extents.clone(), planner.stats())),
            Err(e) => Some(Planned::Failed(StreamFailure::Plan(e))),
        }
    };
    for chunk in first {
        let Some(msg) = plan(chunk) else { return };
        let failed = matches!(msg, Planned::Failed(_));
        if out.send(msg).is_err() || failed {
            return;
        }
    }
    if let Some(len) = ended {
        let _ = out.send(Planned::End {
            len,
            stats: planner.stats(),
        });
        return;
    }
    while let Ok(msg) = decoded.recv() {
        let msg = match msg {
            Decoded::Chunk(chunk) => match plan(chunk) {
                Some(m) => m,
                None => return,
            },
            Decoded::End { len } => {
                let _ = out.send(Planned::End {
                    len,
                    stats: planner.stats(),
                });
                return;
            }
            Decoded::Failed(f) => {
                let _ = out.send(Planned::Failed(f));
                return;
            }
        };
        let failed = matches!(msg, Planned::Failed(_));
        if out.send(msg).is_err() || failed {
            return;
        }
    }
}

struct HashStage {
    bmap: Option<RangeVerifier>,
    held_len: u64,
    run_max: usize,
    runs: Receiver<Vec<u8>>,
    chunk_pool: SyncSender<Vec<u8>>,
    out: SyncSender<ToWriter>,
    /// The run being filled, and whether it is held.
    current: Option<(Run, bool)>,
    held: Vec<Run>,
    /// The last chunks, kept for the backup GPT.
    tail: Vec<Chunk>,
    image_done: u64,
    skipped: u64,
    last_progress: u64,
    prefix_announced: bool,
    /// The writer has stopped listening.
    gone: bool,
    /// Chunk buffers still to free rather than recycle.
    surplus: usize,
}

impl HashStage {
    fn run(mut self, input: Receiver<Planned>) {
        let mut pending: Option<Planned> = None;
        loop {
            let msg = match pending.take() {
                Some(m) => m,
                None => match input.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                },
            };
            match msg {
                Planned::Chunk(chunk, extents, stats) => {
                    if let Err(failure) = self.chunk(chunk, &extents, stats) {
                        let _ = self.out.send(ToWriter::Failed(failure));
                        return;
                    }
                    if self.gone {
                        return;
                    }
                    // Hand the run over now rather than hold bytes while input is late.
                    match input.try_recv() {
                        Ok(next) => pending = Some(next),
                        Err(TryRecvError::Empty) => {
                            if !self.flush_streaming() {
                                return;
                            }
                        }
                        Err(TryRecvError::Disconnected) => return,
                    }
                }
                Planned::End { len, stats } => {
                    self.end(len, stats);
                    return;
                }
                Planned::Failed(f) => {
                    let _ = self.out.send(ToWriter::Failed(f));
                    return;
                }
            }
        }
    }

    fn chunk(
        &mut self,
        chunk: Chunk,
        extents: &[ByteRange],
        stats: PlanStats,
    ) -> Result<(), StreamFailure> {
        if let Some(v) = &mut self.bmap {
            v.feed(chunk.offset, chunk.data())
                .map_err(StreamFailure::Bmap)?;
        }
        for extent in extents {
            let mut pos = extent.start;
            while pos < extent.end() {
                // Held runs stop at the end of the held region.
                let held = pos < self.held_len;
                let limit = if held {
                    extent.end().min(self.held_len)
                } else {
                    extent.end()
                };
                let Some(take) = self.append(pos, held, limit, &chunk) else {
                    self.gone = true;
                    return Ok(());
                };
                pos += take;
            }
        }
        self.image_done = chunk.offset + chunk.len as u64;
        self.skipped = stats.bytes_skipped;
        if !self.prefix_announced && self.image_done >= self.held_len {
            self.prefix_announced = true;
            let _ = self.out.send(ToWriter::PrefixChecked);
        }
        if self.gone {
            return Ok(());
        }
        if self.current.is_none() && self.image_done - self.last_progress >= PROGRESS_EVERY {
            self.last_progress = self.image_done;
            let _ = self.out.send(ToWriter::Progress {
                image_done: self.image_done,
                skipped: self.skipped,
            });
        }
        self.tail.push(chunk);
        if self.tail.len() > TAIL_CHUNKS {
            let old = self.tail.remove(0);
            if !old.buf.is_empty() {
                if self.surplus > 0 {
                    self.surplus -= 1;
                } else {
                    let _ = self.chunk_pool.try_send(old.buf);
                }
            }
        }
        Ok(())
    }

    /// Appends bytes `[pos, limit)` of `chunk` (as many as fit) to the current run;
    /// returns how many were taken, `None` when the writer has gone.
    fn append(&mut self, pos: u64, held: bool, limit: u64, chunk: &Chunk) -> Option<u64> {
        let fits = matches!(&self.current, Some((run, h)) if *h == held
            && run.offset + run.data.len() as u64 == pos
            && run.data.len() < self.run_max);
        if !fits {
            if !self.flush() {
                return None;
            }
            let data = RunBytes::Own(if held {
                Vec::with_capacity(self.run_max)
            } else {
                self.runs.recv().ok()?
            });
            self.current = Some((
                Run {
                    offset: pos,
                    data,
                    hash: 0,
                    image_done: 0,
                    skipped: 0,
                    pooled: !held,
                },
                held,
            ));
        }
        let (run, _) = self.current.as_mut()?;
        let room = (self.run_max - run.data.len()) as u64;
        let take = (limit - pos).min(room);
        let lo = (pos - chunk.offset) as usize;
        run.data
            .own()
            .extend_from_slice(&chunk.data()[lo..lo + take as usize]);
        Some(take)
    }

    fn flush_streaming(&mut self) -> bool {
        if matches!(self.current, Some((_, false))) {
            self.flush()
        } else {
            true
        }
    }

    /// Finishes the current run: held runs are kept, others go to the writer.
    fn flush(&mut self) -> bool {
        let Some((mut run, held)) = self.current.take() else {
            return true;
        };
        // Only the image's last sector can be partial: pad it with zeros so every write
        // is whole sectors (the backup-GPT wipe starts after it, see `regions::must_write`).
        let rem = run.data.len() % 512;
        if rem != 0 {
            let padded = run.data.len() + 512 - rem;
            run.data.own().resize(padded, 0);
        }
        run.hash = xxh3_128(&run.data);
        run.image_done = self.image_done;
        run.skipped = self.skipped;
        if held {
            let mut data = std::mem::take(run.data.own());
            data.shrink_to_fit();
            run.data = RunBytes::Shared(share_held(run.offset, run.hash, data));
            self.held.push(run);
            true
        } else {
            self.last_progress = self.image_done;
            self.out.send(ToWriter::Run(run)).is_ok()
        }
    }

    fn end(mut self, len: u64, stats: PlanStats) {
        if let Some(v) = &mut self.bmap {
            if let Err(e) = v.finish() {
                let _ = self.out.send(ToWriter::Failed(StreamFailure::Bmap(e)));
                return;
            }
        }
        self.image_done = len;
        self.skipped = stats.bytes_skipped;
        if !self.flush() {
            return;
        }
        if !self.prefix_announced {
            let _ = self.out.send(ToWriter::PrefixChecked);
        }
        let _ = self.out.send(ToWriter::End(StreamEnd {
            len,
            stats,
            held: std::mem::take(&mut self.held),
            tail: std::mem::take(&mut self.tail),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_held_runs_share_one_copy_and_other_bytes_do_not() {
        // Two boards of a fleet hold the same bootloader run.
        let a = share_held(32768, 7, vec![1u8; 8192]);
        let b = share_held(32768, 7, vec![1u8; 8192]);
        assert!(Arc::ptr_eq(&a, &b));
        // A digest that matches over other bytes does not merge them.
        let c = share_held(32768, 7, vec![2u8; 8192]);
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c[0], 2);
        // Nor does the same bytes at another offset.
        let d = share_held(65536, 7, vec![1u8; 8192]);
        assert!(!Arc::ptr_eq(&a, &d));
    }

    #[test]
    fn a_chunk_of_a_shared_block_reads_its_own_slice() {
        let block = Arc::new(PooledBlock::unpooled(
            (0..3 * CHUNK_LEN)
                .map(|i| (i % 253) as u8)
                .collect::<Vec<u8>>(),
        ));
        let chunk = Chunk {
            offset: 5 * CHUNK_LEN as u64,
            buf: vec![0u8; 1],
            len: CHUNK_LEN,
            shared: Some((block.clone(), CHUNK_LEN)),
        };
        assert!(chunk.data() == &block[CHUNK_LEN..2 * CHUNK_LEN]);
    }
}
