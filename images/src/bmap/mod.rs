//! bmaptool block maps (formats 1.0–1.4 and 2.x): which blocks of an image hold data,
//! and the checksum of each mapped range.
//!
//! Version rules follow bmaptool's `BmapCopy._parse_bmap`:
//! - 1.0–1.2: no checksums at all.
//! - 1.3: SHA-1; ranges carry a `sha1` attribute, the file's own checksum is
//!   `<BmapFileSHA1>`.
//! - 1.4 and 2.x (1.4 was 2.0 released under the wrong number; the two are identical):
//!   `<ChecksumType>` names the function (bmaptool writes sha256), ranges carry `chksum`,
//!   the file's own checksum is `<BmapFileChecksum>`.
//! - A major version above 2 is refused.
//!
//! The file checksum is the hash of the whole file with the checksum's own text replaced
//! by as many ASCII `0`s (its first occurrence, as bmaptool does).

pub mod checksum;
pub mod hex;
mod verify;

pub use checksum::ChecksumType;
pub use verify::{BmapVerifyError, RangeStatus, RangeVerifier};

use crate::layout::{ByteRange, SECTOR_SIZE};
use roxmltree::{Document, Node};

/// The highest format major version understood.
pub const SUPPORTED_MAJOR: u32 = 2;

/// One `<Range>`: blocks `first..=last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmapRange {
    pub first_block: u64,
    pub last_block: u64,
    /// Raw digest bytes, when the range has a checksum.
    pub checksum: Option<Vec<u8>>,
}

/// A parsed, consistent bmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    pub version_major: u32,
    pub version_minor: u32,
    pub image_size: u64,
    pub block_size: u64,
    pub blocks_count: u64,
    pub mapped_blocks_count: u64,
    /// `None` for formats before 1.3.
    pub checksum_type: Option<ChecksumType>,
    /// The file's own checksum as written (hex), if the file has one.
    pub file_checksum: Option<String>,
    /// Sorted, non-overlapping.
    pub ranges: Vec<BmapRange>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BmapError {
    #[error("the bmap file is not UTF-8 text: {0}")]
    NotUtf8(String),
    #[error("the bmap file is not well-formed XML: {0}")]
    Xml(String),
    #[error("the root element is <{0}>, not <bmap>: this is not a bmap file")]
    NotBmap(String),
    #[error(
        "the <bmap> element has no valid version attribute (found {0:?}); expected e.g. \"2.0\""
    )]
    BadVersion(Option<String>),
    #[error(
        "bmap format version {major}.{minor} is newer than this tool understands (up to {SUPPORTED_MAJOR}.x); update rockusb or regenerate the bmap with an older bmaptool"
    )]
    UnsupportedVersion { major: u32, minor: u32 },
    #[error("the <{0}> element is missing")]
    Missing(&'static str),
    #[error("<{element}> holds {text:?}, not a number")]
    NotANumber { element: &'static str, text: String },
    #[error(
        "block size {0} is not a non-zero multiple of the 512-byte sector, so its blocks cannot be written as whole sectors"
    )]
    BadBlockSize(u64),
    #[error(
        "inconsistent bmap: an image of {image_size} bytes has {expected} blocks of {block_size} bytes, but <BlocksCount> says {blocks_count}"
    )]
    BlocksCountMismatch {
        image_size: u64,
        block_size: u64,
        blocks_count: u64,
        expected: u64,
    },
    #[error("checksum type {0:?} is not supported (only sha1 and sha256)")]
    UnsupportedChecksum(String),
    #[error("range {index}: {text:?} is not a block range like \"12\" or \"3-5\"")]
    BadRange { index: usize, text: String },
    #[error(
        "range {index} (blocks {first}-{last}) is reversed or extends past the last block {last_block}"
    )]
    RangeOutOfBounds {
        index: usize,
        first: u64,
        last: u64,
        last_block: u64,
    },
    #[error(
        "range {index} (starting at block {first}) does not come after the previous range (ending at block {previous_last}); ranges must be sorted and disjoint"
    )]
    RangesOutOfOrder {
        index: usize,
        first: u64,
        previous_last: u64,
    },
    #[error("range {index} has checksum {text:?}, which is not {len}-character hex ({kind})")]
    BadRangeChecksum {
        index: usize,
        text: String,
        kind: ChecksumType,
        len: usize,
    },
    #[error("<{element}> holds {text:?}, which is not {len}-character hex ({kind})")]
    BadFileChecksum {
        element: &'static str,
        text: String,
        kind: ChecksumType,
        len: usize,
    },
    #[error(
        "the bmap describes an image of {bmap_size} bytes, but this image is {image_len} bytes: the bmap belongs to another image; use the .bmap file published with this image"
    )]
    ImageSizeMismatch { bmap_size: u64, image_len: u64 },
    #[error(
        "the bmap file's own checksum does not match: it says {stored}, its contents give {computed}; the file was edited or damaged, get an intact copy"
    )]
    FileChecksumMismatch { stored: String, computed: String },
}

