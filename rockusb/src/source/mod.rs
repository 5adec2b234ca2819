//! Image input: where the bytes come from (a file or stdin), what format they are in
//! (decided by content) and how to decode them. Nothing here knows about boards.
//!
//! Opening a source checks everything that can be checked without decoding: the format,
//! a name that promises another format, and for .xz files the index, which gives the
//! exact image size and proves the file is not truncated.

pub mod adapted;
pub mod block_pool;
pub mod check;
pub mod decode;
pub mod shared;
pub mod sniff;
#[cfg(test)]
mod test_images;
pub mod xz_blocks;
pub mod xz_index;

pub use sniff::{Format, Sniffed};

use crate::positional::PositionalFile;
use rockusb_images::read_at::ReadAt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open {}: {error}", path.display())]
    Open { path: PathBuf, error: io::Error },
    #[error("cannot read {name}: {error}")]
    Read { name: String, error: io::Error },
    #[error("{name} is empty: there is no image to write")]
    Empty { name: String },
    #[error("{name} is {what}, which cannot be flashed: {hint}")]
    Unsupported {
        name: String,
        what: &'static str,
        hint: &'static str,
    },
    #[error(
        "{name} is named like {promised} data but holds {found} data: the file is damaged or misnamed; download it again"
    )]
    NameMismatch {
        name: String,
        promised: Format,
        found: Format,
    },
    #[error("{name}: {error}")]
    XzIndex {
        name: String,
        error: xz_index::XzIndexError,
    },
    #[error("cannot start the {format} decoder: {detail}")]
    Decoder { format: Format, detail: String },
    #[error(
        "{name} is damaged: its compressed data is corrupt ({error}). Nothing was written \
         and the board is as it was; download the image again (and compare its checksum)"
    )]
    Damaged { name: String, error: io::Error },
}

/// An opened image, not yet decoded.
pub struct ImageSource {
    /// The file name, or "stdin".
    pub name: String,
    pub format: Format,
    /// The decoded image's exact length, when known before decoding: a raw file's size
    /// or an .xz file's index.
    pub image_len: Option<u64>,
    /// The file's size as stored (compressed), when it is a file.
    pub stored_len: Option<u64>,
    /// Number of concatenated .xz streams (from the index; 1 when unknown).
    pub xz_streams: u32,
    /// Random access to the decoded image, when the source offers it cheaply (a raw
    /// file, an adapted image): the pre-flight check reads its backup GPT and the sparse
    /// plan its file systems through it.
    pub random_access: Option<ImageAt>,
    /// An .xz file whose blocks can be decoded in parallel and ahead of need.
    pub xz_blocks: Option<xz_blocks::XzBlocks>,
    /// Decoded bytes from a decoder shared with other boards ([`shared`]) instead of a
    /// decoder of its own.
    pub shared: Option<shared::Subscription>,
    input: Box<dyn Read + Send>,
}

impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageSource")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("image_len", &self.image_len)
            .finish_non_exhaustive()
    }
}

impl ImageSource {
    /// Opens a file, or stdin for `-`.
    pub fn open(path: &Path) -> Result<ImageSource, SourceError> {
        if path == Path::new("-") {
            return Self::from_reader("stdin", Box::new(io::stdin()));
        }
        let name = path.display().to_string();
        let open_err = |error| SourceError::Open {
            path: path.to_path_buf(),
            error,
        };
        let file = File::open(path).map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        if len == 0 {
            return Err(SourceError::Empty { name });
        }
        let mut head = vec![0u8; (len as usize).min(sniff::SNIFF_LEN)];
        file.read_exact_at(&mut head, 0)
            .map_err(|error| SourceError::Read {
                name: name.clone(),
                error,
            })?;
        let format = classify(&name, &head)?;
        if let Some(promised) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(sniff::format_from_name)
            .filter(|&p| p != Format::Raw && p != format)
        {
            return Err(SourceError::NameMismatch {
                name,
                promised,
                found: format,
            });
        }
        let mut xz_blocks = None;
        let (image_len, xz_streams) = match format {
            Format::Raw => (Some(len), 1),
            Format::Xz => {
                let info = xz_index::read_index(len, |off, buf| file.read_exact_at(buf, off))
                    .map_err(|error| SourceError::XzIndex {
                        name: name.clone(),
                        error,
                    })?;
                let handle = Arc::new(FileAt(File::open(path).map_err(open_err)?));
                xz_blocks = xz_blocks::XzBlocks::new(handle, info.block_list, xz_blocks::UNIT);
                (Some(info.uncompressed_len), info.streams)
            }
            // gzip's trailer keeps the size modulo 4 GiB and zstd frames need not record
            // it: the GPT tells the length instead (see the pre-flight check).
            Format::Gzip | Format::Zstd => (None, 1),
        };
        // Its own handle: the stream's reads must not share a file position with the
        // random reads of the pre-flight check.
        let random_access = match format {
            Format::Raw => Some(ImageAt::new(FileAt(File::open(path).map_err(open_err)?))),
            _ => None,
        };
        Ok(ImageSource {
            name,
            format,
            image_len,
            stored_len: Some(len),
            xz_streams,
            random_access,
            xz_blocks,
            shared: None,
            input: Box::new(file),
        })
    }

