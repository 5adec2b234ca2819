//! GPT reading on images made by `sgdisk` and on the shared GPT fixtures.

mod common;

use common::*;
use rockusb_images::gpt::{
    Copy, GptHeader, GptProblem, GptReadOptions, GptReport, HeaderError, entry,
};
use rockusb_images::read_at::{SeekReader, TailBuffer, Window, Windows};
use std::path::Path;

fn read_report(image: &[u8]) -> GptReport {
    let options = GptReadOptions {
        len: Some(image.len() as u64),
        ..GptReadOptions::default()
    };
    GptReport::read(image, options).unwrap()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn talos_shaped_image_matches_what_sgdisk_reports() {
    let test = "talos_shaped_image_matches_what_sgdisk_reports";
    if !rockusb_testkit::tool(test, "sgdisk", "gdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = talos_image(dir.path());
    // Read through a file handle, as `rockusb gpt IMAGE` does.
    let file = std::fs::File::open(&path).unwrap();
    let options = GptReadOptions {
        len: Some(TALOS_TEST_IMAGE_LEN),
        ..GptReadOptions::default()
    };
    let report = GptReport::read(SeekReader(file), options).unwrap();

    assert!(report.is_clean(), "problems: {:?}", report.problems);
    let primary = report.primary.as_ref().unwrap();
    let backup = report.backup.as_ref().unwrap();
    assert_eq!(primary.header.entries_lba, 20482);
    assert_eq!(primary.header.alternate_lba, TALOS_TEST_IMAGE_LEN / 512 - 1);
    assert_eq!(backup.lba, TALOS_TEST_IMAGE_LEN / 512 - 1);
    assert_eq!(backup.header.entries_lba, TALOS_TEST_IMAGE_LEN / 512 - 33);
    assert_eq!(primary.partitions, backup.partitions);

    let names: Vec<&str> = report
        .partitions()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["EFI", "BIOS", "BOOT", "META"]);
    for p in report.partitions() {
        let expected = sgdisk_info(&path, p.number);
        assert_eq!(p.first_lba, expected.first, "{}", p.name);
        assert_eq!(p.last_lba, expected.last, "{}", p.name);
        assert_eq!(p.name, expected.name);
        assert_eq!(p.type_guid.to_string(), expected.type_guid, "{}", p.name);
        assert_eq!(
            p.unique_guid.to_string(),
            expected.unique_guid,
            "{}",
            p.name
        );
        assert_eq!(p.attributes, expected.attributes, "{}", p.name);
    }
    assert_eq!(report.partitions()[0].first_lba, 22528);
    assert_eq!(
        report.partitions()[1].attributes,
        entry::ATTR_LEGACY_BIOS_BOOTABLE
    );

    let printed = report.to_string();
    for needle in [
        "EFI system",
        "BIOS boot",
        "META",
        "entries at LBA 20482",
        "No problems found.",
    ] {
        assert!(
            printed.contains(needle),
            "missing {needle:?} in:\n{printed}"
        );
    }
}

#[test]
fn a_damaged_primary_header_is_reported_with_both_crcs_and_the_backup_takes_over() {
    let test = "a_damaged_primary_header_is_reported_with_both_crcs_and_the_backup_takes_over";
    if !rockusb_testkit::tool(test, "sgdisk", "gdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut image = std::fs::read(talos_image(dir.path())).unwrap();
    let stored = u32_at(&image, 512 + 16);
    image[512 + 40] ^= 0x01; // first usable LBA

    let report = read_report(&image);
    let (got_stored, computed) = report
        .problems
        .iter()
        .find_map(|p| match p {
            GptProblem::Header {
                which: Copy::Primary,
                lba: 1,
                error: HeaderError::CrcMismatch { stored, computed },
            } => Some((*stored, *computed)),
            _ => None,
        })
        .expect("a primary CRC problem");
    assert_eq!(got_stored, stored);
    assert_ne!(computed, stored);
    let message = report.problems[0].to_string();
    assert_eq!(
        message,
        format!(
            "primary header (LBA 1): header CRC mismatch: stored 0x{stored:08x}, computed 0x{computed:08x}"
        )
    );
    assert!(report.primary.is_none());
    assert_eq!(report.table().unwrap().which, Copy::Backup);
    assert_eq!(report.partitions().len(), 4);
    assert!(!report.is_absent());
}

#[test]
fn a_damaged_entry_array_and_a_truncated_image_are_named() {
    let test = "a_damaged_entry_array_and_a_truncated_image_are_named";
    if !rockusb_testkit::tool(test, "sgdisk", "gdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(talos_image(dir.path())).unwrap();

    let mut image = original.clone();
    let stored = u32_at(&image, 512 + 88);
    // A byte of META's name in the primary array at LBA 20482.
    image[20482 * 512 + 3 * 128 + 56] = b'X';
    let report = read_report(&image);
    assert!(
        report.problems.iter().any(|p| matches!(
            p,
            GptProblem::EntriesCrcMismatch { which: Copy::Primary, stored: s, .. } if *s == stored
        )),
        "{:?}",
        report.problems
    );
    assert_eq!(report.table().unwrap().which, Copy::Backup);
    assert_eq!(report.partition_named("META").unwrap().name, "META");

    // Cut off the last MiB (and the backup GPT with it), as a truncated download would.
    let mut image = original;
    image.truncate(image.len() - 1024 * 1024);
    let report = read_report(&image);
    let expected_backup = TALOS_TEST_IMAGE_LEN / 512 - 1;
    assert!(
        report.problems.contains(&GptProblem::BackupNotAtEnd {
            alternate_lba: expected_backup,
            last_lba: image.len() as u64 / 512 - 1,
            len_what: "image",
        }),
        "{:?}",
        report.problems
    );
    assert!(report.problems.contains(&GptProblem::HeaderBeyondData {
        which: Copy::Backup,
        lba: expected_backup,
        available: format!("{} bytes", image.len()),
    }));
    assert_eq!(report.table().unwrap().which, Copy::Primary);
}

/// Rewrites both entry arrays through `edit` and re-signs both headers, so the table is
/// structurally wrong but every CRC is right.
fn rewrite_entries(image: &mut [u8], edit: impl Fn(&mut Vec<entry::Partition>)) {
    let primary = GptHeader::parse(&image[512..1024]).unwrap();
    let backup_lba = primary.alternate_lba as usize;
    let backup = GptHeader::parse(&image[backup_lba * 512..backup_lba * 512 + 512]).unwrap();
    let len = primary.entries_len() as usize;
    let array_at = primary.entries_lba as usize * 512;
    let mut parts = entry::parse_entries(&image[array_at..array_at + len], 128);
    edit(&mut parts);
    let mut array = vec![0u8; len];
    for p in &parts {
        let at = (p.number as usize - 1) * 128;
        array[at..at + 128].copy_from_slice(&entry::entry_to_bytes(p));
    }
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&array);
    for (h, lba) in [(primary, 1usize), (backup, backup_lba)] {
        let at = h.entries_lba as usize * 512;
        image[at..at + len].copy_from_slice(&array);
        let signed = GptHeader {
            entries_crc32: crc,
            ..h
        };
        image[lba * 512..lba * 512 + 92].copy_from_slice(&signed.to_bytes());
    }
}

#[test]
fn overlapping_reversed_and_out_of_range_partitions_are_each_reported() {
    let test = "overlapping_reversed_and_out_of_range_partitions_are_each_reported";
    if !rockusb_testkit::tool(test, "sgdisk", "gdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut image = std::fs::read(talos_image(dir.path())).unwrap();
    rewrite_entries(&mut image, |parts| {
        parts[1].first_lba = parts[0].last_lba - 9; // BIOS starts inside EFI
        parts[2].last_lba = parts[2].first_lba - 1; // BOOT reversed
        parts[3].last_lba = 100_000; // META past the image end
    });
    let report = read_report(&image);
    assert!(report.primary.is_some() && report.backup.is_some());
    let efi_last = report.partitions()[0].last_lba;
    assert!(report.problems.contains(&GptProblem::PartitionsOverlap {
        a: 1,
        a_name: "EFI".into(),
        b: 2,
        b_name: "BIOS".into(),
        first: efi_last - 9,
        last: efi_last,
    }));
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, GptProblem::PartitionReversed { number: 3, .. }))
    );
    assert!(report.problems.iter().any(|p| matches!(
        p,
        GptProblem::PartitionBeyondEnd {
            number: 4,
            last: 100_000,
            ..
        }
    )));
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, GptProblem::PartitionOutsideUsable { number: 4, .. }))
    );
}

