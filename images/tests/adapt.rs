//! `adapt` on a generic Talos image made by the real tools, checked by the real tools.

mod common;
mod generic;

use common::sgdisk_info;
use generic::*;
use rockusb_images::NANOPI_M6;
use rockusb_images::adapt::{self, AdaptError, AdaptPlan, AdaptRequest, DtbFile};
use rockusb_images::gpt::{GptReadOptions, GptReport};
use rockusb_images::read_at::{ReadAt, SeekReader};
use rockusb_images::uki::esp::find_ukis;
use std::path::{Path, PathBuf};
use std::process::Command;

const DTB_NAME: &str = "rk3588s-nanopi-m6.dtb";
/// The generic EFI at LBA 2048 moves to 22528.
const DELTA_LBAS: u64 = 20480;

fn source(path: &Path) -> (SeekReader<std::fs::File>, u64) {
    let file = std::fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    (SeekReader(file), len)
}

fn plan_with(path: &Path, uboot: &[u8], dtb: &[u8], name: &str) -> Result<AdaptPlan, AdaptError> {
    let (mut src, len) = source(path);
    let request = AdaptRequest {
        layout: &NANOPI_M6,
        uboot,
        dtb: Some(DtbFile { name, bytes: dtb }),
    };
    adapt::plan(&mut src, len, &request)
}

fn adapt_to_file(input: &Path, output: &Path) -> AdaptPlan {
    let plan = plan_with(input, &uboot(), &m6_dtb(), DTB_NAME).unwrap();
    let (src, _) = source(input);
    let out = std::io::BufWriter::new(std::fs::File::create(output).unwrap());
    let written = plan.output.write_to(src, out).unwrap();
    assert_eq!(written, plan.output.len);
    plan
}

struct Adapted {
    _dir: tempfile::TempDir,
    input: PathBuf,
    output: PathBuf,
    plan: AdaptPlan,
}

fn adapted() -> Adapted {
    let dir = tempfile::tempdir().unwrap();
    let input = generic_image(dir.path());
    let output = dir.path().join("m6.raw");
    let plan = adapt_to_file(&input, &output);
    Adapted {
        _dir: dir,
        input,
        output,
        plan,
    }
}

#[test]
fn the_adapted_table_passes_sgdisk_and_keeps_every_partition_identity() {
    let a = adapted();
    let (report, clean) = sgdisk_verify(&a.output);
    assert!(clean, "sgdisk -v:\n{report}");
    assert_eq!(a.plan.delta_lbas, DELTA_LBAS as i64);
    assert_eq!(a.plan.output.len, IMAGE_LEN + DELTA_LBAS * 512);
    assert_eq!(
        std::fs::metadata(&a.output).unwrap().len(),
        a.plan.output.len
    );

    let disk_guid = |path: &Path| {
        let text = String::from_utf8(run(Command::new("sgdisk").arg("-p").arg(path))).unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("Disk identifier (GUID): ")
                    .map(str::to_string)
            })
            .unwrap()
    };
    assert_eq!(disk_guid(&a.input), disk_guid(&a.output));
    for number in 1..=3 {
        let before = sgdisk_info(&a.input, number);
        let after = sgdisk_info(&a.output, number);
        assert_eq!(after.first, before.first + DELTA_LBAS, "partition {number}");
        assert_eq!(after.last, before.last + DELTA_LBAS, "partition {number}");
        assert_eq!(after.type_guid, before.type_guid);
        assert_eq!(after.unique_guid, before.unique_guid);
        assert_eq!(after.name, before.name);
        assert_eq!(after.attributes, before.attributes);
    }

    // The crate's own reader agrees, and sees the M6 layout.
    let (src, len) = source(&a.output);
    let options = GptReadOptions {
        len: Some(len),
        ..GptReadOptions::default()
    };
    let report = GptReport::read(src, options).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    let primary = report.primary.as_ref().unwrap();
    assert_eq!(primary.header.entries_lba, NANOPI_M6.gpt_entries_lba());
    assert_eq!(
        report.partitions()[0].first_lba,
        NANOPI_M6.first_partition_lba()
    );
    assert_eq!(report.backup.as_ref().unwrap().lba, len / 512 - 1);
    let names: Vec<&str> = a
        .plan
        .after
        .partitions
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["EFI", "META", "STATE"]);
    assert_eq!(a.plan.before.partitions[0].first_lba, ESP_LBA);
    assert!(a.plan.warnings.is_empty(), "{:?}", a.plan.warnings);
}

#[test]
fn partitions_are_copied_verbatim_except_the_fat_sectors_the_dtb_needed() {
    let a = adapted();
    let esp_len = ESP_MIB * MIB;
    for (name, lba, len) in [
        ("EFI", ESP_LBA, esp_len),
        ("META", META_LBA, MIB),
        ("STATE", STATE_LBA, STATE_MIB * MIB),
    ] {
        let before = read_range(&a.input, lba * 512, len);
        let after = read_range(&a.output, (lba + DELTA_LBAS) * 512, len);
        let changed: Vec<u64> = (0..len / 512)
            .filter(|&s| before[(s * 512) as usize..][..512] != after[(s * 512) as usize..][..512])
            .map(|s| (lba + DELTA_LBAS) * 512 + s * 512)
            .collect();
        if name != "EFI" {
            assert!(changed.is_empty(), "{name} changed at {changed:?}");
            continue;
        }
        // Exactly the patched sectors differ, and there are few of them: FAT entries,
        // FSInfo, the two new directories and the DTB's own clusters.
        let patched: Vec<u64> = a
            .plan
            .output
            .patches
            .iter()
            .flat_map(|p| (0..p.bytes.len() as u64 / 512).map(move |s| p.output_offset + s * 512))
            .collect();
        assert_eq!(changed, patched);
        let dtb_sectors = (m6_dtb().len() as u64).div_ceil(512);
        assert!(
            patched.len() as u64 <= dtb_sectors + 16,
            "{} sectors changed for a {dtb_sectors}-sector DTB",
            patched.len()
        );
    }
}

