//! Decoding a seekable .xz file block by block, in parallel and ahead of need.
//!
//! xz blocks are independent, and the index says where each one lies. Each block is
//! decoded on its own as a one-block stream (the file's stream header, the block, an
//! index and footer made for it), so liblzma checks the block's own check (CRC64 for
//! Talos) as usual.
//!
//! Why not liblzma's multi-threaded stream decoder for this: it must decode every byte
//! in order, so while the writer is busy with the image's data, it can get only as far
//! ahead as memory allows, and the long zero tail of a Talos image (1.5 GiB after
//! ~300 MiB of data) is decoded only once the data has gone out, with the link idle. Here
//! workers run ahead over the whole file while the writer is busy: a block that decodes
//! to zeros costs nothing to keep (it is just a length), and a block with data is kept
//! only near the front, else dropped and decoded again when its turn comes (CPU is
//! spare while the link is the bottleneck). Blocks come out strictly in order, and so do
//! errors: a damaged block is reported at its position in the image.

use super::FileAt;
use super::block_pool::{BlockPool, PooledBlock};
use super::xz_index::XzBlock;
use crate::positional::PositionalFile;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;

/// Blocks must be whole multiples of this (but the last), so they map onto the flash
/// pipeline's chunks; Talos's `xz -0 -T0` blocks are exactly this size.
pub const UNIT: u64 = 1 << 20;
/// Blocks larger than this are left to the stream decoder (it bounds their memory).
pub const MAX_BLOCK: u64 = 8 << 20;
/// How far (in blocks) the workers may scan ahead of the consumer for empty blocks.
const MAX_SCAN_AHEAD: usize = 1 << 16;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A seekable .xz file's blocks, when they suit block-parallel decoding.
#[derive(Debug, Clone)]
pub struct XzBlocks {
    pub file: Arc<FileAt>,
    pub blocks: Vec<XzBlock>,
}

impl XzBlocks {
    /// `Some` when every block but the last is a whole number of `unit` bytes and no
    /// block exceeds [`MAX_BLOCK`] (Talos: 1 MiB blocks), so blocks map onto chunks.
    pub fn new(file: Arc<FileAt>, blocks: Vec<XzBlock>, unit: u64) -> Option<XzBlocks> {
        let (last, rest) = blocks.split_last()?;
        let fits = |b: &XzBlock| b.uncompressed_len <= MAX_BLOCK && b.uncompressed_len > 0;
        (!rest.is_empty()
            && rest
                .iter()
                .all(|b| fits(b) && b.uncompressed_len % unit == 0)
            && fits(last))
        .then_some(XzBlocks { file, blocks })
    }
}

/// Decodes one block into `out` (cleared first).
pub fn decode_block(file: &FileAt, block: &XzBlock, out: &mut Vec<u8>) -> io::Result<()> {
    BlockDecoder::new().decode(file, block, out)
}

/// Decodes block after block on one thread, keeping liblzma's decoder between them.
///
/// Each block goes through the decoder as a stream of its own, one after another into one
/// decoder that accepts concatenated streams: liblzma then keeps its dictionary (256 KiB
/// to 8 MiB, by the preset) from one block to the next instead of allocating it afresh
/// for every block, one more large buffer less churning through the allocator.
#[derive(Default)]
pub struct BlockDecoder {
    /// The one-block stream being decoded.
    stream: Vec<u8>,
    /// Dropped after an error, so a damaged block leaves nothing behind for the next.
    lzma: Option<liblzma::stream::Stream>,
}

impl BlockDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `block` of `file` into `out` (cleared first); liblzma checks the block's
    /// own check, and the index and footer made for it.
    pub fn decode(&mut self, file: &FileAt, block: &XzBlock, out: &mut Vec<u8>) -> io::Result<()> {
        one_block_stream(file, block, &mut self.stream)?;
        let result = self.run(block, out);
        if result.is_err() {
            self.lzma = None;
        }
        result
    }

    fn run(&mut self, block: &XzBlock, out: &mut Vec<u8>) -> io::Result<()> {
        let lzma = match &mut self.lzma {
            Some(lzma) => lzma,
            None => self.lzma.insert(
                liblzma::stream::Stream::new_stream_decoder(
                    u64::MAX,
                    liblzma::stream::CONCATENATED,
                )
                .map_err(|e| io::Error::other(e.to_string()))?,
            ),
        };
        out.clear();
        // Exactly the block's length: a reused buffer is never grown, and a block that
        // decodes longer than the index says stops the decoder (no room) and is refused.
        out.reserve_exact(block.uncompressed_len as usize);
        let mut input = &self.stream[..];
        while !input.is_empty() {
            let (in_before, out_before) = (lzma.total_in(), out.len());
            lzma.process_vec(input, out, liblzma::stream::Action::Run)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            input = &input[(lzma.total_in() - in_before) as usize..];
            if lzma.total_in() == in_before && out.len() == out_before {
                break;
            }
        }
        // All of the stream taken means its footer was read and checked too.
        if !input.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a block does not end within the {} bytes its index gives it",
                    block.uncompressed_len
                ),
            ));
        }
        if out.len() as u64 != block.uncompressed_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a block decoded to {} bytes where the index says {}",
                    out.len(),
                    block.uncompressed_len
                ),
            ));
        }
        Ok(())
    }
}

