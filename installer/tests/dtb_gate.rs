//! The DTB gate against real DTBs from ../shared/testdata/dtb and variants made with dtc.

use nanopi_m6_installer::dtb_gate::{self, CPU_OPP_NAME, DtbGateError};
use nanopi_m6_installer::fdt::{Fdt, FdtError};
use std::path::Path;
use std::process::Command;

const M6_DTBS: &[&str] = &[
    "dtb/nanopi-m6__friendlyelec-vendor__rk3588s-nanopi-m6.dtb",
    "dtb/armbian-vendor-6.1.115__rk3588s-nanopi-m6.dtb",
];
const OTHER_BOARDS: &[(&str, &str)] = &[
    (
        "dtb/armbian-vendor-6.1.115__rk3588s-nanopi-r6s.dtb",
        "friendlyelec,nanopi-r6s",
    ),
    (
        "dtb/armbian-vendor-6.1.115__rk3588s-orangepi-5.dtb",
        "rockchip,rk3588s-orangepi-5",
    ),
];

fn read(dir: &Path, relative: &str) -> Vec<u8> {
    std::fs::read(dir.join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Decompiles `dtb`, appends `amendment` (DTS source such as `&{/path} { ... };`) and
/// compiles it again with dtc.
fn amend_with_dtc(dtb: &[u8], amendment: &str) -> Vec<u8> {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in.dtb");
    let source = work.path().join("board.dts");
    let output = work.path().join("out.dtb");
    std::fs::write(&input, dtb).unwrap();
    let mut dts = rockusb_testkit::run(
        Command::new("dtc")
            .args(["-q", "-I", "dtb", "-O", "dts"])
            .arg(&input),
    );
    dts.extend_from_slice(b"\n");
    dts.extend_from_slice(amendment.as_bytes());
    std::fs::write(&source, dts).unwrap();
    rockusb_testkit::run(
        Command::new("dtc")
            .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
            .arg(&output)
            .arg(&source),
    );
    std::fs::read(output).unwrap()
}

/// The path of the first node named `name` (vendor trees nest some nodes in wrappers).
fn path_of(dtb: &[u8], name: &str) -> String {
    let fdt = Fdt::parse(dtb).unwrap();
    let index = fdt
        .nodes()
        .iter()
        .position(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name}"));
    fdt.path_of(index)
}

fn missing_names(result: Result<dtb_gate::AcceptedDtb, DtbGateError>) -> Vec<&'static str> {
    match result {
        Err(DtbGateError::MissingHardware { missing }) => missing.iter().map(|m| m.name).collect(),
        other => panic!("expected missing hardware, got {other:?}"),
    }
}

#[test]
fn both_real_m6_dtbs_pass_the_gate() {
    let Some(dir) = rockusb_testkit::testdata("both_real_m6_dtbs_pass_the_gate") else {
        return;
    };
    for relative in M6_DTBS {
        let accepted =
            dtb_gate::check(&read(&dir, relative)).unwrap_or_else(|e| panic!("{relative}: {e}"));
        assert_eq!(accepted.model.as_deref(), Some("FriendlyElec NanoPi M6"));
    }
}

#[test]
fn r6s_and_orange_pi_5_are_refused_as_other_boards() {
    let Some(dir) = rockusb_testkit::testdata("r6s_and_orange_pi_5_are_refused") else {
        return;
    };
    for (relative, board) in OTHER_BOARDS {
        let err = dtb_gate::check(&read(&dir, relative)).unwrap_err();
        match &err {
            DtbGateError::OtherBoard { compatible, .. } => assert_eq!(compatible[0], *board),
            other => panic!("{relative}: expected OtherBoard, got {other:?}"),
        }
        assert!(err.to_string().contains("another board"), "{err}");
    }
}

#[test]
fn a_dtb_with_the_watchdog_disabled_is_reported_by_name() {
    let test = "a_dtb_with_the_watchdog_disabled_is_reported";
    let Some(dir) = rockusb_testkit::testdata(test) else {
        return;
    };
    if !rockusb_testkit::tool(test, "dtc", "device-tree-compiler") {
        return;
    }
    let dtb = read(&dir, M6_DTBS[0]);
    let watchdog = path_of(&dtb, "watchdog@feaf0000");
    let modified = amend_with_dtc(
        &dtb,
        &format!("&{{{watchdog}}} {{ status = \"disabled\"; }};\n"),
    );
    let err = dtb_gate::check(&modified).unwrap_err();
    assert_eq!(
        missing_names(Err(err.clone())),
        ["watchdog (watchdog@feaf0000)"]
    );
    let text = err.to_string();
    assert!(
        text.contains("watchdog (watchdog@feaf0000): /watchdog@feaf0000 is disabled"),
        "{text}"
    );
}

#[test]
fn every_missing_piece_is_named_at_once() {
    let test = "every_missing_piece_is_named_at_once";
    let Some(dir) = rockusb_testkit::testdata(test) else {
        return;
    };
    if !rockusb_testkit::tool(test, "dtc", "device-tree-compiler") {
        return;
    }
    let dtb = read(&dir, M6_DTBS[1]);
    let amendment = format!(
        "&{{{gmac}}} {{ status = \"disabled\"; }};\n\
         &{{{pcie}}} {{ status = \"disabled\"; }};\n\
         /delete-node/ &{{{tsadc}}};\n\
         &{{{emmc}}} {{ status = \"disabled\"; }};\n\
         &{{/cpus/cpu@400}} {{ /delete-property/ operating-points-v2; }};\n",
        gmac = path_of(&dtb, "ethernet@fe1c0000"),
        pcie = path_of(&dtb, "pcie@fe190000"),
        tsadc = path_of(&dtb, "tsadc@fec00000"),
        emmc = path_of(&dtb, "mmc@fe2e0000"),
    );
    let names = missing_names(dtb_gate::check(&amend_with_dtc(&dtb, &amendment)));
    assert_eq!(
        names,
        [
            "eMMC (sdhci, mmc@fe2e0000)",
            "Ethernet (gmac1, ethernet@fe1c0000)",
            "PCIe for the M.2 NVMe slot (pcie2x1l2, pcie@fe190000)",
            "thermal sensor (tsadc, tsadc@fec00000)",
            CPU_OPP_NAME,
        ]
    );
}

#[test]
fn a_usb_controller_under_a_disabled_wrapper_counts_as_disabled() {
    let test = "usb_under_disabled_wrapper";
    let Some(dir) = rockusb_testkit::testdata(test) else {
        return;
    };
    if !rockusb_testkit::tool(test, "dtc", "device-tree-compiler") {
        return;
    }
    let dtb = read(&dir, M6_DTBS[0]);
    let usb = path_of(&dtb, "usb@fc000000");
    let (wrapper, _) = usb.rsplit_once('/').unwrap();
    assert!(
        !wrapper.is_empty(),
        "the vendor tree nests the dwc3 node in a wrapper"
    );
    let modified = amend_with_dtc(
        &dtb,
        &format!("&{{{wrapper}}} {{ status = \"disabled\"; }};\n"),
    );
    assert_eq!(
        missing_names(dtb_gate::check(&modified)),
        ["USB 3.0 host (usb@fc000000)"]
    );
}

#[test]
fn the_upstream_compatible_strings_are_accepted() {
    let test = "upstream_compatible_accepted";
    let Some(dir) = rockusb_testkit::testdata(test) else {
        return;
    };
    if !rockusb_testkit::tool(test, "dtc", "device-tree-compiler") {
        return;
    }
    let dtb = read(&dir, M6_DTBS[0]);
    let modified = amend_with_dtc(
        &dtb,
        "/ { compatible = \"friendlyarm,nanopi-m6\", \"rockchip,rk3588s\"; };\n",
    );
    let accepted = dtb_gate::check(&modified).unwrap();
    assert_eq!(
        accepted.compatible,
        ["friendlyarm,nanopi-m6", "rockchip,rk3588s"]
    );
}

#[test]
fn truncated_and_non_dtb_files_are_invalid() {
    let Some(dir) = rockusb_testkit::testdata("truncated_dtb_invalid") else {
        return;
    };
    let dtb = read(&dir, M6_DTBS[0]);
    assert!(matches!(
        dtb_gate::check(&dtb[..dtb.len() / 2]),
        Err(DtbGateError::Invalid(FdtError::Truncated { .. }))
    ));
    assert!(matches!(
        dtb_gate::check(&read(
            &dir,
            "idbloader/stvhay-uboot-rk3588__rock5b__idbloader.img"
        )),
        Err(DtbGateError::Invalid(FdtError::BadMagic { .. }))
    ));
}

#[test]
fn the_overlay_tool_checks_dtbs_from_the_command_line() {
    let Some(dir) = rockusb_testkit::testdata("overlay_tool_check_dtb") else {
        return;
    };
    let tool = env!("CARGO_BIN_EXE_nanopi-m6-overlay");
    let ok = Command::new(tool)
        .arg("check-dtb")
        .args(M6_DTBS.iter().map(|d| dir.join(d)))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout)
            .matches(": OK, FriendlyElec NanoPi M6")
            .count(),
        2
    );
    let bad = Command::new(tool)
        .arg("check-dtb")
        .arg(dir.join(OTHER_BOARDS[0].0))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("another board"));
}

