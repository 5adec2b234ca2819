//! The board layout is chosen from the board's SoC (or `--layout`) and said, so a board
//! other than the NanoPi M6 is not checked against the M6's offsets.

mod flash_support;

use flash_support::*;
use rockusb_virtual::{BoardConfig, VirtualBoard};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A 40 MiB image in the standard Rockchip layout: GPT entries at LBA 2, one partition of
/// random bytes at 16 MiB (sector 32768).
fn standard_image(dir: &Path) -> PathBuf {
    let raw = dir.join("standard.raw");
    let mut bytes = vec![0u8; 40 << 20];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for b in &mut bytes[(16 << 20)..(24 << 20)] {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    std::fs::write(&raw, &bytes).unwrap();
    let status = Command::new("sgdisk")
        .args(["-n", "1:32768:+8M", "-t", "1:8300", "-c", "1:rootfs"])
        .arg(&raw)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    raw
}

fn rk3568_board(root: &Path) {
    VirtualBoard::open_or_create(&root.join(BOARD), || BoardConfig {
        model: "rk3568-board".into(),
        usb_pid: 0x350a,
        emmc_bytes: EMMC_LEN,
        ..BoardConfig::nanopi_m6(1)
    })
    .unwrap();
}

fn standin_for(root: &Path, soc: &str) -> PathBuf {
    let path = root.join(format!("standin-{soc}.bin"));
    let out = rockusb(
        root,
        &[
            "loader",
            "standin",
            "--soc",
            soc,
            "-o",
            path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    path
}

fn layout_event(out: &std::process::Output) -> serde_json::Value {
    json_events(out)
        .into_iter()
        .find(|e| e["event"] == "layout")
        .unwrap_or_else(|| panic!("no layout event:\n{}", text(out)))
}

fn warnings(out: &std::process::Output) -> Vec<String> {
    json_events(out)
        .into_iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn an_rk3568_board_is_flashed_with_the_generic_layout_not_the_m6_offsets() {
    with_image("rk3568_layout", standard_image, |root, raw| {
        let image = std::fs::read(raw).unwrap();
        rk3568_board(root);
        let loader = standin_for(root, "RK3568");

        let out = flash(root, raw, &loader, &["--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let layout = layout_event(&out);
        assert_eq!(layout["name"], "rockchip", "{layout}");
        assert!(
            layout["reason"].as_str().unwrap().contains("RK3568"),
            "{layout}"
        );
        let warned = warnings(&out);
        assert!(
            !warned.iter().any(|w| w.contains("GPT entry array")),
            "the standard GPT was checked against the M6 offsets: {warned:?}"
        );
        assert_eq!(&emmc(root)[..image.len()], &image[..]);

        // The text output says which layout is in use.
        let out = flash(root, raw, &loader, &[]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("layout: Rockchip board (generic layout)"),
            "{}",
            text(&out)
        );
    });
}

#[test]
fn an_rk3588_board_gets_the_m6_layout_unless_told_otherwise() {
    with_image("rk3588_layout", standard_image, |root, raw| {
        let loader = board_with_standin(root);

        let out = flash(root, raw, &loader, &["--json"]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(layout_event(&out)["name"], "nanopi-m6");
        // Against the M6 layout, a GPT at LBA 2 is worth a warning ...
        assert!(
            warnings(&out).iter().any(|w| w.contains("GPT entry array")),
            "{}",
            text(&out)
        );

        // ... which `--layout rockchip` does not give.
        let out = flash(root, raw, &loader, &["--json", "--layout", "rockchip"]);
        assert!(out.status.success(), "{}", text(&out));
        let layout = layout_event(&out);
        assert_eq!(layout["name"], "rockchip");
        assert!(
            layout["reason"].as_str().unwrap().contains("--layout"),
            "{layout}"
        );
        assert!(
            !warnings(&out).iter().any(|w| w.contains("GPT entry array")),
            "{}",
            text(&out)
        );
    });
}