    /// Wraps a stream (stdin, a pipe): the format is sniffed from its first bytes, which
    /// are kept and replayed.
    pub fn from_reader(
        name: &str,
        mut reader: Box<dyn Read + Send>,
    ) -> Result<ImageSource, SourceError> {
        let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
        (&mut reader)
            .take(sniff::SNIFF_LEN as u64)
            .read_to_end(&mut head)
            .map_err(|error| SourceError::Read {
                name: name.to_string(),
                error,
            })?;
        if head.is_empty() {
            return Err(SourceError::Empty {
                name: name.to_string(),
            });
        }
        let format = classify(name, &head)?;
        Ok(ImageSource {
            name: name.to_string(),
            format,
            image_len: None,
            stored_len: None,
            xz_streams: 1,
            random_access: None,
            xz_blocks: None,
            shared: None,
            input: Box::new(io::Cursor::new(head).chain(reader)),
        })
    }

    /// A reader of the decoded image by offset, when the source offers one: its own random
    /// access (a raw file, an adapted image), or a new reader over the .xz block index
    /// (each call makes an independent one, with its own block cache).
    pub fn random_reader(&self) -> Option<ImageAt> {
        match (&self.random_access, &self.xz_blocks) {
            (Some(image), _) => Some(image.clone()),
            (None, Some(blocks)) => Some(ImageAt::new(xz_blocks::BlockReader::new(blocks.clone()))),
            (None, None) => None,
        }
    }

    /// The stored (possibly compressed) bytes, and how to decode them.
    pub fn into_parts(self) -> (Box<dyn Read + Send>, decode::DecoderSpec) {
        let spec = decode::DecoderSpec {
            format: self.format,
            xz_streams: self.xz_streams,
        };
        (self.input, spec)
    }

    /// The decoded image as one reader (decoding on the calling thread's reads).
    pub fn into_decoded(self) -> Result<Box<dyn Read + Send>, SourceError> {
        let (input, spec) = self.into_parts();
        spec.decoder(input)
    }
}

fn classify(name: &str, head: &[u8]) -> Result<Format, SourceError> {
    match sniff::sniff(head) {
        Sniffed::Image(format) => Ok(format),
        Sniffed::Unsupported { what, hint } => Err(SourceError::Unsupported {
            name: name.to_string(),
            what,
            hint,
        }),
    }
}

/// Random access to a file by `pread`, which leaves every handle's position alone.
#[derive(Debug)]
pub struct FileAt(pub File);

impl ReadAt for &FileAt {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
}

impl ReadAt for FileAt {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
}

/// Random access to a decoded image that threads can share: a raw file, or an adapted
/// image over its source.
#[derive(Clone)]
pub struct ImageAt(Arc<Mutex<Box<dyn ReadAt + Send>>>);

impl ImageAt {
    pub fn new(reader: impl ReadAt + Send + 'static) -> Self {
        ImageAt(Arc::new(Mutex::new(Box::new(reader))))
    }
}

impl std::fmt::Debug for ImageAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImageAt")
    }
}

impl ReadAt for &ImageAt {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        // A reader that panicked mid-read left no state a later read depends on.
        let mut reader = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        reader.read_exact_at(offset, buf)
    }
}
