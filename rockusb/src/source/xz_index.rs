//! Reading an .xz file's index: the uncompressed size, known before one byte is decoded.
//!
//! An .xz stream ends with an index (one record per block: compressed and uncompressed
//! size) and a 12-byte footer that says how long the index is. Reading them from the end
//! of the file gives the image's exact size up front, so "does it fit the storage" is
//! answered before the first write, and a truncated download (no footer at the end) is
//! refused before the first write too. The walk goes backwards over every stream of a
//! file (xz allows concatenated streams with zero padding between them).
//!
//! Format: tukaani.org xz-file-format-1.1.0, §2.1 (stream header and footer), §4 (index).

use std::io;

const HEADER_MAGIC: &[u8; 6] = &[0xFD, b'7', b'z', b'X', b'Z', 0x00];
const FOOTER_MAGIC: &[u8; 2] = b"YZ";
const HEADER_LEN: u64 = 12;
const FOOTER_LEN: u64 = 12;
/// An index this large would describe millions of blocks; refuse before allocating it.
const MAX_INDEX_LEN: u64 = 64 << 20;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// What the index says about the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XzInfo {
    /// Total uncompressed bytes of every stream.
    pub uncompressed_len: u64,
    pub streams: u32,
    pub blocks: u64,
    /// Every block, in file order.
    pub block_list: Vec<XzBlock>,
}

/// Where one block lies, enough to decode it on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XzBlock {
    /// The header of the stream the block belongs to (its flags name the check).
    pub stream_header: [u8; 12],
    /// Byte offset of the block header in the file.
    pub offset: u64,
    /// Block header + compressed data + check, without the padding to four bytes.
    pub unpadded_len: u64,
    pub uncompressed_offset: u64,
    pub uncompressed_len: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum XzIndexError {
    #[error(
        "the file does not end with an xz stream footer (found {found:02x?} where \"YZ\" belongs): it is truncated, e.g. an interrupted download; download it again"
    )]
    Truncated { found: Vec<u8> },
    #[error("the xz {what} is damaged ({detail}); the file is corrupt: download it again")]
    Corrupt { what: &'static str, detail: String },
    #[error("could not read the xz index: {0}")]
    Io(io::Error),
}

impl From<io::Error> for XzIndexError {
    fn from(e: io::Error) -> Self {
        XzIndexError::Io(e)
    }
}

fn corrupt(what: &'static str, detail: impl Into<String>) -> XzIndexError {
    XzIndexError::Corrupt {
        what,
        detail: detail.into(),
    }
}

/// Reads the index of the .xz data readable through `read_at`, which is `len` bytes long.
pub fn read_index(
    len: u64,
    mut read_at: impl FnMut(u64, &mut [u8]) -> io::Result<()>,
) -> Result<XzInfo, XzIndexError> {
    let mut info = XzInfo {
        uncompressed_len: 0,
        streams: 0,
        blocks: 0,
        block_list: Vec::new(),
    };
    let mut pos = len;
    loop {
        // Stream padding: zero bytes, a multiple of four, after a stream.
        let mut word = [0u8; 4];
        while pos >= 4 + HEADER_LEN + FOOTER_LEN {
            read_at(pos - 4, &mut word)?;
            if word != [0; 4] {
                break;
            }
            pos -= 4;
        }
        if pos < HEADER_LEN + FOOTER_LEN {
            let mut tail = vec![0u8; pos.min(2) as usize];
            read_at(pos - tail.len() as u64, &mut tail)?;
            return Err(XzIndexError::Truncated { found: tail });
        }
        let mut footer = [0u8; FOOTER_LEN as usize];
        read_at(pos - FOOTER_LEN, &mut footer)?;
        if &footer[10..12] != FOOTER_MAGIC {
            return Err(XzIndexError::Truncated {
                found: footer[10..12].to_vec(),
            });
        }
        let stored = u32::from_le_bytes(footer[0..4].try_into().unwrap_or_default());
        if CRC32.checksum(&footer[4..10]) != stored {
            return Err(corrupt("stream footer", "its CRC32 does not match"));
        }
        let backward = u64::from(u32::from_le_bytes(
            footer[4..8].try_into().unwrap_or_default(),
        ));
        let index_len = (backward + 1) * 4;
        let index_start = (pos - FOOTER_LEN)
            .checked_sub(index_len)
            .filter(|_| index_len <= MAX_INDEX_LEN)
            .ok_or_else(|| {
                corrupt(
                    "stream footer",
                    format!("it records an index of {index_len} bytes, more than the file holds"),
                )
            })?;
        let mut index = vec![0u8; index_len as usize];
        read_at(index_start, &mut index)?;
        let parsed = parse_index(&index)?;
        let blocks_len = parsed.padded_blocks_len;
        let stream_start = index_start
            .checked_sub(blocks_len)
            .and_then(|s| s.checked_sub(HEADER_LEN))
            .ok_or_else(|| corrupt("index", "its blocks add up to more than the file holds"))?;
        let mut header = [0u8; HEADER_LEN as usize];
        read_at(stream_start, &mut header)?;
        if &header[..6] != HEADER_MAGIC {
            return Err(corrupt(
                "stream header",
                format!(
                    "no xz magic at byte {stream_start}, where the index puts the stream's start"
                ),
            ));
        }
        let stored = u32::from_le_bytes(header[8..12].try_into().unwrap_or_default());
        if CRC32.checksum(&header[6..8]) != stored {
            return Err(corrupt("stream header", "its CRC32 does not match"));
        }
        if header[6..8] != footer[8..10] {
            return Err(corrupt(
                "stream footer",
                "its flags differ from the stream header's",
            ));
        }
        info.uncompressed_len = info
            .uncompressed_len
            .checked_add(parsed.uncompressed_len)
            .ok_or_else(|| corrupt("index", "the sizes overflow"))?;
        info.blocks += parsed.records;
        info.streams += 1;
        // Streams are walked from the end: this one's blocks go in front.
        let mut offset = stream_start + HEADER_LEN;
        let mut blocks: Vec<XzBlock> = parsed
            .sizes
            .iter()
            .map(|&(unpadded_len, uncompressed_len)| {
                let block = XzBlock {
                    stream_header: header,
                    offset,
                    unpadded_len,
                    uncompressed_offset: 0,
                    uncompressed_len,
                };
                offset += unpadded_len.div_ceil(4) * 4;
                block
            })
            .collect();
        blocks.append(&mut info.block_list);
        info.block_list = blocks;
        pos = stream_start;
        if pos == 0 {
            let mut at = 0;
            for b in &mut info.block_list {
                b.uncompressed_offset = at;
                at += b.uncompressed_len;
            }
            return Ok(info);
        }
    }
}