#[test]
fn damaged_real_dtbs_give_errors_not_panics() {
    let Some(dir) = rockusb_testkit::testdata("damaged_real_dtbs") else {
        return;
    };
    let dtb = read(&dir, M6_DTBS[0]);
    // Spread over the header, the structure block and the strings block.
    for at in (0..dtb.len()).step_by(2003) {
        for value in [0x00, 0x03, 0xff] {
            let mut damaged = dtb.clone();
            damaged[at] = value;
            let _ = dtb_gate::check(&damaged);
        }
    }
    for len in (0..dtb.len()).step_by(4099) {
        assert!(
            dtb_gate::check(&dtb[..len]).is_err(),
            "a {len}-byte prefix passed"
        );
    }
}

/// A NanoPi M6 root with `/cpus` holding `count` CPUs, each naming an OPP table by a
/// phandle that no node carries, built by hand: dtc's parser runs out of stack ("memory
/// exhausted") near 10,000 sibling nodes.
fn dtb_with_cpus(count: u32) -> Vec<u8> {
    let mut strings = Vec::new();
    let mut string = |name: &str| {
        let at = strings.len() as u32;
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
        at
    };
    let (compatible, device_type, opp) = (
        string("compatible"),
        string("device_type"),
        string("operating-points-v2"),
    );
    let mut structure = Vec::new();
    fn word(s: &mut Vec<u8>, v: u32) {
        s.extend_from_slice(&v.to_be_bytes());
    }
    fn padded(s: &mut Vec<u8>, bytes: &[u8]) {
        s.extend_from_slice(bytes);
        s.resize(s.len().div_ceil(4) * 4, 0);
    }
    fn begin(s: &mut Vec<u8>, name: &str) {
        word(s, 1);
        padded(s, format!("{name}\0").as_bytes());
    }
    fn prop(s: &mut Vec<u8>, name_offset: u32, value: &[u8]) {
        word(s, 3);
        word(s, value.len() as u32);
        word(s, name_offset);
        padded(s, value);
    }
    begin(&mut structure, "");
    prop(
        &mut structure,
        compatible,
        b"friendlyelec,nanopi-m6\0rockchip,rk3588s\0",
    );
    begin(&mut structure, "cpus");
    for cpu in 0..count {
        begin(&mut structure, &format!("cpu@{cpu:x}"));
        prop(&mut structure, device_type, b"cpu\0");
        prop(&mut structure, opp, &0x7fff_ffffu32.to_be_bytes());
        word(&mut structure, 2);
    }
    word(&mut structure, 2);
    word(&mut structure, 2);
    word(&mut structure, 9);

    let off_struct = 40 + 16;
    let off_strings = off_struct + structure.len() as u32;
    let total = off_strings + strings.len() as u32;
    let mut blob = Vec::new();
    for v in [
        0xd00d_feed,
        total,
        off_struct,
        off_strings,
        40,
        17,
        16,
        0,
        strings.len() as u32,
        structure.len() as u32,
    ] {
        word(&mut blob, v);
    }
    blob.extend_from_slice(&[0u8; 16]);
    blob.extend_from_slice(&structure);
    blob.extend_from_slice(&strings);
    blob
}

