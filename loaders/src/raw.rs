//! Raw maskrom stages: a DDR-init blob plus a usbplug/SPL blob sent without a
//! container (as xrock's `maskrom` command does), or U-Boot's
//! `u-boot-rockchip-usb471.bin` / `u-boot-rockchip-usb472.bin` pair.
//!
//! The result has the same entry shape as a [`LoaderContainer`], so `boot` sends
//! either through [`MaskromStages`] without caring where the bytes came from.

use thiserror::Error;

use crate::bytes::u64_at;
use crate::container::{ContainerTag, Entry, EntryKind, LoaderContainer, RawFileKind};
use crate::rc4::rc4_stream;
use crate::soc::Soc;

/// Pause after each raw stage; xrock's `maskrom` command waits 10 ms after each blob.
pub const RAW_STAGE_DELAY_MS: u32 = 10;

/// Anything that can be sent in maskrom: 471 entries then 472 entries, each payload
/// exactly as it goes on the wire, each followed by its delay.
pub trait MaskromStages {
    /// Wire-ready entries of one area, in sending order.
    fn stage_entries(&self, kind: EntryKind) -> Vec<&Entry>;
}

impl MaskromStages for LoaderContainer {
    fn stage_entries(&self, kind: EntryKind) -> Vec<&Entry> {
        self.entries(kind).collect()
    }
}

/// One raw blob as read from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawStage {
    /// Label for messages and progress (usually the file name).
    pub name: String,
    /// The file's bytes, plain (not RC4-scrambled).
    pub data: Vec<u8>,
}

/// Raw stages made wire-ready for one SoC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawLoader {
    soc: &'static Soc,
    entries: Vec<Entry>,
    notes: Vec<String>,
}

/// Why raw stages cannot be sent.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RawError {
    #[error("{name} is empty")]
    Empty { name: String },
    #[error(
        "{name} is a loader container ({tag}), not a raw blob; pass it as the loader \
         instead of as a raw stage"
    )]
    IsContainer { name: String, tag: ContainerTag },
    #[error(
        "{name} is an ID block (idbloader), which is written to LBA 64, not sent in maskrom; \
         pass the DDR init and SPL/usbplug blobs instead"
    )]
    IsIdBlock { name: String },
    #[error("{name} is {size} bytes; a maskrom area cannot carry more than {max} bytes on {soc}")]
    TooLarge {
        name: String,
        size: usize,
        max: usize,
        soc: &'static str,
    },
}

/// Largest payload sent to one area. The 472 stage lands in DRAM, but the protocol's
/// 4096-byte chunks are counted by the BootROM; no tool sends more than a few MiB.
const MAX_AREA_BYTES: usize = 16 << 20;

impl RawLoader {
    /// A DDR-init blob for area 0x471 and a usbplug/SPL blob for area 0x472,
    /// RC4-scrambled (one stream each) when `soc` expects it.
    pub fn from_pair(soc: &'static Soc, ddr: RawStage, second: RawStage) -> Result<Self, RawError> {
        let mut notes = Vec::new();
        let e471 = wire_entry(soc, EntryKind::Area471, ddr, &mut notes)?;
        let e472 = wire_entry(soc, EntryKind::Area472, second, &mut notes)?;
        Ok(RawLoader {
            soc,
            entries: vec![e471, e472],
            notes,
        })
    }

    /// U-Boot's maskrom pair (`CONFIG_ROCKCHIP_MASKROM_IMAGE`): usb471 is the TPL/DDR
    /// init, usb472 is SPL followed by the FIT. Checked the same way as
    /// [`RawLoader::from_pair`]; on RK3576 the usb472 load address is also checked.
    pub fn from_uboot_pair(
        soc: &'static Soc,
        usb471: Vec<u8>,
        usb472: Vec<u8>,
    ) -> Result<Self, RawError> {
        let mut loader = Self::from_pair(
            soc,
            RawStage {
                name: "u-boot-rockchip-usb471.bin".into(),
                data: usb471,
            },
            RawStage {
                name: "u-boot-rockchip-usb472.bin".into(),
                data: usb472.clone(),
            },
        )?;
        if let Some(base) = expected_usb472_load_address(soc) {
            match u64_at(&usb472, 8) {
                Some(found) if found == base => {}
                found => loader.notes.push(format!(
                    "u-boot-rockchip-usb472.bin declares load address {} but {} runs it from \
                     DRAM base {base:#x}; the upload will succeed and nothing will run. \
                     Rebuild U-Boot for USB boot",
                    found.map_or("(none)".to_string(), |f| format!("{f:#x}")),
                    soc.name
                )),
            }
        }
        Ok(loader)
    }

    /// Wire-ready entries of one area.
    pub fn entries(&self, kind: EntryKind) -> impl Iterator<Item = &Entry> + '_ {
        self.entries.iter().filter(move |e| e.kind == kind)
    }

    /// The SoC the stages were prepared for.
    pub fn soc(&self) -> &'static Soc {
        self.soc
    }

    /// Warnings and decisions worth showing the user (RC4 applied or skipped, …).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

impl MaskromStages for RawLoader {
    fn stage_entries(&self, kind: EntryKind) -> Vec<&Entry> {
        self.entries(kind).collect()
    }
}

