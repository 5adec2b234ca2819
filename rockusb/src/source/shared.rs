//! One decoder for several boards flashing the same image (a provisioning station).
//!
//! A seekable .xz image (a Talos `.raw.xz`: an index of 1 MiB blocks, see
//! [`super::xz_blocks`]) is decoded once, in order, into a bounded window of the most
//! recent blocks; every board's flash takes its blocks from the window and copies them into
//! its own pipeline ([`Subscription::start`] gives what [`crate::ops::flash::pipeline::start_decode`]
//! gives a lone board). The decoder runs [`WINDOW_AHEAD`] blocks with data ahead of the board
//! furthest along, and the window keeps a block until every subscribed board has taken it,
//! but never more than [`WINDOW_DATA_BLOCKS`] blocks with data, so memory stays bounded by
//! the boards' spread rather than by a fixed read-ahead. A board that falls behind the
//! window does not hold the others back: it decodes the blocks it missed on its own,
//! straight from the xz block index, and takes from the window again once it is back
//! inside it.
//! A board arriving when nobody else is inside the window restarts the shared decoder
//! where it needs it.

use super::block_pool::{BlockPool, PooledBlock};
use super::xz_blocks::{BlockDecoder, ParallelBlocks, Piece, XzBlocks};
use crate::ops::flash::pipeline::{
    Buffering, CHUNK_LEN, Chunk, Decoded, Feed, StreamFailure, TAIL_CHUNKS,
};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Blocks holding data the window keeps at most (1 MiB each for Talos images); all-zero
/// blocks travel as lengths and cost nothing, so a window spans far more of a mostly empty
/// image. Boards on links of one speed stay within a few blocks of each other; this bounds
/// what a straggler can pin before it is left to decode alone.
pub const WINDOW_DATA_BLOCKS: usize = 32;
/// Blocks holding data the decoder keeps ready ahead of the board furthest along: enough
/// to ride out a scheduling hiccup of the decoder (a block decodes several times faster
/// than a USB 2.0 link writes it), not a read-ahead the boards need.
pub const WINDOW_AHEAD: usize = 8;
/// Blocks of any kind the window keeps at most.
const WINDOW_MAX_BLOCKS: usize = 4096;
/// Blocks with data the shared decoder's workers may hold ahead of the window.
const KEEP_AHEAD: usize = 4;
/// Chunks with data each board may have in hand beyond the region it holds: the window is
/// the boards' read-ahead, so a board takes out of it only what its planner is about to
/// use, beyond the last chunks its pipeline keeps for the backup GPT. Fewer would stall
/// the board: its pipeline holds the tail chunks until newer ones arrive.
const BOARD_CHUNK_POOL: usize = TAIL_CHUNKS + 2;
/// Decoded chunks queued for each board: zero chunks travel as lengths, so a lone
/// decoder's deep queue ([`DECODED_QUEUE`]) lets it run through zero runs; here the window
/// does that for every board, and each board's queue is a fixed cost per board.
const BOARD_QUEUE: usize = 256;

/// How the work was shared, for reports and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SharedStats {
    /// Blocks the shared decoder decoded.
    pub decoded: u64,
    /// Blocks boards took from the window.
    pub served: u64,
    /// Blocks boards behind the window decoded on their own.
    pub redecoded: u64,
}

#[derive(Clone)]
enum Block {
    Zero(u64),
    Data(Arc<PooledBlock>),
}

struct Window {
    /// Blocks `base..base + blocks.len()`.
    blocks: VecDeque<Block>,
    /// How many of them hold data.
    data_blocks: usize,
    base: usize,
    /// The block the decoder failed at, and why.
    failed: Option<(usize, String)>,
    /// Per board: the next block it needs.
    cursors: BTreeMap<u64, usize>,
    next_id: u64,
    /// The running decoder's generation; a decoder whose generation is stale stops.
    generation: u64,
    producing: bool,
    stats: SharedStats,
}

impl Window {
    fn next(&self) -> usize {
        self.base + self.blocks.len()
    }

    /// Blocks with data in the window at or after block `from`.
    fn data_from(&self, from: usize) -> usize {
        self.blocks
            .iter()
            .skip(from.saturating_sub(self.base))
            .filter(|b| matches!(b, Block::Data(_)))
            .count()
    }