fn child<'a>(root: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    root.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

fn number(root: Node, element: &'static str) -> Result<u64, BmapError> {
    let text = child(root, element)
        .ok_or(BmapError::Missing(element))?
        .text()
        .unwrap_or("")
        .trim();
    text.parse().map_err(|_| BmapError::NotANumber {
        element,
        text: text.to_string(),
    })
}

impl Bmap {
    /// Parses a bmap file and, when it carries one, verifies its own checksum.
    pub fn parse(file: &[u8]) -> Result<Bmap, BmapError> {
        let bmap = Self::parse_unverified(file)?;
        bmap.verify_file_checksum(file)?;
        Ok(bmap)
    }

    /// Parses without checking the file's own checksum (to inspect a damaged file).
    pub fn parse_unverified(file: &[u8]) -> Result<Bmap, BmapError> {
        let text = std::str::from_utf8(file).map_err(|e| BmapError::NotUtf8(e.to_string()))?;
        // roxmltree refuses DTDs by default, so entity expansion cannot blow up.
        let doc = Document::parse(text).map_err(|e| BmapError::Xml(e.to_string()))?;
        let root = doc.root_element();
        if root.tag_name().name() != "bmap" {
            return Err(BmapError::NotBmap(root.tag_name().name().to_string()));
        }
        let version = root.attribute("version");
        let bad_version = || BmapError::BadVersion(version.map(str::to_string));
        let (major, minor) = version
            .and_then(|v| v.trim().split_once('.'))
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
            .ok_or_else(bad_version)?;
        if major > SUPPORTED_MAJOR || major == 0 || (major == 1 && minor > 4) {
            return Err(BmapError::UnsupportedVersion { major, minor });
        }

        let image_size = number(root, "ImageSize")?;
        let block_size = number(root, "BlockSize")?;
        let blocks_count = number(root, "BlocksCount")?;
        let mapped_blocks_count = number(root, "MappedBlocksCount")?;
        if block_size == 0 || block_size % SECTOR_SIZE != 0 {
            return Err(BmapError::BadBlockSize(block_size));
        }
        let expected = image_size.div_ceil(block_size);
        if blocks_count != expected {
            return Err(BmapError::BlocksCountMismatch {
                image_size,
                block_size,
                blocks_count,
                expected,
            });
        }

        // Which checksum, under which names (see the module comment).
        let (checksum_type, range_attr, file_element) = if major >= 2 || minor == 4 {
            let name = child(root, "ChecksumType")
                .ok_or(BmapError::Missing("ChecksumType"))?
                .text()
                .unwrap_or("")
                .trim();
            let kind = ChecksumType::from_name(name)
                .ok_or_else(|| BmapError::UnsupportedChecksum(name.to_string()))?;
            (Some(kind), "chksum", "BmapFileChecksum")
        } else if minor == 3 {
            (Some(ChecksumType::Sha1), "sha1", "BmapFileSHA1")
        } else {
            (None, "", "")
        };

        let file_checksum = match checksum_type {
            Some(kind) => match child(root, file_element) {
                Some(node) => {
                    let text = node.text().unwrap_or("").trim().to_string();
                    if hex::decode(&text).is_none_or(|d| d.len() != kind.digest_len()) {
                        return Err(BmapError::BadFileChecksum {
                            element: file_element,
                            text,
                            kind,
                            len: kind.digest_len() * 2,
                        });
                    }
                    Some(text)
                }
                None => None,
            },
            None => None,
        };

        let map = child(root, "BlockMap").ok_or(BmapError::Missing("BlockMap"))?;
        let mut ranges: Vec<BmapRange> = Vec::new();
        let range_nodes = map
            .children()
            .filter(|n| n.is_element() && n.tag_name().name() == "Range");
        for (index, node) in range_nodes.enumerate() {
            let text = node.text().unwrap_or("").trim();
            let bad = || BmapError::BadRange {
                index,
                text: text.to_string(),
            };
            let (first, last) = match text.split_once('-') {
                Some((a, b)) => (a.trim().parse().ok(), b.trim().parse().ok()),
                None => (text.parse().ok(), text.parse().ok()),
            };
            let (Some(first), Some(last)) = (first, last) else {
                return Err(bad());
            };
            if first > last || last >= blocks_count {
                return Err(BmapError::RangeOutOfBounds {
                    index,
                    first,
                    last,
                    last_block: blocks_count.saturating_sub(1),
                });
            }
            if let Some(prev) = ranges.last() {
                if first <= prev.last_block {
                    return Err(BmapError::RangesOutOfOrder {
                        index,
                        first,
                        previous_last: prev.last_block,
                    });
                }
            }
            let checksum = match (checksum_type, node.attribute(range_attr)) {
                (Some(kind), Some(text)) => {
                    let text = text.trim();
                    let digest = hex::decode(text).filter(|d| d.len() == kind.digest_len());
                    Some(digest.ok_or_else(|| BmapError::BadRangeChecksum {
                        index,
                        text: text.to_string(),
                        kind,
                        len: kind.digest_len() * 2,
                    })?)
                }
                _ => None,
            };
            ranges.push(BmapRange {
                first_block: first,
                last_block: last,
                checksum,
            });
        }

        Ok(Bmap {
            version_major: major,
            version_minor: minor,
            image_size,
            block_size,
            blocks_count,
            mapped_blocks_count,
            checksum_type,
            file_checksum,
            ranges,
        })
    }