/// One stream's index, summed.
struct ParsedIndex {
    /// Bytes the stream's blocks occupy, each padded to four bytes.
    padded_blocks_len: u64,
    uncompressed_len: u64,
    records: u64,
    /// (unpadded size, uncompressed size) of each block.
    sizes: Vec<(u64, u64)>,
}

fn parse_index(index: &[u8]) -> Result<ParsedIndex, XzIndexError> {
    let body_len = index.len() - 4;
    let stored = u32::from_le_bytes(index[body_len..].try_into().unwrap_or_default());
    if CRC32.checksum(&index[..body_len]) != stored {
        return Err(corrupt("index", "its CRC32 does not match"));
    }
    if index[0] != 0 {
        return Err(corrupt(
            "index",
            "it does not start with the index indicator 0x00",
        ));
    }
    let mut at = 1;
    let count = varint(index, &mut at)?;
    let mut blocks = 0u64;
    let mut uncompressed = 0u64;
    // Each record takes at least two bytes: a count beyond that is a lie.
    if count > index.len() as u64 / 2 {
        return Err(corrupt("index", "it counts more records than it holds"));
    }
    let mut sizes = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let unpadded = varint(index, &mut at)?;
        let size = varint(index, &mut at)?;
        sizes.push((unpadded, size));
        blocks = blocks
            .checked_add(unpadded.div_ceil(4) * 4)
            .ok_or_else(|| corrupt("index", "block sizes overflow"))?;
        uncompressed = uncompressed
            .checked_add(size)
            .ok_or_else(|| corrupt("index", "block sizes overflow"))?;
    }
    if at > body_len || index[at..body_len].iter().any(|&b| b != 0) || (body_len - at) >= 4 {
        return Err(corrupt("index", "its records do not fill it exactly"));
    }
    Ok(ParsedIndex {
        padded_blocks_len: blocks,
        uncompressed_len: uncompressed,
        records: count,
        sizes,
    })
}

/// An xz multibyte integer: 7 bits per byte, least significant first, at most 9 bytes.
fn varint(buf: &[u8], at: &mut usize) -> Result<u64, XzIndexError> {
    let mut value = 0u64;
    for i in 0..9 {
        let byte = *buf
            .get(*at)
            .ok_or_else(|| corrupt("index", "a record runs past its end"))?;
        *at += 1;
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(corrupt("index", "a number is not minimally encoded"));
            }
            return Ok(value);
        }
    }
    Err(corrupt("index", "a number is longer than 9 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn xz(data: &[u8], threads: u32) -> Vec<u8> {
        let stream = liblzma::stream::MtStreamBuilder::new()
            .threads(threads)
            .preset(0)
            .block_size(64 * 1024)
            .encoder()
            .unwrap();
        let mut enc = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn index_of(file: &[u8]) -> Result<XzInfo, XzIndexError> {
        read_index(file.len() as u64, |off, buf| {
            let src = file
                .get(off as usize..off as usize + buf.len())
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(src);
            Ok(())
        })
    }

    #[test]
    fn gives_the_uncompressed_size_of_multi_block_and_concatenated_streams() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 / 13) as u8).collect();
        let one = xz(&data, 2);
        let info = index_of(&one).unwrap();
        assert_eq!(info.uncompressed_len, 300_000);
        assert_eq!(info.blocks, 5);
        let mut two = one.clone();
        two.extend_from_slice(&[0u8; 8]);
        two.extend_from_slice(&xz(&data[..1000], 1));
        let info = index_of(&two).unwrap();
        assert_eq!((info.uncompressed_len, info.streams), (301_000, 2));
        let last = info.block_list.last().unwrap();
        assert_eq!(last.uncompressed_offset, 300_000);
        assert_eq!(last.offset, one.len() as u64 + 8 + 12);
        assert_eq!(info.block_list[1].uncompressed_offset, 64 * 1024);
    }

    #[test]
    fn refuses_truncated_and_damaged_files() {
        let file = xz(&[7u8; 100_000], 1);
        assert!(matches!(
            index_of(&file[..file.len() - 100]),
            Err(XzIndexError::Truncated { .. })
        ));
        let mut bad = file.clone();
        let n = bad.len();
        bad[n - 16] ^= 0x40; // inside the index
        assert!(matches!(index_of(&bad), Err(XzIndexError::Corrupt { .. })));
        assert!(matches!(
            index_of(b"short"),
            Err(XzIndexError::Truncated { .. })
        ));
    }
}