/// `block` as a stream of its own: the file's stream header, the block, and an index and
/// footer made for it.
fn one_block_stream(file: &FileAt, block: &XzBlock, stream: &mut Vec<u8>) -> io::Result<()> {
    let padded = block.unpadded_len.div_ceil(4) * 4;
    stream.clear();
    stream.reserve(12 + padded as usize + 64);
    stream.extend_from_slice(&block.stream_header);
    stream.resize(12 + padded as usize, 0);
    file.0.read_exact_at(&mut stream[12..], block.offset)?;
    // The index: indicator, one record, padding, CRC32.
    let index_start = stream.len();
    stream.push(0);
    for v in [1, block.unpadded_len, block.uncompressed_len] {
        put_varint(stream, v);
    }
    while (stream.len() - index_start) % 4 != 0 {
        stream.push(0);
    }
    let crc = CRC32.checksum(&stream[index_start..]);
    stream.extend_from_slice(&crc.to_le_bytes());
    let index_len = (stream.len() - index_start) as u32;
    // The footer: CRC32 of (backward size, flags), backward size, flags, magic.
    let mut tail = [0u8; 6];
    tail[..4].copy_from_slice(&(index_len / 4 - 1).to_le_bytes());
    tail[4..].copy_from_slice(&block.stream_header[6..8]);
    stream.extend_from_slice(&CRC32.checksum(&tail).to_le_bytes());
    stream.extend_from_slice(&tail);
    stream.extend_from_slice(b"YZ");
    Ok(())
}

/// Random access to the decoded image through the index: a read decodes only the
/// blocks it touches (a few recently used ones are kept). The sparse planner reads file
/// systems' free-space records this way before the stream starts, wherever in the
/// image they lie.
pub struct BlockReader {
    blocks: XzBlocks,
    /// Most recently used last.
    cache: Vec<(usize, Arc<Vec<u8>>)>,
    /// The file's identity, under which its decoded blocks are shared in this process.
    file: Option<FileKey>,
}

/// A file's device and inode.
type FileKey = (u64, u64);

/// Blocks some [`BlockReader`] in this process holds decoded: the boards of a fleet read
/// the same file systems' records from the same image, and one copy serves them all.
static LIVE_BLOCKS: Mutex<Vec<LiveBlock>> = Mutex::new(Vec::new());

/// A file, a block index and the block decoded (while some reader holds it).
type LiveBlock = (FileKey, usize, Weak<Vec<u8>>);

fn file_key(file: &FileAt) -> Option<FileKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        file.0.metadata().ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        None
    }
}

/// Decoded blocks a [`BlockReader`] keeps (1 MiB each for Talos images).
const READER_CACHE_BLOCKS: usize = 8;

impl BlockReader {
    pub fn new(blocks: XzBlocks) -> Self {
        Self {
            file: file_key(&blocks.file),
            blocks,
            cache: Vec::new(),
        }
    }

    /// Block `i` decoded: another reader's copy of it if one is alive, else decoded here
    /// (and offered to the others).
    fn decode_shared(&self, i: usize) -> io::Result<Arc<Vec<u8>>> {
        let Some(key) = self.file else {
            let mut out = Vec::new();
            decode_block(&self.blocks.file, &self.blocks.blocks[i], &mut out)?;
            return Ok(Arc::new(out));
        };
        let live = |list: &mut Vec<LiveBlock>| {
            list.retain(|(_, _, b)| b.strong_count() > 0);
            list.iter()
                .filter(|(k, j, _)| *k == key && *j == i)
                .find_map(|(_, _, b)| b.upgrade())
        };
        if let Some(block) = live(&mut LIVE_BLOCKS.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(block);
        }
        let mut out = Vec::new();
        decode_block(&self.blocks.file, &self.blocks.blocks[i], &mut out)?;
        let block = Arc::new(out);
        let mut list = LIVE_BLOCKS.lock().unwrap_or_else(|e| e.into_inner());
        // Another reader may have decoded it meanwhile: keep one copy.
        if let Some(theirs) = live(&mut list) {
            return Ok(theirs);
        }
        list.push((key, i, Arc::downgrade(&block)));
        Ok(block)
    }