    /// Drops blocks from the front that every board has taken, and the oldest ones beyond
    /// `cap` blocks with data (a straggler then decodes those alone). A board behind the
    /// window keeps what is there for when it gets back: one that started a moment after
    /// the others decodes only the blocks it missed before it came, then joins them.
    fn trim(&mut self, cap: usize) {
        let needed_from = self.cursors.values().copied().min().unwrap_or(usize::MAX);
        while let Some(front) = self.blocks.front() {
            let unneeded = self.base < needed_from;
            if !(unneeded || self.data_blocks > cap || self.blocks.len() > WINDOW_MAX_BLOCKS) {
                break;
            }
            if let Block::Data(_) = front {
                self.data_blocks -= 1;
            }
            self.blocks.pop_front();
            self.base += 1;
        }
    }

    fn clear(&mut self, base: usize) {
        self.blocks.clear();
        self.data_blocks = 0;
        self.base = base;
    }
}

struct Inner {
    source: XzBlocks,
    /// Blocks with data the window keeps at most.
    window: usize,
    /// Blocks with data decoded ahead of the board furthest along.
    ahead: usize,
    /// Buffers of blocks every board is done with, for the next ones decoded.
    buffers: Arc<BlockPool>,
    state: Mutex<Window>,
    changed: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Window> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An image decoded once for every board that subscribes.
#[derive(Clone)]
pub struct SharedImage {
    inner: Arc<Inner>,
}

/// What a board gets for block `i`.
enum Got {
    Block(Block),
    /// Behind the window while others use it: decode it alone.
    Alone,
    End,
    Failed(String),
}

impl SharedImage {
    /// Shares the decoding of these blocks, with a window of at most `window` blocks
    /// holding data, of which up to [`WINDOW_AHEAD`] are decoded ahead of the leading board.
    pub fn new(source: XzBlocks, window: usize) -> Self {
        let window = window.max(1);
        SharedImage {
            inner: Arc::new(Inner {
                source,
                window,
                ahead: WINDOW_AHEAD.min(window),
                buffers: BlockPool::new(WINDOW_AHEAD + KEEP_AHEAD),
                state: Mutex::new(Window {
                    blocks: VecDeque::new(),
                    data_blocks: 0,
                    base: 0,
                    failed: None,
                    cursors: BTreeMap::new(),
                    next_id: 0,
                    generation: 0,
                    producing: false,
                    stats: SharedStats::default(),
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// For an image whose blocks can be shared (a seekable .xz of 1 MiB blocks); `None`
    /// for the others, which each board decodes itself.
    pub fn for_source(source: &super::ImageSource) -> Option<Self> {
        source
            .xz_blocks
            .clone()
            .map(|blocks| Self::new(blocks, WINDOW_DATA_BLOCKS))
    }

    /// Whether `source` is this image (the same file, by size and block layout).
    pub fn serves(&self, source: &super::ImageSource) -> bool {
        source.xz_blocks.as_ref().is_some_and(|b| {
            b.blocks == self.inner.source.blocks
                && b.file.0.metadata().ok().map(|m| m.len())
                    == self.inner.source.file.0.metadata().ok().map(|m| m.len())
        })
    }

    /// A place for one more board, reading from the first block.
    pub fn subscribe(&self) -> Subscription {
        let mut state = self.inner.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.cursors.insert(id, 0);
        Subscription {
            inner: self.inner.clone(),
            id,
        }
    }

    pub fn stats(&self) -> SharedStats {
        self.inner.lock().stats
    }
}

/// One board's place at the window (see [`SharedImage::subscribe`]).
pub struct Subscription {
    inner: Arc<Inner>,
    id: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        state.cursors.remove(&self.id);
        drop(state);
        self.inner.changed.notify_all();
    }
}

impl Subscription {
    /// Starts feeding this board's pipeline: the decoded-chunk receiver, the chunk pool's
    /// return path and the thread, as [`crate::ops::flash::pipeline::start_decode`] gives
    /// them (`keep`: bytes the caller holds before planning, as there).
    pub fn start(self, keep: u64) -> Feed {
        // Chunks are the window's own blocks, not copies: the pool holds tokens that
        // bound how many chunks past the leading `keep` bytes the board has in hand (those
        // it holds until its planning starts take none), and the caller frees none.
        let (pool_tx, pool_rx) = sync_channel::<Vec<u8>>(BOARD_CHUNK_POOL);
        for _ in 0..BOARD_CHUNK_POOL {
            let _ = pool_tx.try_send(vec![0u8; 1]);
        }
        let (out_tx, out_rx) = sync_channel::<Decoded>(BOARD_QUEUE);
        let thread = std::thread::spawn(move || self.feed(keep, pool_rx, out_tx));
        Feed {
            decoded: out_rx,
            chunk_pool: pool_tx,
            threads: vec![thread],
            buffering: Buffering::shared_decoder(),
        }
    }

    /// Cuts the image's blocks into chunks for the board, in order.
    fn feed(self, keep: u64, pool: Receiver<Vec<u8>>, out: SyncSender<Decoded>) {
        let count = self.inner.source.blocks.len();
        let mut offset = 0u64;
        let (mut scratch, mut decoder) = (Vec::new(), BlockDecoder::new());
        for i in 0..count {
            let block = match self.get(i) {
                Got::Block(block) => block,
                Got::Alone => {
                    if scratch.capacity() == 0 {
                        scratch = self.inner.buffers.take();
                    }
                    let result = decoder.decode(
                        &self.inner.source.file,
                        &self.inner.source.blocks[i],
                        &mut scratch,
                    );
                    self.inner.lock().stats.redecoded += 1;
                    match result {
                        Ok(()) if rockusb_images::zero::is_zero(&scratch) => {
                            Block::Zero(scratch.len() as u64)
                        }
                        Ok(()) => Block::Data(Arc::new(PooledBlock::new(
                            std::mem::take(&mut scratch),
                            &self.inner.buffers,
                        ))),
                        Err(error) => {
                            let _ =
                                out.send(Decoded::Failed(StreamFailure::Decode { offset, error }));
                            return;
                        }
                    }
                }
                Got::End => break,
                Got::Failed(why) => {
                    let error = io::Error::new(io::ErrorKind::InvalidData, why);
                    let _ = out.send(Decoded::Failed(StreamFailure::Decode { offset, error }));
                    return;
                }
            };
            if !send_block(&block, &mut offset, keep, &pool, &out) {
                return;
            }
            let mut state = self.inner.lock();
            state.cursors.insert(self.id, i + 1);
            state.trim(self.inner.window);
            drop(state);
            self.inner.changed.notify_all();
        }
        let _ = out.send(Decoded::End { len: offset });
    }

    /// Block `i` from the window, waiting for the decoder if it is not there yet.
    fn get(&self, i: usize) -> Got {
        let inner = &self.inner;
        let mut state = inner.lock();
        state.cursors.insert(self.id, i);
        inner.changed.notify_all();
        loop {
            if let Some((at, why)) = &state.failed {
                if i >= *at {
                    return Got::Failed(why.clone());
                }
            }
            if i >= inner.source.blocks.len() {
                return Got::End;
            }
            if i >= state.base && i < state.next() {
                state.stats.served += 1;
                return Got::Block(state.blocks[i - state.base].clone());
            }
            if i < state.base {
                let others_inside = state
                    .cursors
                    .iter()
                    .any(|(&id, &c)| id != self.id && c >= state.base);
                if others_inside {
                    return Got::Alone;
                }
                // Nobody else needs the window where it is: restart it here.
                state.clear(i);
                state.failed = None;
                spawn_decoder(inner, &mut state);
            } else if !state.producing {
                spawn_decoder(inner, &mut state);
            }
            state = inner.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Sends one block's chunks, those wholly below `keep` as slices of the block and the
/// others copied into buffers from `pool`; false when the board stopped listening.
fn send_block(
    block: &Block,
    offset: &mut u64,
    keep: u64,
    pool: &Receiver<Vec<u8>>,
    out: &SyncSender<Decoded>,
) -> bool {
    let send = |chunk: Chunk| out.send(Decoded::Chunk(chunk)).is_ok();
    match block {
        Block::Zero(len) => {
            let mut len = *len;
            while len > 0 {
                let n = len.min(CHUNK_LEN as u64) as usize;
                if !send(Chunk {
                    offset: *offset,
                    buf: Vec::new(),
                    len: n,
                    shared: None,
                }) {
                    return false;
                }
                *offset += n as u64;
                len -= n as u64;
            }
        }
        Block::Data(data) => {
            for (i, part) in data.chunks(CHUNK_LEN).enumerate() {
                let zero = rockusb_images::zero::is_zero(part);
                let shared = (!zero).then(|| (data.clone(), i * CHUNK_LEN));
                // Past the held region a chunk takes a token from the pool, which comes
                // back when the board is done with the chunk: the board's back-pressure.
                let token = if zero || *offset + part.len() as u64 <= keep {
                    Vec::new()
                } else {
                    let Ok(token) = pool.recv() else {
                        return false;
                    };
                    token
                };
                if !send(Chunk {
                    offset: *offset,
                    buf: token,
                    len: part.len(),
                    shared,
                }) {
                    return false;
                }
                *offset += part.len() as u64;
            }
        }
    }
    true
}

/// Starts a decoder from the window's end (a new generation: any older one stops).
fn spawn_decoder(inner: &Arc<Inner>, state: &mut Window) {
    state.generation += 1;
    state.producing = true;
    let (generation, from) = (state.generation, state.next());
    let inner = inner.clone();
    std::thread::spawn(move || decode(&inner, generation, from));
}

/// The shared decoder: blocks in order into the window, up to [`WINDOW_AHEAD`] blocks with
/// data ahead of the board furthest along.
fn decode(inner: &Inner, generation: u64, from: usize) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut blocks = ParallelBlocks::start_at(
        inner.source.clone(),
        from,
        threads,
        KEEP_AHEAD,
        inner.buffers.clone(),
    );
    let stop = |state: &mut Window| {
        if state.generation == generation {
            state.producing = false;
        }
        inner.changed.notify_all();
    };
    loop {
        {
            let mut state = inner.lock();
            loop {
                if state.generation != generation {
                    return;
                }
                let leader = state.cursors.values().copied().max();
                match leader {
                    // Nobody left to decode for.
                    None => return stop(&mut state),
                    Some(leader) if state.data_from(leader) < inner.ahead => break,
                    Some(_) => {}
                }
                state = inner.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
        let piece = blocks.next_piece();
        let mut state = inner.lock();
        if state.generation != generation {
            return;
        }
        let block = match piece {
            None => return stop(&mut state),
            Some(Err(error)) => {
                state.failed = Some((state.next(), error.to_string()));
                return stop(&mut state);
            }
            Some(Ok(Piece::Zero(len))) => Block::Zero(len),
            Some(Ok(Piece::Data(data))) => Block::Data(Arc::new(data)),
        };
        if let Block::Data(_) = block {
            state.data_blocks += 1;
        }
        state.blocks.push_back(block);
        state.stats.decoded += 1;
        state.trim(inner.window);
        drop(state);
        inner.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ImageSource;

    /// A 40 MiB .xz of 1 MiB blocks, every third block holding data.
    fn sample(dir: &std::path::Path) -> (Vec<u8>, std::path::PathBuf) {
        crate::source::test_images::blocky_xz(dir, "s.raw.xz", 40 * CHUNK_LEN, |b| b % 3 == 0)
    }

    /// Everything a board receives from image byte `from` on, reassembled.
    fn collect(rx: Receiver<Decoded>, pool: SyncSender<Vec<u8>>, from: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            match rx.recv().unwrap() {
                Decoded::Chunk(c) => {
                    assert_eq!(c.offset, from + out.len() as u64);
                    out.extend_from_slice(c.data());
                    if !c.buf.is_empty() {
                        let _ = pool.try_send(c.buf);
                    }
                }
                Decoded::End { len } => {
                    assert_eq!(len, from + out.len() as u64);
                    return out;
                }
                Decoded::Failed(f) => panic!("{f:?}"),
            }
        }
    }

    #[test]
    fn boards_share_one_decode_and_a_slow_one_decodes_what_it_missed_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (image, path) = sample(dir.path());
        let source = ImageSource::open(&path).unwrap();
        let shared = SharedImage::new(source.xz_blocks.clone().unwrap(), 4);
        assert!(shared.serves(&source));

        // Two boards at the same pace: one decode for both.
        let feeds: Vec<_> = (0..2).map(|_| shared.subscribe().start(0)).collect();
        let got: Vec<Vec<u8>> = feeds
            .into_iter()
            .map(|f| std::thread::spawn(move || collect(f.decoded, f.chunk_pool, 0)))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert!(got.iter().all(|g| g == &image));
        let stats = shared.stats();
        assert_eq!(stats.decoded, 40, "{stats:?}");
        assert_eq!(stats.served, 80, "{stats:?}");

        // A board that has not started reading does not hold another back: the first
        // reads 30 MiB alone; the late one then decodes what fell out of the window on its
        // own, and takes the rest from the window.
        let shared = SharedImage::new(source.xz_blocks.clone().unwrap(), 4);
        let fast = shared.subscribe().start(0);
        let (fast_rx, fast_pool) = (fast.decoded, fast.chunk_pool);
        let late = shared.subscribe();
        let mut fast_out = Vec::new();
        while fast_out.len() < 30 * CHUNK_LEN {
            match fast_rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("the first board is not held back by the idle one")
            {
                Decoded::Chunk(c) => {
                    fast_out.extend_from_slice(c.data());
                    let _ = fast_pool.try_send(c.buf);
                }
                _ => panic!("the image ended early"),
            }
        }
        let late = late.start(0);
        let late = std::thread::spawn(move || collect(late.decoded, late.chunk_pool, 0));
        assert_eq!(late.join().unwrap(), image);
        let from = fast_out.len() as u64;
        fast_out.extend(collect(fast_rx, fast_pool, from));
        assert_eq!(fast_out, image);
        let stats = shared.stats();
        assert!(stats.redecoded > 0, "{stats:?}");
        assert_eq!(stats.served + stats.redecoded, 80, "{stats:?}");
    }

    /// Reads a board's chunks, `hold` data chunks in hand at a time (a pipeline's
    /// backlog), pausing `pause` after each; counts the window's blocks with data.
    fn read_slowly(
        feed: Feed,
        hold: usize,
        pause: std::time::Duration,
        shared: &SharedImage,
        most_in_window: &std::sync::atomic::AtomicUsize,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut in_hand = VecDeque::new();
        loop {
            match feed.decoded.recv().unwrap() {
                Decoded::Chunk(c) => {
                    out.extend_from_slice(c.data());
                    let held = shared.inner.lock().data_blocks;
                    most_in_window.fetch_max(held, std::sync::atomic::Ordering::Relaxed);
                    in_hand.push_back(c);
                    if in_hand.len() > hold {
                        let done: Chunk = in_hand.pop_front().unwrap();
                        let _ = feed.chunk_pool.try_send(done.buf);
                    }
                    std::thread::sleep(pause);
                }
                Decoded::End { .. } => return out,
                Decoded::Failed(f) => panic!("{f:?}"),
            }
        }
    }

    #[test]
    fn a_board_a_few_blocks_behind_is_served_from_the_window_and_the_window_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        // Every block holds data: the window counts every one.
        let (image, path) = crate::source::test_images::blocky_xz(
            dir.path(),
            "dense.raw.xz",
            40 * CHUNK_LEN,
            |_| true,
        );
        let source = ImageSource::open(&path).unwrap();
        let pause = std::time::Duration::from_millis(5);
        let run = |subscribe_late: bool| {
            let shared = SharedImage::new(source.xz_blocks.clone().unwrap(), 24);
            let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            // Two boards at one pace, the second starting a few blocks later; it has its
            // place at the window from the start (as a fleet's boards have), or not.
            let early = (!subscribe_late).then(|| shared.subscribe());
            let lead = shared.subscribe().start(0);
            let (s, m) = (shared.clone(), most.clone());
            let first = std::thread::spawn(move || read_slowly(lead, 1, pause, &s, &m));
            std::thread::sleep(pause * 6);
            let (behind, passed) = match early {
                Some(subscription) => (subscription, 0),
                None => {
                    let subscription = shared.subscribe();
                    (subscription, shared.inner.lock().base)
                }
            };
            let behind = behind.start(0);
            let (s, m) = (shared.clone(), most.clone());
            let second = std::thread::spawn(move || read_slowly(behind, 1, pause, &s, &m));
            assert!(first.join().unwrap() == image);
            assert!(second.join().unwrap() == image);
            assert_eq!(
                shared.inner.lock().data_blocks,
                0,
                "nothing kept once all are past"
            );
            let most = most.load(std::sync::atomic::Ordering::Relaxed);
            (shared.stats(), passed, most)
        };

        let (stats, _, most) = run(false);
        assert_eq!(stats.redecoded, 0, "{stats:?}");
        assert_eq!(stats.decoded, 40, "decoded once: {stats:?}");
        // The window held the gap between the boards and the decoder's lead, not its cap.
        assert!(most < 24, "at most {most} blocks with data in the window");

        // A board that comes later decodes alone only what went by before it came.
        let (stats, passed, _) = run(true);
        assert!(passed > 0, "the first board had moved on");
        assert!(
            stats.redecoded <= passed as u64,
            "{stats:?}, {passed} gone by"
        );
        assert_eq!(stats.served + stats.redecoded, 80, "{stats:?}");
    }
}
