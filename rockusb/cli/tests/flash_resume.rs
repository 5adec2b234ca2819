//! `flash --resume` and riding out a board that drops off the bus: a flash that stops
//! part-way (a reset into MaskROM, a killed process) is continued from its journal and
//! ends verified; a glitch that re-enumerates the board on its port is survived within
//! the same run; a journal of another image is refused with the storage untouched.

mod flash_support;

use flash_support::*;
use rockusb_virtual::LinkModel;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// 128 KiB commands: enough of them in the test image for faults to land mid-stream.
const SMALL_COMMANDS: &str = "256";

fn flash_cmd(root: &Path, image: &Path, loader: &Path, faults: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rockusb"));
    cmd.env("ROCKUSB_VIRTUAL_DIR", root)
        .env("ROCKUSB_VIRTUAL", BOARD)
        .env("ROCKUSB_VIRTUAL_FAULTS", faults)
        .env_remove("ROCKUSB_STATE_DIR")
        .args([
            "--json",
            "flash",
            "--command-sectors",
            SMALL_COMMANDS,
            "--loader",
        ])
        .arg(loader)
        .arg(image)
        .args(extra);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// The board's journals (the virtual world keeps them beside its boards).
fn journals(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root.join("journal"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default()
}

fn journal_written_to(root: &Path) -> Option<u64> {
    let path = journals(root).into_iter().next()?;
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    record["written_to"].as_u64()
}

#[test]
fn a_reset_into_maskrom_mid_flash_is_resumed_by_booting_the_loader_again() {
    with_talos_image("resume_after_maskrom", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let xz = xz(raw);
        let loader = board_with_standin(root);

        let out = run(&mut flash_cmd(root, &xz, &loader, "maskrom@60", &[]));
        assert!(!out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("came back in MaskROM"), "{stderr}");
        assert!(stderr.contains("--resume"), "{stderr}");
        assert!(stderr.contains("--loader"), "{stderr}");
        let stopped_at = journal_written_to(root).expect("a journal is left");
        assert!(stopped_at > 11 * MIB, "stopped at {stopped_at}");
        assert_eq!(
            open_board(root).state().mode,
            rockusb_virtual::Mode::Maskrom
        );

        let out = run(&mut flash_cmd(root, &xz, &loader, "", &["--resume"]));
        assert!(out.status.success(), "{}", text(&out));
        let result = json_result(&out);
        assert_eq!(
            result["resumed_from"].as_u64(),
            Some(stopped_at),
            "{result}"
        );
        assert!(result["kept_bytes"].as_u64().unwrap() > MIB, "{result}");
        assert_eq!(result["verify"]["verify"], "verified", "{result}");
        assert_flashed(&emmc(root), &image);
        assert!(
            journals(root).is_empty(),
            "a finished flash leaves no journal"
        );
    });
}

#[test]
fn a_board_that_drops_off_the_bus_and_comes_back_as_a_loader_is_found_again() {
    with_talos_image("reattach", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let xz = xz(raw);
        let loader = board_with_standin(root);
        let out = run(&mut flash_cmd(
            root,
            &xz,
            &loader,
            "disconnect@40,disconnect@90",
            &[],
        ));
        assert!(out.status.success(), "{}", text(&out));
        let result = json_result(&out);
        assert_eq!(result["reattached"], 2, "{result}");
        assert_eq!(result["verify"]["verify"], "verified", "{result}");
        let log = std::fs::read_to_string(root.join(BOARD).join("faults.log")).unwrap();
        assert_eq!(
            log.lines().filter(|l| l.starts_with("disconnect")).count(),
            2
        );
        assert_flashed(&emmc(root), &image);
    });
}

#[test]
fn a_killed_flash_is_resumed_from_its_journal() {
    with_talos_image("resume_after_kill", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let xz = xz(raw);
        let loader = board_with_standin(root);
        // A slow link, so the flash is still writing when it is killed.
        let slow = LinkModel {
            bytes_per_second: 3e6,
            command_overhead: 0.5e-3,
        };
        board(root, false).set_link(Some(slow)).unwrap();
        let mut child = flash_cmd(root, &xz, &loader, "", &[])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let killed_at = loop {
            if let Some(at) = journal_written_to(root).filter(|&at| at > 12 * MIB) {
                break at;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the flash ended before it could be killed"
            );
            assert!(Instant::now() < deadline, "the journal never moved");
            std::thread::sleep(Duration::from_millis(20));
        };
        child.kill().unwrap(); // SIGKILL: no chance to tidy up
        child.wait().unwrap();
        let recorded = journal_written_to(root).unwrap();
        assert!(recorded >= killed_at);
        // Not finished: the bootloader was cleared first and is written last.
        assert_ne!(&emmc(root)[32768..32772], b"RKNS");

        board(root, false).set_link(None).unwrap();
        let out = run(&mut flash_cmd(root, &xz, &loader, "", &["--resume"]));
        assert!(out.status.success(), "{}", text(&out));
        let result = json_result(&out);
        assert_eq!(result["resumed_from"].as_u64(), Some(recorded), "{result}");
        assert!(result["kept_bytes"].as_u64().unwrap() > 0, "{result}");
        assert_eq!(result["verify"]["verify"], "verified", "{result}");
        assert_flashed(&emmc(root), &image);
    });
}

#[test]
fn a_journal_of_another_image_is_refused_and_the_storage_left_alone() {
    with_talos_image("resume_foreign", |root, raw| {
        let xz_a = xz(raw);
        let loader = board_with_standin(root);
        let out = run(&mut flash_cmd(root, &xz_a, &loader, "maskrom@60", &[]));
        assert!(!out.status.success(), "{}", text(&out));
        assert!(journal_written_to(root).is_some());

        // Another image: one byte changed in a partition.
        let other = root.join("other.raw");
        let mut bytes = std::fs::read(raw).unwrap();
        bytes[(EFI_LBA * 512 + 4096 * 3) as usize] ^= 0xFF;
        std::fs::write(&other, bytes).unwrap();
        let xz_b = xz(&other);
        let before = emmc(root);
        let out = run(&mut flash_cmd(root, &xz_b, &loader, "", &["--resume"]));
        assert!(!out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("refusing to resume"), "{stderr}");
        assert!(stderr.contains("talos.raw.xz"), "{stderr}");
        assert!(stderr.contains("Nothing was written"), "{stderr}");
        assert!(emmc(root) == before, "the storage changed");
        assert!(journal_written_to(root).is_some(), "the journal is kept");
    });
}

#[test]
fn resume_without_a_journal_flashes_from_the_start_and_stdin_cannot_resume() {
    with_talos_image("resume_fresh", |root, raw| {
        let image = std::fs::read(raw).unwrap();
        let xz = xz(raw);
        let loader = board_with_standin(root);
        let out = run(&mut flash_cmd(root, &xz, &loader, "", &["--resume"]));
        assert!(out.status.success(), "{}", text(&out));
        let events = text(&out);
        assert!(
            events.contains("no interrupted flash is recorded"),
            "{events}"
        );
        assert!(json_result(&out)["resumed_from"].is_null());
        assert_flashed(&emmc(root), &image);

        let before = emmc(root);
        let out = rockusb_with_stdin(root, &["flash", "-", "--resume"], Some(&xz));
        assert!(!out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("standard input"), "{}", text(&out));
        assert!(emmc(root) == before);
    });
}