    /// Checks the file's own checksum against `file` (the exact bytes parsed).
    /// A file without one passes.
    pub fn verify_file_checksum(&self, file: &[u8]) -> Result<(), BmapError> {
        let (Some(kind), Some(stored)) = (self.checksum_type, &self.file_checksum) else {
            return Ok(());
        };
        let needle = stored.as_bytes();
        let Some(at) = file.windows(needle.len()).position(|w| w == needle) else {
            // Only possible if the value was written with XML escapes; it cannot match.
            return Err(BmapError::FileChecksumMismatch {
                stored: stored.clone(),
                computed: "(checksum text not found verbatim in the file)".into(),
            });
        };
        let mut h = kind.hasher();
        h.update(file.get(..at).unwrap_or_default());
        h.update(&vec![b'0'; needle.len()]);
        h.update(file.get(at + needle.len()..).unwrap_or_default());
        let computed = hex::encode(&h.finish());
        if !computed.eq_ignore_ascii_case(stored) {
            return Err(BmapError::FileChecksumMismatch {
                stored: stored.clone(),
                computed,
            });
        }
        Ok(())
    }

    /// Checks that the bmap describes an image of `image_len` bytes.
    pub fn check_image_len(&self, image_len: u64) -> Result<(), BmapError> {
        if self.image_size == image_len {
            Ok(())
        } else {
            Err(BmapError::ImageSizeMismatch {
                bmap_size: self.image_size,
                image_len,
            })
        }
    }

    /// The image bytes range `index` covers (the last block may be cut by the image end).
    pub fn byte_range(&self, range: &BmapRange) -> ByteRange {
        let start = range.first_block.saturating_mul(self.block_size);
        let end = range
            .last_block
            .saturating_add(1)
            .saturating_mul(self.block_size)
            .min(self.image_size);
        ByteRange::new(start, end.saturating_sub(start))
    }

    /// All mapped byte ranges, in order (for [`crate::plan::PlanMode::Mapped`]).
    pub fn mapped_byte_ranges(&self) -> Vec<ByteRange> {
        self.ranges.iter().map(|r| self.byte_range(r)).collect()
    }

    /// Total mapped bytes according to the ranges.
    pub fn mapped_bytes(&self) -> u64 {
        self.mapped_byte_ranges().iter().map(|r| r.len).sum()
    }