#[test]
fn only_the_start_of_a_streamed_image_still_yields_the_table() {
    let test = "only_the_start_of_a_streamed_image_still_yields_the_table";
    if !rockusb_testkit::tool(test, "sgdisk", "gdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = std::fs::read(talos_image(dir.path())).unwrap();
    let prefix = &image[..11 * 1024 * 1024];
    let options = GptReadOptions {
        check_backup: false,
        ..GptReadOptions::default()
    };
    let report = GptReport::read(Window::new(0, prefix), options).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.partitions().len(), 4);

    // The tail, kept by the flasher while streaming, checks the backup at the end.
    let mut tail = TailBuffer::new(64 * 1024);
    let mut offset = 0u64;
    for chunk in image.chunks(1 << 20) {
        tail.push(offset, chunk);
        offset += chunk.len() as u64;
    }
    let both = Windows(vec![Window::new(0, prefix), tail.window()]);
    let full = GptReport::read(
        both,
        GptReadOptions {
            len: Some(image.len() as u64),
            ..GptReadOptions::default()
        },
    )
    .unwrap();
    assert!(full.is_clean(), "{:?}", full.problems);
    assert!(full.backup.is_some());
}

#[test]
fn an_image_without_a_gpt_is_absent_not_damaged() {
    let image = vec![0u8; 1024 * 1024];
    let report = read_report(&image);
    assert!(report.is_absent());
    assert!(report.table().is_none());
    assert!(report.problems.contains(&GptProblem::Header {
        which: Copy::Primary,
        lba: 1,
        error: HeaderError::NoSignature
    }));
}

