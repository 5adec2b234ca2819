//! Telling an image's format from its first bytes, not from its name.
//!
//! A download can be misnamed, and stdin has no name at all, so the content decides. Formats
//! that are not disk images (archives, other compressors, text such as an HTML error page
//! saved in place of the image) are recognised too, so they are refused with a useful
//! message instead of being written to the board as if they were raw sectors.

/// A format the flasher can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Uncompressed sectors.
    Raw,
    Xz,
    Gzip,
    Zstd,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Raw => "raw",
            Format::Xz => "xz",
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
        })
    }
}

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Image(Format),
    /// A recognised format that is not a disk image: its name and what to do instead.
    Unsupported {
        what: &'static str,
        hint: &'static str,
    },
}

/// How many leading bytes [`sniff`] looks at (a tar header's magic sits at 257).
pub const SNIFF_LEN: usize = 512;

const XZ_MAGIC: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0x00];
const GZIP_MAGIC: &[u8] = &[0x1F, 0x8B];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xB5, 0x2F, 0xFD];

/// Classifies an image by its first bytes (up to [`SNIFF_LEN`]).
pub fn sniff(head: &[u8]) -> Sniffed {
    let starts = |magic: &[u8]| head.starts_with(magic);
    let unsupported = |what, hint| Sniffed::Unsupported { what, hint };
    const DECOMPRESS: &str =
        "decompress it first and flash the .raw, or pipe it: `… -dc FILE | rockusb flash -`";
    const EXTRACT: &str = "extract the disk image (.raw or .raw.xz) from it and flash that";
    if starts(XZ_MAGIC) {
        return Sniffed::Image(Format::Xz);
    }
    if starts(GZIP_MAGIC) {
        return Sniffed::Image(Format::Gzip);
    }
    if starts(ZSTD_MAGIC) {
        return Sniffed::Image(Format::Zstd);
    }
    if starts(b"BZh") && head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)) {
        return unsupported("bzip2-compressed data", DECOMPRESS);
    }
    if starts(&[0x04, 0x22, 0x4D, 0x18]) {
        return unsupported("lz4-compressed data", DECOMPRESS);
    }
    if starts(b"LZIP") {
        return unsupported("lzip-compressed data", DECOMPRESS);
    }
    if starts(&[0x5D, 0x00, 0x00]) {
        return unsupported("legacy .lzma data", DECOMPRESS);
    }
    if starts(b"PK\x03\x04") {
        return unsupported("a zip archive", EXTRACT);
    }
    if starts(&[b'7', b'z', 0xBC, 0xAF, 0x27, 0x1C]) {
        return unsupported("a 7-Zip archive", EXTRACT);
    }
    if head.get(257..262) == Some(b"ustar") {
        return unsupported("a tar archive", EXTRACT);
    }
    if starts(b"QFI\xfb") {
        return unsupported(
            "a qcow2 virtual disk",
            "convert it with `qemu-img convert -O raw IMAGE out.raw` and flash that",
        );
    }
    if starts(&[0x3A, 0xFF, 0x26, 0xED]) {
        return unsupported(
            "an Android sparse image",
            "convert it with `simg2img IMAGE out.raw` and flash that",
        );
    }
    if looks_like_text(head) {
        return unsupported(
            "text, not a disk image (perhaps an error page saved instead of the download)",
            "check the file and download the image again",
        );
    }
    Sniffed::Image(Format::Raw)
}

/// True for a head of printable text: every disk image starts with an MBR, a boot sector
/// or zeros, all of which hold bytes no text has.
fn looks_like_text(head: &[u8]) -> bool {
    head.len() >= 16
        && std::str::from_utf8(head).is_ok_and(|s| {
            s.chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        })
}

/// The format a file name promises (`.xz`, `.gz`, `.zst`), if any.
pub fn format_from_name(name: &str) -> Option<Format> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".xz") {
        Some(Format::Xz)
    } else if lower.ends_with(".gz") {
        Some(Format::Gzip)
    } else if lower.ends_with(".zst") || lower.ends_with(".zstd") {
        Some(Format::Zstd)
    } else if lower.ends_with(".raw") || lower.ends_with(".img") {
        Some(Format::Raw)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_images_by_content() {
        assert_eq!(sniff(b"\xFD7zXZ\0\0\x04"), Sniffed::Image(Format::Xz));
        assert_eq!(sniff(&[0x1F, 0x8B, 8, 0]), Sniffed::Image(Format::Gzip));
        assert_eq!(
            sniff(&[0x28, 0xB5, 0x2F, 0xFD, 0]),
            Sniffed::Image(Format::Zstd)
        );
        assert_eq!(sniff(&[0u8; 512]), Sniffed::Image(Format::Raw));
        let mut mbr = [0u8; 512];
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        assert_eq!(sniff(&mbr), Sniffed::Image(Format::Raw));
    }

    #[test]
    fn refuses_archives_other_compressors_and_text() {
        for head in [
            &b"BZh91AY&SY"[..],
            b"PK\x03\x04\x14\0\0\0",
            b"<!DOCTYPE html><html><head><title>404</title>",
            b"QFI\xfb\0\0\0\x03",
        ] {
            assert!(
                matches!(sniff(head), Sniffed::Unsupported { .. }),
                "{head:?}"
            );
        }
        let mut tar = vec![0u8; 512];
        tar[..8].copy_from_slice(b"talos.ra");
        tar[257..262].copy_from_slice(b"ustar");
        assert!(matches!(
            sniff(&tar),
            Sniffed::Unsupported {
                what: "a tar archive",
                ..
            }
        ));
    }

    #[test]
    fn names_promise_formats() {
        assert_eq!(format_from_name("metal-arm64.raw.xz"), Some(Format::Xz));
        assert_eq!(format_from_name("X.ZST"), Some(Format::Zstd));
        assert_eq!(format_from_name("disk"), None);
    }
}
