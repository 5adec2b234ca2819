//! Random access to image or storage bytes without owning a file.
//!
//! The GPT reader and the pre-flight check need a handful of sectors at known offsets
//! (LBA 0, LBA 1, the entry array, the backup header at the end). The flasher has them
//! in different shapes: a buffered prefix of a streamed image, a raw file, or a board's
//! storage read over USB. [`ReadAt`] is the one interface all of them fit.

use std::io::{self, Read, Seek, SeekFrom};

/// A source of bytes addressed by absolute offset.
pub trait ReadAt {
    /// Fills all of `buf` from `offset`.
    ///
    /// Must fail with [`io::ErrorKind::UnexpectedEof`] when the source ends (or its
    /// available window ends) before `offset + buf.len()`; readers treat that as "the data
    /// is not there" rather than as an I/O failure.
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl<T: ReadAt + ?Sized> ReadAt for &mut T {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
}

fn eof(offset: u64, len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{len} bytes at offset {offset} lie beyond the available data"),
    )
}

/// Bytes held in memory that start at image offset 0.
impl ReadAt for &[u8] {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        Window::new(0, self).read_exact_at(offset, buf)
    }
}

impl ReadAt for &Vec<u8> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        Window::new(0, self).read_exact_at(offset, buf)
    }
}

/// A slice of an image held in memory, starting at image offset `base` (for example the
/// tail of a streamed image kept to check its backup GPT).
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    base: u64,
    bytes: &'a [u8],
}

impl<'a> Window<'a> {
    pub fn new(base: u64, bytes: &'a [u8]) -> Self {
        Self { base, bytes }
    }
}

impl ReadAt for Window<'_> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let source = offset
            .checked_sub(self.base)
            .and_then(|rel| usize::try_from(rel).ok())
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .and_then(|range| self.bytes.get(range))
            .ok_or_else(|| eof(offset, buf.len()))?;
        buf.copy_from_slice(source);
        Ok(())
    }
}

/// Several windows of one image, e.g. the decoded chunks of a streamed image's start and
/// its kept tail: a read is served piece by piece from whichever windows hold its bytes,
/// so it may span adjacent windows.
#[derive(Debug, Clone, Default)]
pub struct Windows<'a>(pub Vec<Window<'a>>);

impl<'a> FromIterator<(u64, &'a [u8])> for Windows<'a> {
    fn from_iter<I: IntoIterator<Item = (u64, &'a [u8])>>(pieces: I) -> Self {
        Windows(
            pieces
                .into_iter()
                .map(|(base, bytes)| Window::new(base, bytes))
                .collect(),
        )
    }
}

impl Window<'_> {
    /// The bytes held from image offset `at` to the window's end, if it holds `at`.
    fn held_from(&self, at: u64) -> Option<&[u8]> {
        let rel = usize::try_from(at.checked_sub(self.base)?).ok()?;
        self.bytes.get(rel..).filter(|rest| !rest.is_empty())
    }
}

impl ReadAt for Windows<'_> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut filled = 0usize;
        while filled < buf.len() {
            let at = offset + filled as u64;
            let held = self
                .0
                .iter()
                .find_map(|w| w.held_from(at))
                .ok_or_else(|| eof(at, buf.len() - filled))?;
            let n = held.len().min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&held[..n]);
            filled += n;
        }
        Ok(())
    }
}

/// Keeps the last `capacity` bytes of a streamed image, so its backup GPT (the last 33
/// sectors) can be checked once the stream ends, with [`TailBuffer::window`] next to
/// the buffered prefix in a [`Windows`]. Only each chunk's last `capacity` bytes are
/// copied.
#[derive(Debug, Clone)]
pub struct TailBuffer {
    capacity: usize,
    bytes: Vec<u8>,
    /// Image offset one past the last byte pushed.
    end: u64,
}