    /// A streaming verifier for this bmap's range checksums.
    pub fn verifier(&self) -> RangeVerifier {
        RangeVerifier::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(ranges: &str, extra: &str) -> String {
        format!(
            r#"<?xml version="1.0" ?>
<bmap version="2.0">
  <ImageSize> 10000 </ImageSize>
  <BlockSize> 4096 </BlockSize>
  <BlocksCount> 3 </BlocksCount>
  <MappedBlocksCount> 2 </MappedBlocksCount>
  <ChecksumType> sha256 </ChecksumType>
  {extra}
  <BlockMap>{ranges}</BlockMap>
</bmap>"#
        )
    }

    #[test]
    fn parses_ranges_and_clips_the_last_block_to_the_image() {
        let b = Bmap::parse(v2("<Range> 0 </Range><Range>2-2</Range>", "").as_bytes()).unwrap();
        assert_eq!(b.check_image_len(10000), Ok(()));
        assert_eq!(
            b.check_image_len(12288),
            Err(BmapError::ImageSizeMismatch {
                bmap_size: 10000,
                image_len: 12288
            })
        );
        assert_eq!(b.ranges.len(), 2);
        assert_eq!(b.checksum_type, Some(ChecksumType::Sha256));
        assert_eq!(
            b.mapped_byte_ranges(),
            vec![ByteRange::new(0, 4096), ByteRange::new(8192, 10000 - 8192)]
        );
    }

    #[test]
    fn refuses_inconsistent_or_unsupported_files_with_the_reason() {
        type Check = fn(&BmapError) -> bool;
        let cases: [(String, Check); 6] = [
            (v2("<Range>1-0</Range>", ""), |e| {
                matches!(e, BmapError::RangeOutOfBounds { .. })
            }),
            (v2("<Range>3</Range>", ""), |e| {
                matches!(e, BmapError::RangeOutOfBounds { last_block: 2, .. })
            }),
            (v2("<Range>1-2</Range><Range>2</Range>", ""), |e| {
                matches!(e, BmapError::RangesOutOfOrder { index: 1, .. })
            }),
            (v2("<Range>x</Range>", ""), |e| {
                matches!(e, BmapError::BadRange { .. })
            }),
            (v2(r#"<Range chksum="abcd">0</Range>"#, ""), |e| {
                matches!(e, BmapError::BadRangeChecksum { len: 64, .. })
            }),
            (
                v2("", "").replace("version=\"2.0\"", "version=\"3.0\""),
                |e| matches!(e, BmapError::UnsupportedVersion { major: 3, .. }),
            ),
        ];
        for (text, check) in cases {
            let err = Bmap::parse(text.as_bytes()).unwrap_err();
            assert!(check(&err), "unexpected error {err:?} for {text}");
        }
        let err = Bmap::parse(
            v2("", "")
                .replace("<BlocksCount> 3", "<BlocksCount> 4")
                .as_bytes(),
        );
        assert!(matches!(
            err,
            Err(BmapError::BlocksCountMismatch { expected: 3, .. })
        ));
        assert!(matches!(
            Bmap::parse(b"<image/>"),
            Err(BmapError::NotBmap(_))
        ));
    }

    #[test]
    fn verifies_its_own_checksum_and_names_both_values_on_mismatch() {
        let zeros = "0".repeat(64);
        let template = v2(
            "<Range>0</Range>",
            &format!("<BmapFileChecksum> {zeros} </BmapFileChecksum>"),
        );
        let good = hex::encode(&ChecksumType::Sha256.digest(template.as_bytes()));
        let file = template.replace(&zeros, &good);
        let parsed = Bmap::parse(file.as_bytes()).unwrap();
        assert_eq!(parsed.file_checksum.as_deref(), Some(good.as_str()));

        let tampered = file.replace("<Range>0</Range>", "<Range>1</Range>");
        match Bmap::parse(tampered.as_bytes()) {
            Err(BmapError::FileChecksumMismatch { stored, computed }) => {
                assert_eq!(stored, good);
                assert_ne!(computed, good);
            }
            other => panic!("expected a checksum mismatch, got {other:?}"),
        }
        assert!(Bmap::parse_unverified(tampered.as_bytes()).is_ok());
    }
}
