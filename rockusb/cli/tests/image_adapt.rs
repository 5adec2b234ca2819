//! `rockusb image adapt` and `rockusb flash --adapt` on a generic Talos image made with the
//! real tools (sgdisk, mkfs.vfat, mtools, binutils; see images/tests/generic).

mod flash_support;
#[path = "../../../images/tests/generic/mod.rs"]
mod generic;

use flash_support::*;
use generic::{CMDLINE, ESP_LBA, fsck_vfat, m6_dtb, read_range, sgdisk_verify, uboot};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The NanoPi M6 layout moves every partition by 20480 sectors.
const DELTA_LBAS: u64 = 20480;

struct Files {
    uboot: PathBuf,
    dtb: PathBuf,
}

fn board_files(dir: &Path) -> Files {
    let files = Files {
        uboot: dir.join("u-boot-rockchip.bin"),
        dtb: dir.join("rk3588s-nanopi-m6.dtb"),
    };
    std::fs::write(&files.uboot, uboot()).unwrap();
    std::fs::write(&files.dtb, m6_dtb()).unwrap();
    files
}

fn adapt_args<'a>(files: &'a Files, input: &'a Path, output: &'a Path) -> Vec<&'a str> {
    vec![
        "image",
        "adapt",
        "--board",
        "nanopi-m6",
        "--uboot",
        files.uboot.to_str().unwrap(),
        "--dtb",
        files.dtb.to_str().unwrap(),
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]
}

fn adapt(root: &Path, files: &Files, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = adapt_args(files, input, output);
    args.extend_from_slice(extra);
    rockusb(root, &args)
}

fn unxz(path: &Path) -> Vec<u8> {
    let out = Command::new("xz").arg("-dc").arg(path).output().unwrap();
    assert!(out.status.success(), "xz -dc {}", path.display());
    out.stdout
}

#[test]
fn image_adapt_writes_a_board_image_raw_and_xz_and_reports_the_uki() {
    with_image(
        "image_adapt",
        generic::generic_image,
        adapt_writes_a_board_image,
    );
}

