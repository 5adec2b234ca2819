//! Sample `.xz` images for the decoders' tests: compressed by liblzma in 1 MiB blocks, as
//! `xz -T0` compresses the images boards are flashed with, so block-wise decoding applies.

use std::io::Write;
use std::path::{Path, PathBuf};

const MIB: usize = 1 << 20;

/// A `len`-byte image whose 1 MiB blocks hold non-zero bytes where `has_data(block)` and
/// zeros elsewhere, and its `.xz` written to `dir/name`.
pub fn blocky_xz(
    dir: &Path,
    name: &str,
    len: usize,
    has_data: impl Fn(usize) -> bool,
) -> (Vec<u8>, PathBuf) {
    let mut image = vec![0u8; len];
    for (i, b) in image.iter_mut().enumerate() {
        if has_data(i / MIB) {
            *b = (i % 251) as u8 | 1;
        }
    }
    let stream = liblzma::stream::MtStreamBuilder::new()
        .threads(2)
        .preset(0)
        .block_size(MIB as u64)
        .encoder()
        .unwrap();
    let mut enc = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    enc.write_all(&image).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, enc.finish().unwrap()).unwrap();
    (image, path)
}
