//! `flash IMAGE --to DEVICE` and `disks`: local disks (an SD card in a reader) and files as
//! flash targets. The checks and the writing are in [`rockusb::local`]; the flash itself is
//! the board's pipeline ([`rockusb::ops::flash::flash_to`]).

/// `flash --to` elsewhere than on Linux: refused before the image is opened.
#[cfg(not(target_os = "linux"))]
pub fn flash_unsupported() -> anyhow::Error {
    crate::platform::unsupported(
        "flash --to",
        "writing a local disk works on Linux only; flash the board over USB (without --to), \
         or write the image to the card with another tool",
    )
}

#[cfg(not(target_os = "linux"))]
pub fn list(_: &crate::output::Output) -> anyhow::Result<()> {
    Err(crate::platform::unsupported(
        "disks",
        "it lists the local disks `flash --to` can write, which works on Linux only",
    ))
}

#[cfg(target_os = "linux")]
pub use linux::{Image, flash, list};

#[cfg(target_os = "linux")]
mod linux {
    use crate::flash::{FlashArgs, summary};
    use crate::output::Output;
    use anyhow::{Context, Result, anyhow, bail};
    use rockusb::local::{Disk, Host, LocalDisk, Refusal, TargetKind, blockdev};
    use rockusb::ops::flash::FlashMode;
    use rockusb::ops::flash::layout::{self, LayoutChoice, LayoutName};
    use rockusb::ops::flash::{self as flash_op, FlashOptions, FlashReport};
    use rockusb::ops::{Event, Observer};
    use rockusb::source::ImageSource;
    use rockusb::source::check::IntegrityCheck;
    use rockusb_images::BoardLayout;
    use rockusb_images::NANOPI_M6;
    use rockusb_images::units::human_bytes;
    use serde::Serialize;
    use serde_json::json;

    /// The image side of a flash, checked and ready before the target is opened.
    pub struct Image {
        pub source: ImageSource,
        pub mode: FlashMode,
        /// The whole-image decode running in the background, if any.
        pub check: Option<IntegrityCheck>,
        /// The layout `--adapt` made the image for.
        pub adapted_for: Option<BoardLayout>,
    }