    /// The index of the block holding image byte `offset`.
    fn block_at(&self, offset: u64) -> Option<usize> {
        let list = &self.blocks.blocks;
        let i = list.partition_point(|b| b.uncompressed_offset + b.uncompressed_len <= offset);
        list.get(i)
            .filter(|b| b.uncompressed_offset <= offset)
            .map(|_| i)
    }

    fn decoded(&mut self, i: usize) -> io::Result<&[u8]> {
        if let Some(pos) = self.cache.iter().position(|(j, _)| *j == i) {
            let entry = self.cache.remove(pos);
            self.cache.push(entry);
        } else {
            let block = self.decode_shared(i)?;
            if self.cache.len() >= READER_CACHE_BLOCKS {
                self.cache.remove(0);
            }
            self.cache.push((i, block));
        }
        Ok(self.cache.last().map_or(&[][..], |(_, d)| d.as_slice()))
    }
}

impl rockusb_images::read_at::ReadAt for BlockReader {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let Some(i) = self.block_at(at) else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("image byte {at} lies past the end of the .xz data"),
                ));
            };
            let start = self.blocks.blocks[i].uncompressed_offset;
            let data = self.decoded(i)?;
            let from = (at - start) as usize;
            let n = (data.len() - from.min(data.len())).min(buf.len() - done);
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "an .xz block decoded shorter than its index says",
                ));
            }
            buf[done..done + n].copy_from_slice(&data[from..from + n]);
            done += n;
        }
        Ok(())
    }
}