#[test]
fn a_dtb_of_twenty_thousand_cpus_is_checked_and_reported() {
    // 1 MiB, within what the fdt_gate fuzz target feeds. Resolving each CPU's OPP phandle
    // by scanning every node made this input take minutes (400 million node visits, a
    // libFuzzer timeout); the gate now indexes phandles once. How long it takes is for the
    // fuzz runs to watch, not for a timed test: fuzz/run-all.sh seeds fdt_gate with this
    // DTB (fuzz/many-cpus-dtb.py), which exceeds the per-input timeout if the lookups turn
    // quadratic again. Here the check must finish and name what the DTB lacks.
    let dtb = dtb_with_cpus(20_000);
    assert!(dtb.len() <= 1 << 20, "{} bytes", dtb.len());
    let result = dtb_gate::check(&dtb);
    assert!(missing_names(result).contains(&CPU_OPP_NAME));
}

#[test]
fn a_tree_that_gives_the_debug_uart_to_the_fiq_debugger_is_accepted_with_a_console_warning() {
    let test = "a_tree_without_the_debug_uart_warns_about_the_console";
    let Some(dir) = rockusb_testkit::testdata(test) else {
        return;
    };
    // Both vendor trees disable uart2 and run it as the FIQ debugger (ttyFIQ0).
    for relative in M6_DTBS {
        let accepted = dtb_gate::check(&read(&dir, relative)).unwrap();
        let [warning] = &accepted.warnings[..] else {
            panic!(
                "{relative}: one console warning expected, got {:?}",
                accepted.warnings
            );
        };
        for words in ["serial@feb50000", "is disabled", "ttyFIQ0", "console=ttyS2"] {
            assert!(warning.contains(words), "{relative}: {warning}");
        }
    }
    if !rockusb_testkit::tool(test, "dtc", "device-tree-compiler") {
        return;
    }
    // The same tree with uart2 enabled and the FIQ debugger off: nothing to say.
    let dtb = read(&dir, M6_DTBS[0]);
    let uart = path_of(&dtb, "serial@feb50000");
    let fiq = path_of(&dtb, "fiq-debugger");
    let fixed = amend_with_dtc(
        &dtb,
        &format!(
            "&{{{uart}}} {{ status = \"okay\"; }};\n&{{{fiq}}} {{ status = \"disabled\"; }};\n"
        ),
    );
    assert_eq!(
        dtb_gate::check(&fixed).unwrap().warnings,
        Vec::<String>::new()
    );
    // Without the FIQ debugger but with uart2 still off, the warning gives no FIQ reason.
    let quiet = amend_with_dtc(&dtb, &format!("&{{{fiq}}} {{ status = \"disabled\"; }};\n"));
    let warnings = dtb_gate::check(&quiet).unwrap().warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(!warnings[0].contains("ttyFIQ0"), "{}", warnings[0]);
}