impl TailBuffer {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            bytes: Vec::with_capacity(capacity),
            end: 0,
        }
    }

    /// Records the image bytes at `offset`; chunks must come in order.
    pub fn push(&mut self, offset: u64, data: &[u8]) {
        if offset != self.end {
            // A gap: what was kept no longer ends where the new data starts.
            self.bytes.clear();
        }
        let keep = data.len().min(self.capacity);
        let drop = (self.bytes.len() + keep).saturating_sub(self.capacity);
        self.bytes.drain(..drop.min(self.bytes.len()));
        self.bytes
            .extend_from_slice(data.get(data.len() - keep..).unwrap_or_default());
        self.end = offset.saturating_add(data.len() as u64);
    }

    /// The kept bytes, at their image offsets.
    pub fn window(&self) -> Window<'_> {
        Window::new(self.end - self.bytes.len() as u64, &self.bytes)
    }
}

/// Adapts a closure `(offset, buf) -> io::Result<()>`, e.g. one that reads sectors from a
/// board over USB.
pub struct ReadAtFn<F>(pub F);

impl<F: FnMut(u64, &mut [u8]) -> io::Result<()>> ReadAt for ReadAtFn<F> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (self.0)(offset, buf)
    }
}

/// Adapts any `Read + Seek` (a `File`, a `Cursor`).
pub struct SeekReader<R>(pub R);

impl<R: Read + Seek> ReadAt for SeekReader<R> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.seek(SeekFrom::Start(offset))?;
        self.0.read_exact(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_may_span_adjacent_windows_but_not_a_gap() {
        let a = [1u8; 4];
        let b = [2u8; 4];
        let mut windows: Windows = [(10, &a[..]), (14, &b[..]), (30, &a[..])]
            .into_iter()
            .collect();
        let mut buf = [0u8; 6];
        windows.read_exact_at(11, &mut buf).unwrap();
        assert_eq!(buf, [1, 1, 1, 2, 2, 2]);
        assert!(windows.read_exact_at(16, &mut buf).is_err());
        assert!(windows.read_exact_at(9, &mut [0u8; 1]).is_err());
    }

    #[test]
    fn window_reads_inside_and_reports_eof_outside() {
        let data: Vec<u8> = (0..=255).collect();
        let mut w = Window::new(1000, &data);
        let mut buf = [0u8; 4];
        w.read_exact_at(1010, &mut buf).unwrap();
        assert_eq!(buf, [10, 11, 12, 13]);
        for offset in [999, 1253, u64::MAX - 1] {
            let err = w.read_exact_at(offset, &mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "offset {offset}");
        }
    }

    #[test]
    fn windows_serve_each_read_from_the_window_that_holds_it() {
        let head = [1u8; 16];
        let tail = [2u8; 16];
        let mut w = Windows(vec![Window::new(0, &head), Window::new(100, &tail)]);
        let mut buf = [0u8; 4];
        w.read_exact_at(12, &mut buf).unwrap();
        assert_eq!(buf, [1; 4]);
        w.read_exact_at(110, &mut buf).unwrap();
        assert_eq!(buf, [2; 4]);
        // Straddling a window's end, or in the hole between them, is not available.
        for offset in [14, 50] {
            let err = w.read_exact_at(offset, &mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        }
    }

    #[test]
    fn tail_buffer_keeps_the_last_bytes_across_chunk_boundaries() {
        let image: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in [1usize, 7, 100, 3000, 20_000] {
            let mut tail = TailBuffer::new(1000);
            let mut offset = 0u64;
            for piece in image.chunks(chunk) {
                tail.push(offset, piece);
                offset += piece.len() as u64;
            }
            let mut buf = [0u8; 1000];
            tail.window().read_exact_at(9000, &mut buf).unwrap();
            assert_eq!(&buf[..], &image[9000..], "chunk {chunk}");
            assert!(tail.window().read_exact_at(8999, &mut buf[..1]).is_err());
        }
    }

    #[test]
    fn seek_reader_and_closure_read_the_same_bytes() {
        let data: Vec<u8> = (0..100).collect();
        let mut a = SeekReader(io::Cursor::new(data.clone()));
        let mut b = ReadAtFn(|off: u64, buf: &mut [u8]| (&data).read_exact_at(off, buf));
        let (mut x, mut y) = ([0u8; 8], [0u8; 8]);
        a.read_exact_at(40, &mut x).unwrap();
        b.read_exact_at(40, &mut y).unwrap();
        assert_eq!(x, y);
        assert_eq!(x[0], 40);
    }
}
