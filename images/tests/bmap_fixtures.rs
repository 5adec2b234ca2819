//! bmap parsing and range verification against bmaptool's own test files
//! (`../shared/testdata/bmap`, values from MANIFEST.md / expected_values.json).

use rockusb_images::ByteRange;
use rockusb_images::bmap::{Bmap, BmapError, BmapVerifyError, ChecksumType, RangeStatus, hex};
use rockusb_images::plan::{PlanConfig, plan_bytes};
use std::path::{Path, PathBuf};
use std::process::Command;

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join("bmap").join(name)).unwrap()
}

/// The shared test data folder and bmaptool's test image from it (unpacked with gzip), or
/// `None` when either is missing (the test is skipped, or fails under CI).
fn test_image(test: &str) -> Option<(PathBuf, Vec<u8>)> {
    let dir = rockusb_testkit::testdata(test)?;
    if !rockusb_testkit::tool(test, "gzip", "gzip") {
        return None;
    }
    let path = dir.join("bmap/bmaptool__test.image.gz");
    let image = rockusb_testkit::run(Command::new("gzip").arg("-dc").arg(path));
    Some((dir, image))
}

#[test]
fn bmaptool_fixtures_parse_with_the_documented_fields() {
    let Some(dir) = rockusb_testkit::testdata("bmaptool_fixtures_parse_with_the_documented_fields")
    else {
        return;
    };
    let cases = [
        ("bmaptool__test.image.bmap.v1.2", (1, 2), None, None),
        (
            "bmaptool__test.image.bmap.v1.3",
            (1, 3),
            Some(ChecksumType::Sha1),
            Some("e235f7cd0c6b8c07a2e6f2538510fb763e7790a6"),
        ),
        (
            "bmaptool__test.image.bmap.v1.4",
            (1, 4),
            Some(ChecksumType::Sha256),
            Some("4310fd457a88d307abeeb593a7888e1fa3cae0cfc01d905158967c904c5375e5"),
        ),
        (
            "bmaptool__test.image.bmap.v2.0",
            (2, 0),
            Some(ChecksumType::Sha256),
            Some("d9cf7d44790d04fcbb089c5eeec7700e9233439ab6e4bd759035906e20f90070"),
        ),
    ];
    for (name, version, kind, file_checksum) in cases {
        let bmap = Bmap::parse(&read(&dir, name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((bmap.version_major, bmap.version_minor), version, "{name}");
        assert_eq!(bmap.image_size, 821_752, "{name}");
        assert_eq!(bmap.block_size, 4096, "{name}");
        assert_eq!(bmap.blocks_count, 201, "{name}");
        assert_eq!(bmap.mapped_blocks_count, 117, "{name}");
        assert_eq!(bmap.checksum_type, kind, "{name}");
        assert_eq!(bmap.file_checksum.as_deref(), file_checksum, "{name}");
        assert_eq!(bmap.ranges.len(), 48, "{name}");
        let first: Vec<(u64, u64)> = bmap.ranges[..5]
            .iter()
            .map(|r| (r.first_block, r.last_block))
            .collect();
        assert_eq!(
            first,
            [(0, 1), (3, 5), (9, 10), (12, 12), (15, 18)],
            "{name}"
        );
        let mapped_blocks: u64 = bmap
            .ranges
            .iter()
            .map(|r| r.last_block - r.first_block + 1)
            .sum();
        assert_eq!(mapped_blocks, 117, "{name}");
        assert_eq!(
            bmap.ranges.iter().all(|r| r.checksum.is_some()),
            kind.is_some(),
            "{name}"
        );
    }
}

#[test]
fn bmap_rs_fixtures_parse_and_the_zeroed_file_checksum_is_refused() {
    let Some(dir) =
        rockusb_testkit::testdata("bmap_rs_fixtures_parse_and_the_zeroed_file_checksum_is_refused")
    else {
        return;
    };
    let bmap = Bmap::parse(&read(&dir, "bmap-rs__test.img.bmap")).unwrap();
    assert_eq!(bmap.image_size, 16_777_216);
    assert_eq!(bmap.blocks_count, 4096);
    assert_eq!(bmap.ranges.len(), 5);
    assert_eq!(bmap.mapped_bytes(), 1026 * 4096);
    assert_eq!(
        bmap.mapped_byte_ranges()[1],
        ByteRange::new(1024 * 4096, 512 * 4096)
    );

    // simple.bmap carries an all-zero BmapFileChecksum: not the hash of the file.
    let simple = read(&dir, "bmap-rs__simple.bmap");
    match Bmap::parse(&simple) {
        Err(BmapError::FileChecksumMismatch { stored, .. }) => {
            assert_eq!(stored, "0".repeat(64))
        }
        other => panic!("expected a file checksum mismatch, got {other:?}"),
    }
    let unverified = Bmap::parse_unverified(&simple).unwrap();
    assert_eq!(unverified.ranges.len(), 5);
    assert_eq!(unverified.ranges[4].first_block, 512);
    assert_eq!(unverified.ranges[4].last_block, 1024);
}

#[test]
fn every_range_of_the_bmaptool_image_verifies_in_any_chunking() {
    let test = "every_range_of_the_bmaptool_image_verifies_in_any_chunking";
    let Some((dir, image)) = test_image(test) else {
        return;
    };
    assert_eq!(image.len(), 821_752);
    for name in [
        "bmaptool__test.image.bmap.v1.3",
        "bmaptool__test.image.bmap.v1.4",
        "bmaptool__test.image.bmap.v2.0",
    ] {
        let bmap = Bmap::parse(&read(&dir, name)).unwrap();
        for chunk in [4096usize, 7000, 65536, 1 << 20] {
            let mut v = bmap.verifier();
            let mut offset = 0u64;
            for piece in image.chunks(chunk) {
                v.feed(offset, piece)
                    .unwrap_or_else(|e| panic!("{name}, chunk {chunk}: {e}"));
                offset += piece.len() as u64;
            }
            v.finish().unwrap();
            assert_eq!(v.matched(), 48, "{name}, chunk {chunk}");
        }
    }
    // v1.2 has no checksums: every range completes unchecked.
    let old = Bmap::parse(&read(&dir, "bmaptool__test.image.bmap.v1.2")).unwrap();
    let mut v = old.verifier();
    v.feed(0, &image).unwrap();
    v.finish().unwrap();
    assert_eq!(v.status(0), Some(&RangeStatus::NoChecksum));
}

#[test]
fn feeding_only_the_planned_extents_of_a_mapped_plan_verifies() {
    let test = "feeding_only_the_planned_extents_of_a_mapped_plan_verifies";
    let Some((dir, image)) = test_image(test) else {
        return;
    };
    let bmap = Bmap::parse(&read(&dir, "bmaptool__test.image.bmap.v2.0")).unwrap();
    let config = PlanConfig::mapped(bmap.mapped_byte_ranges(), vec![]);
    let (extents, stats) = plan_bytes(config, &image, 1 << 16).unwrap();
    assert_eq!(stats.bytes_to_write, bmap.mapped_bytes());
    let mut v = bmap.verifier();
    for e in &extents {
        let slice = &image[e.start as usize..e.end() as usize];
        v.feed(e.start, slice).unwrap();
    }
    v.finish().unwrap();
    assert_eq!(v.matched(), 48);
}

/// Replaces the checksum of range `index` and re-signs the file, so only that range is
/// wrong (a file whose own checksum is broken is refused before any range).
fn with_wrong_range_checksum(file: &[u8], index: usize) -> Vec<u8> {
    let text = String::from_utf8(file.to_vec()).unwrap();
    let bmap = Bmap::parse(file).unwrap();
    let old = hex::encode(bmap.ranges[index].checksum.as_ref().unwrap());
    let stored = bmap.file_checksum.clone().unwrap();
    let zeros = "0".repeat(stored.len());
    let unsigned = text
        .replacen(&old, &"ab".repeat(old.len() / 2), 1)
        .replacen(&stored, &zeros, 1);
    let kind = bmap.checksum_type.unwrap();
    let signed = hex::encode(&kind.digest(unsigned.as_bytes()));
    unsigned.replacen(&zeros, &signed, 1).into_bytes()
}

#[test]
fn one_wrong_range_checksum_is_reported_at_that_range() {
    let test = "one_wrong_range_checksum_is_reported_at_that_range";
    let Some((dir, image)) = test_image(test) else {
        return;
    };
    let original = read(&dir, "bmaptool__test.image.bmap.v2.0");
    let file = with_wrong_range_checksum(&original, 5);
    let bmap = Bmap::parse(&file).unwrap();
    let bad = bmap.byte_range(&bmap.ranges[5]);

    let mut v = bmap.verifier();
    let mut offset = 0u64;
    let mut failure = None;
    for piece in image.chunks(4096) {
        if let Err(e) = v.feed(offset, piece) {
            failure = Some((offset + piece.len() as u64, e));
            break;
        }
        offset += piece.len() as u64;
    }
    let (fed_to, err) = failure.expect("the wrong range must be reported");
    // Reported as soon as the range's last byte arrived, not later.
    assert_eq!(fed_to, bad.end().div_ceil(4096) * 4096);
    match &err {
        BmapVerifyError::Mismatch {
            index, expected, ..
        } => {
            assert_eq!(*index, 5);
            assert_eq!(*expected, "ab".repeat(32));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("bmap range 5"), "{err}");
    assert_eq!(v.matched(), 5);
}

#[test]
fn skipping_bytes_of_a_range_is_reported_not_silently_accepted() {
    let test = "skipping_bytes_of_a_range_is_reported_not_silently_accepted";
    let Some(dir) = rockusb_testkit::testdata(test) else {
        return;
    };
    let bmap = Bmap::parse(&read(&dir, "bmaptool__test.image.bmap.v2.0")).unwrap();
    let mut v = bmap.verifier();
    // Range 0 is blocks 0-1; feed only block 1.
    let err = v.feed(4096, &[0u8; 4096]).unwrap_err();
    assert_eq!(
        err,
        BmapVerifyError::Incomplete {
            index: 0,
            range: ByteRange::new(0, 8192),
            missing_from: 0,
            missing_to: 4096
        }
    );
    assert_eq!(v.status(0), Some(&RangeStatus::Incomplete));
    assert!(matches!(
        v.feed(0, &[0u8; 16]),
        Err(BmapVerifyError::OutOfOrder { .. })
    ));
    let err = v.finish().unwrap_err();
    assert!(matches!(err, BmapVerifyError::Incomplete { index: 1, .. }));
}