/// The SPL load address U-Boot's usb472 image must carry, where one is known.
fn expected_usb472_load_address(soc: &Soc) -> Option<u64> {
    // Measured on RK3576 (docs/protocol.md §2.5); other SoCs are not checked.
    (soc.name == "RK3576").then_some(0x4000_0000)
}

fn wire_entry(
    soc: &'static Soc,
    kind: EntryKind,
    stage: RawStage,
    notes: &mut Vec<String>,
) -> Result<Entry, RawError> {
    let RawStage { name, data } = stage;
    if data.is_empty() {
        return Err(RawError::Empty { name });
    }
    if data.len() > MAX_AREA_BYTES {
        return Err(RawError::TooLarge {
            name,
            size: data.len(),
            max: MAX_AREA_BYTES,
            soc: soc.name,
        });
    }
    if let Some(tag) = data
        .get(..4)
        .and_then(|m| ContainerTag::from_magic(m.try_into().ok()?))
    {
        return Err(RawError::IsContainer { name, tag });
    }
    if matches!(
        crate::container::classify_raw(&data),
        Some(RawFileKind::RknsIdBlock | RawFileKind::V1IdBlock)
    ) {
        return Err(RawError::IsIdBlock { name });
    }
    let wire = if soc.rc4_on_wire {
        if looks_plain(&data) || !looks_plain(&rc4_stream(&data)) {
            notes.push(format!(
                "{name}: RC4-scrambled for {} (its BootROM expects scrambled uploads)",
                soc.name
            ));
            rc4_stream(&data)
        } else {
            notes.push(format!(
                "{name}: already RC4-scrambled, sent as is to avoid scrambling it twice"
            ));
            data
        }
    } else {
        data
    };
    Ok(Entry::new(kind, &name, wire, RAW_STAGE_DELAY_MS))
}

/// True when `data` starts like a plain rkbin blob: an "RKxx" tag or an ARM branch.
fn looks_plain(data: &[u8]) -> bool {
    matches!(
        crate::container::classify_raw(data),
        Some(RawFileKind::RawSpl | RawFileKind::TaggedBlob)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soc::by_name;

    fn stage(name: &str, data: &[u8]) -> RawStage {
        RawStage {
            name: name.into(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn rk3588_pair_is_sent_plain() {
        let soc = by_name("rk3588").unwrap();
        let ddr = [0x01, 0x00, 0x00, 0x14, 9, 9];
        let spl = [0x82, 0x00, 0x00, 0x14, 7];
        let raw = RawLoader::from_pair(soc, stage("ddr", &ddr), stage("spl", &spl)).unwrap();
        let e471: Vec<_> = raw.stage_entries(EntryKind::Area471);
        assert_eq!(e471.len(), 1);
        assert_eq!(e471[0].data, ddr);
        assert_eq!(raw.stage_entries(EntryKind::Area472)[0].data, spl);
    }

    #[test]
    fn rk3399_pair_is_scrambled_once() {
        let soc = by_name("rk3399").unwrap();
        let ddr = b"RK33\x00\x00\x00\x00plain ddr".to_vec();
        let spl = vec![0x82, 0x00, 0x00, 0x14, 1, 2, 3];
        let raw = RawLoader::from_pair(soc, stage("ddr", &ddr), stage("spl", &spl)).unwrap();
        assert_eq!(
            raw.stage_entries(EntryKind::Area471)[0].data,
            rc4_stream(&ddr)
        );
        assert_eq!(
            raw.stage_entries(EntryKind::Area472)[0].data,
            rc4_stream(&spl)
        );

        // A blob that is already scrambled is not scrambled again.
        let raw =
            RawLoader::from_pair(soc, stage("ddr", &rc4_stream(&ddr)), stage("spl", &spl)).unwrap();
        assert_eq!(
            raw.stage_entries(EntryKind::Area471)[0].data,
            rc4_stream(&ddr)
        );
        assert!(raw.notes().iter().any(|n| n.contains("already RC4")));
    }

    #[test]
    fn containers_and_id_blocks_are_refused() {
        let soc = by_name("rk3588").unwrap();
        let container = crate::standin::build(soc);
        assert!(matches!(
            RawLoader::from_pair(soc, stage("x", &container), stage("y", &[1])),
            Err(RawError::IsContainer { .. })
        ));
        assert!(matches!(
            RawLoader::from_pair(soc, stage("x", b"RKNS...."), stage("y", &[1])),
            Err(RawError::IsIdBlock { .. })
        ));
        assert!(matches!(
            RawLoader::from_pair(soc, stage("x", &[]), stage("y", &[1])),
            Err(RawError::Empty { .. })
        ));
    }

    #[test]
    fn rk3576_usb472_load_address_is_checked() {
        let soc = by_name("rk3576").unwrap();
        let mut good = vec![0u8; 64];
        good[8..16].copy_from_slice(&0x4000_0000u64.to_le_bytes());
        let raw = RawLoader::from_uboot_pair(soc, vec![0x01, 0, 0, 0x14], good).unwrap();
        assert!(raw.notes().is_empty());
        let raw = RawLoader::from_uboot_pair(soc, vec![0x01, 0, 0, 0x14], vec![0u8; 64]).unwrap();
        assert!(raw.notes()[0].contains("nothing will run"));
    }
}