#[test]
fn the_moved_esp_is_clean_and_holds_the_dtb_where_u_boot_looks() {
    let a = adapted();
    let esp = a.plan.esp.output;
    assert_eq!(esp.start, (ESP_LBA + DELTA_LBAS) * 512);
    let esp_file = a.output.with_extension("esp");
    std::fs::write(&esp_file, read_range(&a.output, esp.start, esp.len)).unwrap();
    let (report, clean) = fsck_vfat(&esp_file);
    assert!(clean, "fsck.vfat -n:\n{report}");

    let image = format!("{}@@{}", a.output.display(), esp.start);
    let dtb =
        run(Command::new("mtype").args(["-i", &image, &format!("::/dtb/rockchip/{DTB_NAME}")]));
    assert_eq!(dtb, m6_dtb());
    assert_eq!(
        a.plan.dtb_path.as_deref(),
        Some("/dtb/rockchip/rk3588s-nanopi-m6.dtb")
    );
    // What was there before is still there.
    let uki = run(Command::new("mtype").args(["-i", &image, &format!("::/EFI/Linux/{UKI_NAME}")]));
    assert_eq!(&uki[..2], b"MZ");
}

#[test]
fn u_boot_sits_at_byte_32768_and_the_gap_after_it_is_zero() {
    let a = adapted();
    let uboot = uboot();
    assert_eq!(read_range(&a.output, 32768, uboot.len() as u64), uboot);
    let gap_start = 32768 + uboot.len() as u64;
    let gap = read_range(
        &a.output,
        gap_start,
        NANOPI_M6.gpt_entries_offset() - gap_start,
    );
    assert!(gap.iter().all(|&b| b == 0));
    assert_eq!(a.plan.after.bootloader.unwrap().len, uboot.len() as u64);
}

#[test]
fn the_uki_command_line_and_version_are_read_from_the_esp() {
    let a = adapted();
    for (path, esp) in [
        (&a.input, a.plan.esp.source),
        (&a.output, a.plan.esp.output),
    ] {
        let (src, _) = source(path);
        let ukis = find_ukis(src, esp).unwrap();
        assert_eq!(ukis.len(), 1, "{ukis:?}");
        assert_eq!(ukis[0].path, format!("/EFI/Linux/{UKI_NAME}"));
        let info = ukis[0].info.as_ref().unwrap();
        assert_eq!(info.cmdline.as_deref(), Some(CMDLINE));
        assert_eq!(info.talos_version(), Some("v1.11.5"));
        let assessment = info.assessment().unwrap();
        assert!(assessment.joins_omni() && assessment.events_sink && assessment.logging_kernel);
        // The planted command line has no M6 serial console: that is a warning.
        assert!(!assessment.serial_console);
        assert!(assessment.notes()[0].warning);
    }
}

#[test]
fn any_output_range_reads_the_same_as_the_written_file_and_planning_is_reproducible() {
    let a = adapted();
    let written = std::fs::read(&a.output).unwrap();
    let (src, _) = source(&a.input);
    let mut image = a.plan.output.image(src);
    // 1 MiB chunks as the flasher asks for them, and odd ranges across segment edges.
    let mut offset = 0u64;
    while offset < a.plan.output.len {
        let n = (a.plan.output.len - offset).min(MIB);
        let mut chunk = vec![0u8; n as usize];
        image.read_exact_at(offset, &mut chunk).unwrap();
        assert!(
            chunk == written[offset as usize..(offset + n) as usize],
            "chunk at {offset}"
        );
        offset += n;
    }
    for segment in &a.plan.output.segments {
        let at = segment.output.start.saturating_sub(3);
        let mut buf = vec![0u8; 7.min((a.plan.output.len - at) as usize)];
        image.read_exact_at(at, &mut buf).unwrap();
        assert_eq!(
            buf,
            written[at as usize..at as usize + buf.len()],
            "{}",
            segment.what
        );
    }
    // Copy segments read the source front to back, so a stream can feed them.
    let sources: Vec<_> = a
        .plan
        .output
        .segments
        .iter()
        .filter_map(|s| s.source_range())
        .collect();
    assert!(sources.windows(2).all(|w| w[0].end() <= w[1].start));
    // The same inputs give the same bytes (no clock, no randomness).
    let again = plan_with(&a.input, &uboot(), &m6_dtb(), DTB_NAME).unwrap();
    assert_eq!(again.output, a.plan.output);
}

#[test]
fn an_adapted_image_is_refused_as_already_adapted() {
    let a = adapted();
    let err = plan_with(&a.output, &uboot(), &m6_dtb(), DTB_NAME).unwrap_err();
    assert!(err.is_already_adapted(), "{err}");
    assert!(
        err.to_string().contains("already adapted, nothing to do"),
        "{err}"
    );
}

#[test]
fn the_before_and_after_maps_show_the_move() {
    let a = adapted();
    let text = rockusb_images::diskmap::render_before_after(
        &a.plan.before.disk_map(),
        &a.plan.after.disk_map(),
        80,
        rockusb_images::diskmap::Style::Unicode,
    );
    for needle in ["before:", "after:", "U-Boot", "EFI", "META", "STATE"] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    let table = a.plan.after.to_string();
    assert!(
        table.contains("EFI system") && table.contains("22528"),
        "{table}"
    );
}