    /// The result of `flash --to`: the flash report and where it went.
    #[derive(Serialize)]
    struct LocalReport<'a> {
        to: &'a str,
        target: &'a TargetKind,
        /// Writes and read-backs bypassed the page cache (`O_DIRECT`).
        direct_io: bool,
        #[serde(flatten)]
        report: &'a FlashReport,
    }

    pub fn flash(
        args: &FlashArgs,
        device: Option<&str>,
        image: Image,
        out: &mut Output,
    ) -> Result<()> {
        if device.is_some() {
            bail!("--device picks a board and --to a local disk: give one of them");
        }
        let to = args.to.as_deref().context("--to names no device")?;
        let mut disk = LocalDisk::open(to, args.force, Some(&args.image), &Host::system())
            .map_err(|e| anyhow!("{e}"))?;
        let created = matches!(disk.kind(), TargetKind::File { existed: false });
        let result = flash_onto(&mut disk, args, image, out);
        let report = match result {
            Ok(report) => report,
            Err(e) if created => {
                // A partial image file must not be mistaken for a good one.
                let _ = std::fs::remove_file(to);
                return Err(e.context(format!("{} was removed", to.display())));
            }
            Err(e) => return Err(e),
        };
        disk.finish(report.image_len).map_err(|e| anyhow!("{e}"))?;
        let local = LocalReport {
            to: disk.path(),
            target: disk.kind(),
            direct_io: disk.is_direct(),
            report: &report,
        };
        out.result(&local, || {
            let mut text = summary(&report, disk.path(), None);
            text += if disk.is_direct() {
                "\n  written and read back with O_DIRECT (past the page cache), then synced"
            } else {
                "\n  synced to the file system"
            };
            text
        });
        Ok(())
    }

    fn flash_onto(
        disk: &mut LocalDisk,
        args: &FlashArgs,
        image: Image,
        out: &mut Output,
    ) -> Result<FlashReport> {
        let target = disk.target();
        out.show(
            "target",
            json!({ "to": disk.path(), "target": disk.kind(), "capacity": disk.capacity() }),
            || match disk.kind() {
                TargetKind::BlockDevice { disk: d } => {
                    format!("writing {}: {}", disk.path(), d.describe())
                }
                TargetKind::File { existed: true } => format!("writing the file {}", disk.path()),
                TargetKind::File { existed: false } => {
                    format!("writing the new file {}", disk.path())
                }
            },
        );
        if let Some(check) = image.check {
            let checked = check.wait()?;
            out.event(Event::ImageChecked {
                bytes: checked.bytes,
                seconds: checked.elapsed.as_secs_f64(),
            });
        }
        let chosen = match (image.adapted_for, args.layout) {
            (Some(layout), _) => LayoutChoice {
                layout,
                reason: "the image was adapted for it (--adapt)".into(),
            },
            (None, Some(name)) => layout::choose(None, Some(LayoutName::from(name))),
            (None, None) => LayoutChoice {
                layout: NANOPI_M6,
                reason: "no board to tell the SoC, so the NanoPi M6 (--layout rockchip for another board)".into(),
            },
        };
        out.event(chosen.event());
        let options = FlashOptions {
            layout: &chosen.layout,
            mode: image.mode,
            verify: args.verify_mode(),
            command_sectors: None,
            // A local disk is rewritten from the start: it is fast, and has no board
            // identity to key a journal on.
            resumable: None,
        };
        Ok(flash_op::flash_to(
            disk,
            &target,
            image.source,
            options,
            out,
        )?)
    }

    /// A disk as `disks --json` lists it.
    #[derive(Serialize)]
    struct Listed<'a> {
        #[serde(flatten)]
        disk: &'a Disk,
        /// `flash --to` takes it without `--force`.
        candidate: bool,
        /// Why not, when it is not.
        refused: Option<String>,
    }

    pub fn list(out: &Output) -> Result<()> {
        let disks = blockdev::disks(&Host::system())
            .context("cannot list the block devices (/sys/class/block)")?;
        let listed: Vec<Listed> = disks
            .iter()
            .map(|d| Listed {
                disk: d,
                candidate: d.is_candidate(),
                refused: d.refusal(false).map(|r| r.to_string()),
            })
            .collect();
        out.result(&listed, || table(&disks));
        Ok(())
    }

    fn table(disks: &[Disk]) -> String {
        if disks.is_empty() {
            return "no disks found".into();
        }
        let mut rows = vec![[
            "DEVICE".to_string(),
            "SIZE".into(),
            "BUS".into(),
            "REMOVABLE".into(),
            "MODEL".into(),
            "FOR --to".into(),
        ]];
        for d in disks {
            rows.push([
                d.path.clone(),
                human_bytes(d.size),
                d.bus.clone(),
                if d.removable { "yes" } else { "no" }.into(),
                d.model
                    .clone()
                    .or_else(|| d.backing_file.clone())
                    .unwrap_or_default(),
                state(d),
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        rows.iter()
            .map(|r| {
                r.iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Short: what `flash --to` would do with it.
    fn state(d: &Disk) -> String {
        match d.refusal(false) {
            None => "ready".into(),
            Some(Refusal::System { .. }) => "no: holds the running system".into(),
            Some(Refusal::Mounted { mounted, .. }) => format!("no: mounted ({mounted})"),
            Some(Refusal::Held { holders, .. }) => format!("no: used by {holders}"),
            Some(Refusal::NoMedium { .. }) => "no: no medium".into(),
            Some(Refusal::ReadOnly { .. }) => "no: read-only".into(),
            Some(Refusal::SectorSize { size, .. }) => format!("no: {size}-byte sectors"),
            Some(Refusal::NotRemovable { .. }) => "with --force (not removable)".into(),
            Some(Refusal::Partition { .. }) => "no: a partition".into(),
        }
    }
}