fn shared_image(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join("disk_images").join(name)).unwrap()
}

#[test]
fn shared_gpt_fixtures_match_their_manifest() {
    let Some(dir) = rockusb_testkit::testdata("shared_gpt_fixtures_match_their_manifest") else {
        return;
    };
    let report = read_report(&shared_image(&dir, "gpt-crate__gpt-disk.img"));
    assert!(report.is_clean(), "{:?}", report.problems);
    let p = report.primary.as_ref().unwrap();
    assert_eq!(p.header.header_crc32, 0x55f0_6699);
    assert_eq!(p.header.entries_crc32, 0x5fad_601b);
    assert_eq!(
        (p.header.first_usable_lba, p.header.last_usable_lba),
        (34, 38)
    );
    assert_eq!(
        p.header.disk_guid.to_string(),
        "1B6A2BFA-E92B-184C-A8A7-ED0610D54821"
    );
    assert_eq!(report.backup.as_ref().unwrap().lba, 71);
    assert_eq!(report.backup.as_ref().unwrap().header.entries_lba, 39);
    let parts = report.partitions();
    assert_eq!(parts.len(), 2);
    assert_eq!((parts[0].first_lba, parts[0].last_lba), (34, 34));
    assert_eq!((parts[1].first_lba, parts[1].last_lba), (35, 38));
    assert_eq!(
        parts[0].unique_guid.to_string(),
        "F38EAB50-076F-CB45-97F8-B1B7E5AF078F"
    );
    assert_eq!(
        parts[1].type_guid.to_string(),
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
    );
    assert_eq!(parts[0].name, "");

    let report = read_report(&shared_image(&dir, "gptman__disk1.img"));
    assert!(report.is_clean(), "{:?}", report.problems);
    let p = report.primary.as_ref().unwrap();
    assert_eq!(p.header.header_crc32, 0xa3b0_b472);
    assert_eq!(
        p.header.disk_guid.to_string(),
        "43DD387E-EDEC-F44C-BCC1-D40D85B9D649"
    );
    let parts = report.partitions();
    assert_eq!(parts[0].name, "Foo");
    assert_eq!((parts[0].first_lba, parts[0].last_lba), (34, 43));
    assert_eq!(parts[1].name, "Bar");
    assert_eq!((parts[1].first_lba, parts[1].last_lba), (48, 52));
    assert_eq!(parts[1].attributes, 0x8000_0000_0000_0004);
    assert_eq!(
        parts[1].unique_guid.to_string(),
        "EAD03E6F-52EC-B847-BADB-227AC1313CFD"
    );
    assert_eq!(parts[1].type_guid.type_name(), Some("Microsoft basic data"));
}

