//! Pre-flight findings and Talos-safe sparse plans on sgdisk-built images.

mod common;

use common::*;
use rockusb_images::gpt::GptProblem;
use rockusb_images::plan::{PlanConfig, Planner, plan_bytes};
use rockusb_images::preflight::{Finding, PreflightInput, Severity, preflight};
use rockusb_images::read_at::Window;
use rockusb_images::regions::MustWriteReason;
use rockusb_images::{ByteRange, NANOPI_M6};

fn input(image_len: Option<u64>, storage_len: Option<u64>) -> PreflightInput<'static> {
    PreflightInput {
        layout: &NANOPI_M6,
        image_len,
        storage_len,
        check_backup_gpt: image_len.is_some(),
    }
}

fn talos(test: &str) -> Option<Vec<u8>> {
    if !rockusb_testkit::tool(test, "sgdisk", "gdisk") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    Some(std::fs::read(talos_image(dir.path())).unwrap())
}

#[test]
fn a_talos_shaped_image_passes_with_no_findings() {
    let Some(image) = talos("a_talos_shaped_image_passes_with_no_findings") else {
        return;
    };
    let len = image.len() as u64;
    let pf = preflight(image.as_slice(), input(Some(len), Some(1 << 30))).unwrap();
    assert!(pf.findings.is_empty(), "{:#?}", pf.findings);
    assert!(pf.may_flash());
    assert_eq!(
        pf.bootloader,
        Some(rockusb_images::bootloader::BootloaderKind::Rkns)
    );

    let mw = pf.must_write.unwrap();
    let meta = pf.gpt.partition_named("META").unwrap();
    let meta_range = ByteRange::new(meta.first_lba * 512, 1024 * 1024);
    assert_eq!(mw.merged(), vec![ByteRange::new(0, 11 * MIB), meta_range]);
    assert!(mw
        .regions
        .iter()
        .any(|r| r.reason == MustWriteReason::Partition("META".into()) && r.range == meta_range));
    assert_eq!(
        mw.wipe_after_image,
        Some(ByteRange::new((1 << 30) - MIB, MIB))
    );
}

#[test]
fn an_image_larger_than_the_storage_is_an_error_that_says_both_sizes() {
    let Some(image) = talos("an_image_larger_than_the_storage_is_an_error_that_says_both_sizes")
    else {
        return;
    };
    let len = image.len() as u64;
    let pf = preflight(image.as_slice(), input(Some(len), Some(32 * MIB))).unwrap();
    assert!(!pf.may_flash());
    let errors: Vec<_> = pf.errors().collect();
    assert_eq!(
        errors,
        [&Finding::ImageTooLarge {
            image_len: len,
            storage_len: 32 * MIB,
            from_gpt: false
        }]
    );
    let text = errors[0].to_string();
    assert!(
        text.contains("41943040 bytes") && text.contains("33554432 bytes"),
        "{text}"
    );
}

#[test]
fn a_streamed_prefix_is_enough_and_its_gpt_tells_the_length() {
    let Some(image) = talos("a_streamed_prefix_is_enough_and_its_gpt_tells_the_length") else {
        return;
    };
    let prefix = &image[..NANOPI_M6.must_write_prefix as usize];
    let pf = preflight(Window::new(0, prefix), input(None, Some(16 * MIB))).unwrap();
    assert_eq!(pf.image_len, Some(TALOS_TEST_IMAGE_LEN));
    assert!(!pf.gpt.backup_checked);
    assert_eq!(
        pf.errors().collect::<Vec<_>>(),
        [&Finding::ImageTooLarge {
            image_len: TALOS_TEST_IMAGE_LEN,
            storage_len: 16 * MIB,
            from_gpt: true
        }]
    );
}

#[test]
fn a_bad_gpt_crc_is_an_error_and_a_missing_bootloader_a_warning() {
    let Some(mut image) = talos("a_bad_gpt_crc_is_an_error_and_a_missing_bootloader_a_warning")
    else {
        return;
    };
    image[512 + 60] ^= 0xFF; // inside the disk GUID of the primary header
    image[32768..32768 + 512].fill(0);
    let len = image.len() as u64;
    let pf = preflight(image.as_slice(), input(Some(len), Some(1 << 30))).unwrap();
    assert!(!pf.may_flash());
    let errors: Vec<String> = pf.errors().map(|f| f.to_string()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with(
        "The image's GPT is damaged: primary header (LBA 1): header CRC mismatch: stored 0x"
    ));
    let warnings: Vec<&Finding> = pf.warnings().collect();
    assert_eq!(
        warnings,
        [&Finding::BootloaderMissing {
            layout: "nanopi-m6",
            lba: 64,
            found: rockusb_images::bootloader::BootloaderKind::Empty
        }]
    );
    assert!(warnings[0].to_string().contains("sector 64"));
}