fn adapt_writes_a_board_image(root: &Path, generic: &Path) {
    let files = board_files(root);
    let generic = generic.to_path_buf();
    let generic_xz = xz(&generic);

    // From the .raw.xz Omni hands out, to a .raw.xz.
    let out_xz = root.join("m6.raw.xz");
    let out = adapt(root, &files, &generic_xz, &out_xz, &["--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let result = json_result(&out);
    assert_eq!(result["delta_lbas"], DELTA_LBAS);
    assert_eq!(result["format"], "xz");
    let uki = &result["ukis"][0];
    assert_eq!(uki["cmdline"], CMDLINE, "{result}");
    assert_eq!(uki["talos_version"], "v1.11.5");
    assert_eq!(uki["joins_omni"], true);
    assert_eq!(uki["serial_console"], false);
    // The missing serial console is a warning.
    assert!(
        json_events(&out).iter().any(|e| e["event"] == "warning"
            && e["message"].as_str().unwrap().contains("ttyS2,1500000n8")),
        "{}",
        text(&out)
    );
    let test = Command::new("xz").arg("-t").arg(&out_xz).status().unwrap();
    assert!(test.success(), "xz -t failed on the output");

    // From the raw image, to a raw image: the same bytes.
    let out_raw = root.join("m6.raw");
    let out = adapt(root, &files, &generic, &out_raw, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let adapted = std::fs::read(&out_raw).unwrap();
    assert_eq!(unxz(&out_xz), adapted, "the .xz and .raw outputs differ");
    // The text report shows the map and hides the join token.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("META"), "{stderr}");
    assert!(stderr.contains("jointoken=…"), "{stderr}");
    assert!(
        !stderr.contains("s3cr3t"),
        "the join token was printed:\n{stderr}"
    );

    let (report, clean) = sgdisk_verify(&out_raw);
    assert!(clean, "sgdisk -v:\n{report}");
    let uboot = uboot();
    assert_eq!(&adapted[32768..32768 + uboot.len()], &uboot[..]);
    let esp_start = (ESP_LBA + DELTA_LBAS) * 512;
    let esp_file = root.join("esp.img");
    std::fs::write(
        &esp_file,
        read_range(&out_raw, esp_start, generic::ESP_MIB * generic::MIB),
    )
    .unwrap();
    let (report, clean) = fsck_vfat(&esp_file);
    assert!(clean, "fsck.vfat -n:\n{report}");
    let dtb = generic::run(Command::new("mtype").args([
        "-i",
        esp_file.to_str().unwrap(),
        "::/dtb/rockchip/rk3588s-nanopi-m6.dtb",
    ]));
    assert_eq!(dtb, m6_dtb());

    // gzip input is decoded beside the output first, and that copy is removed.
    let generic_gz = compress(&generic, "gzip", &["-1"], "gz");
    let out_gz = root.join("from-gz.raw");
    let out = adapt(root, &files, &generic_gz, &out_gz, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&out_gz).unwrap(), adapted);
    let leftovers: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial") || n.contains(".source"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");

    // The disk map of the result, from `gpt --map`.
    let out = rockusb(root, &["gpt", "--map", out_raw.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("STATE") && stdout.contains("GPT entries"),
        "{stdout}"
    );
    // The ID block at sector 64 is drawn as U-Boot's area, up to the moved entry array.
    let uboot_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("U-Boot"))
        .unwrap_or_else(|| panic!("no U-Boot area in the map:\n{stdout}"));
    assert!(
        uboot_line.contains("32.0 KiB") && uboot_line.contains("10.0 MiB"),
        "{uboot_line}"
    );
}

#[test]
fn flash_adapt_leaves_the_same_storage_as_adapt_then_flash() {
    with_image(
        "flash_adapt",
        generic::generic_image,
        flash_adapt_equals_two_steps,
    );
}

fn flash_adapt_equals_two_steps(root: &Path, generic: &Path) {
    let files = board_files(root);
    let generic_xz = xz(generic);
    let loader = standin(root);

    let adapted = root.join("m6.raw.xz");
    let out = adapt(root, &files, &generic_xz, &adapted, &[]);
    assert!(out.status.success(), "{}", text(&out));
    board(root, false);
    let out = flash(root, &adapted, &loader, &["--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let two_steps = emmc(root);

    std::fs::remove_dir_all(root.join(BOARD)).unwrap();
    board(root, false);
    let out = flash(
        root,
        &generic_xz,
        &loader,
        &[
            "--json",
            "--adapt",
            "nanopi-m6",
            "--uboot",
            files.uboot.to_str().unwrap(),
            "--dtb",
            files.dtb.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let result = json_result(&out);
    assert_eq!(result["verify"]["verify"], "verified", "{result}");
    // An adapted UEFI Talos image is not taken for another board's image.
    assert_eq!(result["warnings"], serde_json::json!([]), "{result}");
    let layout = json_events(&out)
        .into_iter()
        .find(|e| e["event"] == "layout")
        .unwrap();
    assert_eq!(layout["name"], "nanopi-m6");
    assert!(
        json_events(&out).iter().any(|e| e["event"] == "adapt-plan"),
        "{}",
        text(&out)
    );
    assert!(
        emmc(root) == two_steps,
        "flash --adapt left other bytes than adapt + flash"
    );
}

/// Runs `image adapt` expecting a refusal whose message contains `expect`; the output
/// file and its `.partial` must not exist afterwards.
fn assert_refused(root: &Path, args: &[&str], output: &Path, expect: &str) {
    let out = rockusb(root, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {args:?}\n{stderr}");
    assert!(stderr.contains(expect), "expected {expect:?} in:\n{stderr}");
    assert!(!output.exists(), "{} was written", output.display());
    let partial = PathBuf::from(format!("{}.partial", output.display()));
    assert!(!partial.exists(), "{} was left behind", partial.display());
}

#[test]
fn bad_inputs_are_refused_before_anything_is_written() {
    with_image(
        "adapt_bad_inputs",
        generic::generic_image,
        bad_inputs_are_refused,
    );
}

fn bad_inputs_are_refused(root: &Path, generic: &Path) {
    let files = board_files(root);
    let generic = generic.to_path_buf();
    let output = root.join("out.raw");

    // U-Boot without an ID block.
    let not_uboot = Files {
        uboot: root.join("u-boot.bin"),
        dtb: files.dtb.clone(),
    };
    std::fs::write(&not_uboot.uboot, vec![0x5Au8; 600_000]).unwrap();
    assert_refused(
        root,
        &adapt_args(&not_uboot, &generic, &output),
        &output,
        "ID block",
    );
    // U-Boot too large for the space before the moved table.
    let huge = Files {
        uboot: root.join("huge.bin"),
        dtb: files.dtb.clone(),
    };
    let mut bytes = uboot();
    bytes.resize(11 << 20, 0xFF);
    std::fs::write(&huge.uboot, bytes).unwrap();
    assert_refused(
        root,
        &adapt_args(&huge, &generic, &output),
        &output,
        "bytes",
    );
    // Another board's DTB fails the gate.
    let other = Files {
        uboot: files.uboot.clone(),
        dtb: root.join("orangepi-5.dtb"),
    };
    std::fs::write(
        &other.dtb,
        generic::shared_file("dtb/armbian-vendor-6.1.115__rk3588s-orangepi-5.dtb"),
    )
    .unwrap();
    assert_refused(
        root,
        &adapt_args(&other, &generic, &output),
        &output,
        "another board",
    );
    // No GPT at all.
    let blank = root.join("blank.raw");
    rockusb_testkit::fs::sized_file(&blank, 8 << 20);
    std::fs::write(&blank, vec![0x11u8; 8 << 20]).unwrap();
    assert_refused(
        root,
        &adapt_args(&files, &blank, &output),
        &output,
        "no GPT",
    );
    // An image already in the M6 layout.
    let adapted = root.join("adapted.raw");
    let out = adapt(root, &files, &generic, &adapted, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_refused(
        root,
        &adapt_args(&files, &adapted, &output),
        &output,
        "already adapted",
    );
    // An output that exists is kept unless --force.
    std::fs::write(&output, b"keep me").unwrap();
    let out = rockusb(root, &adapt_args(&files, &generic, &output));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read(&output).unwrap(), b"keep me");
    let out = adapt(root, &files, &generic, &output, &["--force"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(&adapted).unwrap()
    );

    // flash --adapt with a bad DTB leaves the board untouched.
    board(root, false);
    let before = emmc(root);
    let loader = standin(root);
    let out = flash(
        root,
        &generic,
        &loader,
        &[
            "--adapt",
            "nanopi-m6",
            "--uboot",
            files.uboot.to_str().unwrap(),
            "--dtb",
            other.dtb.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(emmc(root) == before, "the board was written");
}