#[test]
fn a_shared_fixture_with_one_flipped_bit_is_caught_by_each_crc() {
    let Some(dir) =
        rockusb_testkit::testdata("a_shared_fixture_with_one_flipped_bit_is_caught_by_each_crc")
    else {
        return;
    };
    let original = shared_image(&dir, "gptman__disk1.img");
    // Backup header (LBA 99) and backup entry array (LBA 67).
    for (offset, is_header) in [(99 * 512 + 48, true), (67 * 512 + 130, false)] {
        let mut image = original.clone();
        image[offset] ^= 0x80;
        let report = read_report(&image);
        let hit = report.problems.iter().any(|p| match p {
            GptProblem::Header {
                which: Copy::Backup,
                error: HeaderError::CrcMismatch { .. },
                ..
            } => is_header,
            GptProblem::EntriesCrcMismatch {
                which: Copy::Backup,
                ..
            } => !is_header,
            _ => false,
        });
        assert!(hit, "offset {offset}: {:?}", report.problems);
        assert!(report.primary.is_some() && report.backup.is_none());
    }
}

#[test]
fn a_board_storage_read_over_a_closure_reports_the_image_table_and_where_its_backup_is() {
    let test =
        "a_board_storage_read_over_a_closure_reports_the_image_table_and_where_its_backup_is";
    if !rockusb_testkit::tool(test, "sgdisk", "gdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = std::fs::read(talos_image(dir.path())).unwrap();
    // A 64 MiB "eMMC" right after flashing the 40 MiB image: the table is the image's,
    // so its backup sits at the image's end, not at the storage's end (Talos moves it on
    // first boot).
    let mut storage = vec![0u8; 64 * 1024 * 1024];
    storage[..image.len()].copy_from_slice(&image);
    let mut reads = 0;
    let usb = rockusb_images::read_at::ReadAtFn(|offset: u64, buf: &mut [u8]| {
        reads += 1;
        rockusb_images::read_at::ReadAt::read_exact_at(&mut storage.as_slice(), offset, buf)
    });
    let options = GptReadOptions {
        len: Some(64 * 1024 * 1024),
        len_what: "storage",
        ..GptReadOptions::default()
    };
    let report = GptReport::read(usb, options).unwrap();
    assert_eq!(
        report.problems,
        [GptProblem::BackupNotAtEnd {
            alternate_lba: TALOS_TEST_IMAGE_LEN / 512 - 1,
            last_lba: 64 * 2048 - 1,
            len_what: "storage",
        }]
    );
    assert!(
        report.problems[0]
            .to_string()
            .contains("last LBA of the storage is 131071")
    );
    assert!(report.backup.is_some());
    assert_eq!(report.partitions().len(), 4);
    assert!(reads <= 8, "{reads} reads");
}