#[test]
fn a_plain_gpt_image_gets_layout_warnings_but_may_be_flashed() {
    let test = "a_plain_gpt_image_gets_layout_warnings_but_may_be_flashed";
    if !rockusb_testkit::tool(test, "sgdisk", "gdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = std::fs::read(plain_image(dir.path())).unwrap();
    let len = image.len() as u64;
    let pf = preflight(image.as_slice(), input(Some(len), Some(1 << 30))).unwrap();
    assert!(pf.may_flash(), "{:#?}", pf.findings);
    assert!(pf.findings.contains(&Finding::GptEntriesElsewhere {
        layout: "nanopi-m6",
        found_lba: 2,
        expected_lba: 20482
    }));
    assert!(pf.findings.contains(&Finding::PartitionNamesDiffer {
        layout: "nanopi-m6",
        found: vec!["root".into()],
        expected: ["EFI", "BIOS", "BOOT", "META"].map(String::from).to_vec(),
    }));
    assert!(
        pf.findings
            .iter()
            .all(|f| f.severity() == Severity::Warning)
    );
    assert_eq!(pf.must_write.unwrap().missing_partitions, ["META"]);
}

#[test]
fn an_image_without_any_gpt_is_a_warning() {
    let image = vec![0u8; 2 * 1024 * 1024];
    let pf = preflight(image.as_slice(), input(Some(image.len() as u64), None)).unwrap();
    assert!(pf.may_flash());
    assert!(pf.findings.contains(&Finding::NoGpt));
    assert!(
        !pf.findings
            .iter()
            .any(|f| matches!(f, Finding::Gpt(GptProblem::Header { .. })))
    );
}

/// Simulates flashing with the sparse plan onto a storage full of stale data and checks
/// the result: every must-write region and every non-zero block equals the image, and the
/// stale META is gone.
#[test]
fn a_sparse_plan_writes_every_non_zero_block_and_all_of_meta() {
    let Some(image) = talos("a_sparse_plan_writes_every_non_zero_block_and_all_of_meta") else {
        return;
    };
    let len = image.len() as u64;
    let storage_len = 64 * MIB;
    let pf = preflight(image.as_slice(), input(Some(len), Some(storage_len))).unwrap();
    let mw = pf.must_write.clone().unwrap();

    let mut storage = vec![0xEEu8; storage_len as usize]; // stale ADV, stale backup GPT...
    let mut planner = Planner::new(PlanConfig::sparse(mw.merged())).unwrap();
    let mut extents = Vec::new();
    let mut offset = 0u64;
    for chunk in image.chunks(1 << 20) {
        planner.plan_chunk(offset, chunk, &mut extents).unwrap();
        for e in &extents {
            let at = (e.start - offset) as usize;
            storage[e.start as usize..e.end() as usize]
                .copy_from_slice(&chunk[at..at + e.len as usize]);
        }
        offset += chunk.len() as u64;
    }
    let wipe = mw.wipe_after_image.unwrap();
    storage[wipe.start as usize..wipe.end() as usize].fill(0);

    for r in mw.merged() {
        let (a, b) = (r.start as usize, r.end() as usize);
        assert!(storage[a..b] == image[a..b], "must-write {r} differs");
    }
    for (i, block) in image.chunks(4096).enumerate() {
        if block.iter().any(|&b| b != 0) {
            let at = i * 4096;
            assert_eq!(&storage[at..at + block.len()], block, "block {i}");
        }
    }
    let meta = pf
        .gpt
        .partition_named("META")
        .unwrap()
        .byte_range(512)
        .unwrap();
    assert!(
        storage[meta.start as usize..meta.end() as usize]
            .iter()
            .all(|&b| b == 0)
    );
    assert!(
        storage[(storage_len - MIB) as usize..]
            .iter()
            .all(|&b| b == 0)
    );

    let stats = planner.stats();
    assert_eq!(stats.bytes_seen, len);
    assert_eq!(stats.bytes_to_write + stats.bytes_skipped, len);
    // The image is mostly zeros: the plan skips most of it but writes more than the
    // forced 12 MiB (bootloader area + META) plus the data written into EFI and BOOT.
    assert!(stats.bytes_to_write >= 12 * MIB + 556 * 1024, "{stats:?}");
    assert!(stats.bytes_skipped > 20 * MIB, "{stats:?}");

    // --full writes every byte.
    let (_, full) = plan_bytes(PlanConfig::full(), &image, 1 << 20).unwrap();
    assert_eq!(full.bytes_to_write, len);
}

#[test]
fn a_full_size_talos_table_gives_the_documented_meta_and_must_write_regions() {
    let test = "a_full_size_talos_table_gives_the_documented_meta_and_must_write_regions";
    if !rockusb_testkit::tool(test, "sgdisk", "gdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = talos_full_size_table(dir.path());
    let file = std::fs::File::open(path).unwrap();
    let storage_len = 32_u64 << 30; // a 32 GiB eMMC
    let pf = preflight(
        rockusb_images::read_at::SeekReader(file),
        input(Some(TALOS_1_11_IMAGE_LEN), Some(storage_len)),
    )
    .unwrap();
    // Only the bootloader is missing (the table has no data at all).
    assert_eq!(pf.findings.len(), 1, "{:#?}", pf.findings);
    assert!(matches!(pf.findings[0], Finding::BootloaderMissing { .. }));

    // LBA ranges of docs/disk-layout.md §1.
    let lbas: Vec<(&str, u64, u64)> = pf
        .gpt
        .partitions()
        .iter()
        .map(|p| (p.name.as_str(), p.first_lba, p.last_lba))
        .collect();
    assert_eq!(
        lbas,
        [
            ("EFI", 22528, 227327),
            ("BIOS", 227328, 229375),
            ("BOOT", 229376, 4325375),
            ("META", 4325376, 4327423)
        ]
    );
    assert_eq!(pf.gpt.backup.as_ref().unwrap().lba, 4_599_807);
    let mw = pf.must_write.unwrap();
    assert_eq!(
        mw.merged(),
        [
            ByteRange::new(0, 11 * MIB),
            ByteRange::new(4_325_376 * 512, MIB)
        ]
    );
    assert_eq!(mw.total_len(), 12 * MIB);
    assert_eq!(
        mw.wipe_after_image,
        Some(ByteRange::new(storage_len - MIB, MIB))
    );
}