/// True for a block whose compressed size is a sliver of its decoded size, as a block
/// of zeros is (1 MiB of zeros: ~100 bytes with `xz -0`).
fn looks_empty(block: &XzBlock) -> bool {
    block.unpadded_len.saturating_mul(256) <= block.uncompressed_len
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One block's decoded contents.
pub enum Piece {
    /// The block is all zeros.
    Zero(u64),
    /// The block's bytes; the buffer goes back to the decoder's pool when dropped.
    Data(PooledBlock),
}

enum Slot {
    Busy,
    Zero,
    Data(PooledBlock),
    /// Decoded and found to hold data, but too far ahead to keep: decode again.
    Redo,
    Failed(io::Error),
}

struct State {
    slots: BTreeMap<usize, Slot>,
    next_scan: usize,
    deliver: usize,
    held: usize,
    stop: bool,
}

struct Shared {
    blocks: XzBlocks,
    keep_ahead: usize,
    buffers: Arc<BlockPool>,
    state: Mutex<State>,
    changed: Condvar,
}

/// Blocks decoded by worker threads, handed out in order.
pub struct ParallelBlocks {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl ParallelBlocks {
    /// Starts `threads` workers; at most `keep_ahead` blocks with data are held. Blocks
    /// are decoded into buffers the caller's dropped blocks hand back.
    pub fn start(blocks: XzBlocks, threads: usize, keep_ahead: usize) -> ParallelBlocks {
        let buffers = BlockPool::new(keep_ahead + threads);
        Self::start_at(blocks, 0, threads, keep_ahead, buffers)
    }

    /// [`ParallelBlocks::start`] from block `first` on, decoding into `buffers`' spares.
    pub fn start_at(
        blocks: XzBlocks,
        first: usize,
        threads: usize,
        keep_ahead: usize,
        buffers: Arc<BlockPool>,
    ) -> ParallelBlocks {
        let shared = Arc::new(Shared {
            blocks,
            keep_ahead: keep_ahead.max(1),
            buffers,
            state: Mutex::new(State {
                slots: BTreeMap::new(),
                next_scan: first,
                deliver: first,
                held: 0,
                stop: false,
            }),
            changed: Condvar::new(),
        });
        let workers = (0..threads.max(1))
            .map(|_| {
                let shared = shared.clone();
                std::thread::spawn(move || worker(&shared))
            })
            .collect();
        ParallelBlocks { shared, workers }
    }

    /// The next block in order, `None` after the last.
    pub fn next_piece(&mut self) -> Option<io::Result<Piece>> {
        let shared = &self.shared;
        let mut state = shared.state.lock().ok()?;
        loop {
            let i = state.deliver;
            if i >= shared.blocks.blocks.len() {
                return None;
            }
            let ready = matches!(
                state.slots.get(&i),
                Some(Slot::Zero | Slot::Data(_) | Slot::Failed(_))
            );
            if ready {
                let slot = state.slots.remove(&i);
                state.deliver += 1;
                let piece = match slot {
                    Some(Slot::Zero) => Ok(Piece::Zero(shared.blocks.blocks[i].uncompressed_len)),
                    Some(Slot::Data(buf)) => {
                        state.held -= 1;
                        Ok(Piece::Data(buf))
                    }
                    Some(Slot::Failed(e)) => {
                        state.stop = true;
                        Err(e)
                    }
                    _ => unreachable!("checked above"),
                };
                shared.changed.notify_all();
                return Some(piece);
            }
            state = shared.changed.wait(state).ok()?;
        }
    }
}

impl Drop for ParallelBlocks {
    fn drop(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.stop = true;
        }
        self.shared.changed.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(shared: &Shared) {
    let blocks = &shared.blocks.blocks;
    let (mut buf, mut decoder) = (Vec::new(), BlockDecoder::new());
    loop {
        // Pick work: a block near the front that must be (re)decoded, else scan on.
        let i = {
            let Ok(mut state) = shared.state.lock() else {
                return;
            };
            loop {
                if state.stop {
                    return;
                }
                let front = state.deliver;
                let window_end = (front + shared.keep_ahead).min(blocks.len());
                // The front window first: blocks never decoded, or dropped for memory.
                let due = (front..window_end)
                    .find(|i| matches!(state.slots.get(i), None | Some(Slot::Redo)));
                if let Some(i) = due {
                    state.slots.insert(i, Slot::Busy);
                    break i;
                }
                // Then scan ahead, but only blocks that compress like zeros: a block
                // that holds data waits for the window rather than being decoded twice.
                let limit = blocks.len().min(front.saturating_add(MAX_SCAN_AHEAD));
                let mut i = state.next_scan.max(window_end);
                while i < limit && (state.slots.contains_key(&i) || !looks_empty(&blocks[i])) {
                    i += 1;
                }
                state.next_scan = i;
                if i < limit {
                    state.next_scan = i + 1;
                    state.slots.insert(i, Slot::Busy);
                    break i;
                }
                state = match shared.changed.wait(state) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
        };
        if buf.capacity() == 0 {
            buf = shared.buffers.take();
        }
        let result = decoder.decode(&shared.blocks.file, &blocks[i], &mut buf);
        let Ok(mut state) = shared.state.lock() else {
            return;
        };
        let slot = match result {
            Err(e) => Slot::Failed(e),
            Ok(()) if rockusb_images::zero::is_zero(&buf) => Slot::Zero,
            Ok(()) if i < state.deliver + shared.keep_ahead && state.held < shared.keep_ahead => {
                state.held += 1;
                Slot::Data(PooledBlock::new(std::mem::take(&mut buf), &shared.buffers))
            }
            Ok(()) => Slot::Redo,
        };
        state.slots.insert(i, slot);
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An .xz file of 1 MiB blocks: data, zeros, data, zeros × 6, data (short).
    fn sample(dir: &std::path::Path) -> (Vec<u8>, std::path::PathBuf) {
        let len = 10 * UNIT as usize + 1000;
        crate::source::test_images::blocky_xz(dir, "s.xz", len, |b| matches!(b, 0 | 2 | 10))
    }

    fn blocks_of(path: &std::path::Path) -> XzBlocks {
        let file = Arc::new(FileAt(std::fs::File::open(path).unwrap()));
        let len = file.0.metadata().unwrap().len();
        let info =
            super::super::xz_index::read_index(len, |off, buf| file.0.read_exact_at(buf, off))
                .unwrap();
        XzBlocks::new(file, info.block_list, UNIT).expect("1 MiB blocks suit")
    }

    #[test]
    fn blocks_come_out_in_order_with_zero_blocks_as_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let (image, path) = sample(dir.path());
        let mut decoder = ParallelBlocks::start(blocks_of(&path), 2, 1);
        let mut out = Vec::new();
        let mut zero_blocks = 0;
        while let Some(piece) = decoder.next_piece() {
            match piece.unwrap() {
                Piece::Zero(n) => {
                    zero_blocks += 1;
                    out.resize(out.len() + n as usize, 0);
                }
                Piece::Data(d) => out.extend_from_slice(&d),
            }
        }
        assert_eq!(zero_blocks, 8);
        assert!(out == image);
    }

    #[test]
    fn block_reader_reads_any_range_across_blocks_and_refuses_past_the_end() {
        use rockusb_images::read_at::ReadAt;
        let dir = tempfile::tempdir().unwrap();
        let (image, path) = sample(dir.path());
        let mut reader = BlockReader::new(blocks_of(&path));
        for (offset, len) in [
            (0u64, 10usize),
            (UNIT - 3, 7),
            (2 * UNIT + 5, 3 * UNIT as usize),
            (10 * UNIT, 1000),
        ] {
            let mut buf = vec![0u8; len];
            reader.read_exact_at(offset, &mut buf).unwrap();
            assert!(
                buf[..] == image[offset as usize..offset as usize + len],
                "{offset}+{len}"
            );
        }
        let mut buf = [0u8; 2];
        let err = reader.read_exact_at(10 * UNIT + 999, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn two_readers_of_one_file_share_a_decoded_block_while_both_hold_it() {
        use rockusb_images::read_at::ReadAt;
        let dir = tempfile::tempdir().unwrap();
        let (image, path) = sample(dir.path());
        // Two boards open the image separately, as a fleet's boards do.
        let mut a = BlockReader::new(blocks_of(&path));
        let mut b = BlockReader::new(blocks_of(&path));
        let mut buf = [0u8; 16];
        a.read_exact_at(2 * UNIT + 3, &mut buf).unwrap();
        b.read_exact_at(2 * UNIT + 9, &mut buf).unwrap();
        assert_eq!(buf[..], image[2 * UNIT as usize + 9..][..16]);
        let (held_a, held_b) = (&a.cache[0], &b.cache[0]);
        assert_eq!((held_a.0, held_b.0), (2, 2));
        assert!(Arc::ptr_eq(&held_a.1, &held_b.1), "one decoded copy");
        // Another file's block at the same index is its own.
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let (_, other_path) = sample(&other);
        let mut c = BlockReader::new(blocks_of(&other_path));
        c.read_exact_at(2 * UNIT, &mut buf).unwrap();
        assert!(!Arc::ptr_eq(&held_a.1, &c.cache[0].1));
    }

    #[test]
    fn a_damaged_block_is_reported_at_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let (_, path) = sample(dir.path());
        let blocks = blocks_of(&path);
        let third = blocks.blocks[2];
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[(third.offset + third.unpadded_len / 2) as usize] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let mut decoder = ParallelBlocks::start(blocks_of(&path), 2, 4);
        assert!(matches!(decoder.next_piece(), Some(Ok(Piece::Data(_)))));
        assert!(matches!(decoder.next_piece(), Some(Ok(Piece::Zero(_)))));
        assert!(matches!(decoder.next_piece(), Some(Err(_))));
    }

    #[test]
    fn one_decoder_decodes_block_after_block_and_recovers_from_a_damaged_one() {
        let dir = tempfile::tempdir().unwrap();
        let (image, path) = sample(dir.path());
        let blocks = blocks_of(&path);
        let mut decoder = BlockDecoder::new();
        let mut out = Vec::new();
        // Out of order and twice over, as a board that fell behind decodes them.
        for i in [0, 2, 1, 10, 2, 0] {
            let block = &blocks.blocks[i];
            decoder.decode(&blocks.file, block, &mut out).unwrap();
            let at = block.uncompressed_offset as usize;
            assert!(
                out[..] == image[at..at + block.uncompressed_len as usize],
                "block {i}"
            );
        }
        let capacity = out.capacity();
        decoder
            .decode(&blocks.file, &blocks.blocks[2], &mut out)
            .unwrap();
        assert_eq!(
            out.capacity(),
            capacity,
            "a whole block fits the buffer it had"
        );

        // A block its index gives fewer bytes than it holds is refused, and so is a
        // damaged one; the decoder goes on with the next block as if nothing happened.
        let mut short = blocks.blocks[0];
        short.uncompressed_len -= 4096;
        let err = decoder.decode(&blocks.file, &short, &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let mut bytes = std::fs::read(&path).unwrap();
        let third = blocks.blocks[2];
        bytes[(third.offset + third.unpadded_len / 2) as usize] ^= 0x20;
        let damaged = dir.path().join("damaged.xz");
        std::fs::write(&damaged, &bytes).unwrap();
        let damaged = blocks_of(&damaged);
        assert!(
            decoder
                .decode(&damaged.file, &damaged.blocks[2], &mut out)
                .is_err()
        );
        decoder
            .decode(&damaged.file, &damaged.blocks[0], &mut out)
            .unwrap();
        assert!(out[..] == image[..UNIT as usize]);
    }
}
