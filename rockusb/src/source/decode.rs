//! Decoders for each format, as plain readers.
//!
//! **xz.** Talos compresses with `xz -0 -T0`: independent 1 MiB blocks, so liblzma's
//! multi-threaded decoder can work on several blocks at once. (Flashing a seekable .xz
//! file with such blocks uses [`super::xz_blocks`] instead; this decoder serves stdin,
//! other block layouts and `rockusb gpt`.) It only does so when
//! `memlimit_threading` allows the extra buffers (with the default limit it silently
//! decodes on one thread); [`XZ_MEMLIMIT_THREADING`] allows them for Talos-sized blocks
//! while keeping memory bounded: an image with huge blocks (e.g. `xz -9 -T0`, 192 MiB
//! blocks) is decoded on one thread instead of buffering blocks of that size per thread.
//!
//! Which liblzma: the `liblzma-sys` crate builds its own copy unless it may link the
//! system's. On Debian 12 the system library (5.4.1) is older than the crate's minimum,
//! so the feature `system-liblzma` (on by default; it enables
//! `liblzma/uncheck_liblzma_version`) links it anyway: measured here, the bundled copy
//! is ~40 % slower per core than Debian's build and would miss the target of
//! 0.9 × `xz -dc -T0`. A fully static build turns the feature off and pays that cost.
//! The multi-threaded decoder is in liblzma since 5.4.0, so 5.4.1 has everything used.
//!
//! **gzip** uses flate2 (pure Rust) and reads every member (pigz may write several).
//! **zstd** uses the reference library, which reads concatenated frames.

use super::{Format, SourceError};
use std::io::Read;

/// Memory the xz decoder may use for threading: about 3 × block size per thread, so
/// 1 MiB Talos blocks on a handful of threads fit. Decoding further ahead is the flash
/// pipeline's job (it queues zero chunks without buffers), not liblzma's.
pub const XZ_MEMLIMIT_THREADING: u64 = 16 << 20;

/// How to decode a source's stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderSpec {
    pub format: Format,
    /// Concatenated .xz streams: the multi-threaded decoder reads only one.
    pub xz_streams: u32,
}

impl DecoderSpec {
    pub fn decoder(
        &self,
        input: Box<dyn Read + Send>,
    ) -> Result<Box<dyn Read + Send>, SourceError> {
        let format = self.format;
        let failed = |e: liblzma::stream::Error| SourceError::Decoder {
            format,
            detail: e.to_string(),
        };
        Ok(match format {
            Format::Raw => input,
            Format::Xz if self.xz_streams > 1 => {
                // Rare (e.g. `cat a.xz b.xz`): the single-threaded decoder reads them all.
                let stream = liblzma::stream::Stream::new_stream_decoder(
                    u64::MAX,
                    liblzma::stream::CONCATENATED,
                )
                .map_err(failed)?;
                Box::new(liblzma::read::XzDecoder::new_stream(input, stream))
            }
            Format::Xz => {
                let threads = std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(16) as u32;
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .threads(threads)
                    .memlimit_threading(XZ_MEMLIMIT_THREADING)
                    .memlimit_stop(u64::MAX)
                    .decoder()
                    .map_err(failed)?;
                Box::new(liblzma::read::XzDecoder::new_stream(input, stream))
            }
            Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Format::Zstd => Box::new(zstd::stream::read::Decoder::new(input).map_err(|e| {
                SourceError::Decoder {
                    format,
                    detail: e.to_string(),
                }
            })?),
        })
    }
}

/// An .xz encoder in the form Talos publishes its images (`xz -0 -T0`: preset 0, one
/// thread per core) with 1 MiB blocks, so the blocks can later be decoded in parallel
/// and one by one (see [`super::xz_blocks`]).
pub fn xz_encoder<W: std::io::Write>(out: W) -> std::io::Result<liblzma::write::XzEncoder<W>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stream = liblzma::stream::MtStreamBuilder::new()
        .threads(threads as u32)
        .preset(0)
        .block_size(1 << 20)
        .check(liblzma::stream::Check::Crc64)
        .encoder()
        .map_err(std::io::Error::other)?;
    Ok(liblzma::write::XzEncoder::new_stream(out, stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(format: Format, data: &[u8]) -> Vec<u8> {
        let stored = match format {
            Format::Raw => data.to_vec(),
            Format::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 0);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Format::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Format::Zstd => zstd::encode_all(data, 3).unwrap(),
        };
        let spec = DecoderSpec {
            format,
            xz_streams: 1,
        };
        let mut out = Vec::new();
        spec.decoder(Box::new(std::io::Cursor::new(stored)))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn every_format_decodes_to_the_original() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for format in [Format::Raw, Format::Xz, Format::Gzip, Format::Zstd] {
            assert_eq!(roundtrip(format, &data), data, "{format}");
        }
    }

    #[test]
    fn a_truncated_xz_stream_is_an_error_not_a_short_image() {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 0);
        e.write_all(&vec![5u8; 100_000]).unwrap();
        let stored = e.finish().unwrap();
        let spec = DecoderSpec {
            format: Format::Xz,
            xz_streams: 1,
        };
        let cut = stored[..stored.len() - 20].to_vec();
        let mut out = Vec::new();
        let result = spec
            .decoder(Box::new(std::io::Cursor::new(cut)))
            .unwrap()
            .read_to_end(&mut out);
        assert!(
            result.is_err(),
            "decoded {} bytes without an error",
            out.len()
        );
    }
}
