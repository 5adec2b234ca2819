//! Building a container like rkbin's `boot_merger`, from parts already in memory.
//!
//! What boot_merger does, and this reproduces byte for byte:
//! * 471/472 payloads are zero padded to the alignment (2048, or 4096 with `ALIGN=8`);
//!   loader payloads to 512 first, then to the alignment.
//! * "LDR " (NEWIDB) files get a generated RKNS `UsbHead` as the first 471 entry,
//!   hashing the padded 471 and 472 payloads, and a generated RKNS `FlashHead` as the
//!   first loader entry, hashing the padded loader payloads.
//! * 471/472 payloads are stored plain in "LDR " files and as one RC4 stream in
//!   "BOOT" files; loader payloads are RC4'd per 512-byte block.
//! * Entry names are the file name up to its first '.', cut to 20 UTF-16 units.
//! * The release time is a parameter, never the clock.

use thiserror::Error;

use crate::bytes::align_up;
use crate::chip::ChipCode;
use crate::container::{
    ContainerError, ContainerHeader, ContainerTag, Entry, EntryKind, LoaderContainer,
};
use crate::rc4::{RC4_BLOCK, rc4_blocks_in_place, rc4_stream_in_place};
use crate::release_time::ReleaseTime;
use crate::rkns::{BootParams, ImageSpec, build_header};

/// Merger version written by current rkbin boot_merger.
pub const MERGER_VERSION: u32 = 0x0100_0000;

/// A 471 or 472 payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagePart {
    /// Entry name (see [`entry_name_from_path`]).
    pub name: String,
    /// The component file's bytes, unpadded.
    pub data: Vec<u8>,
}

/// A loader payload (FlashData, FlashBoot, FlashBoost, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoaderPart {
    /// Entry name, e.g. "FlashData".
    pub name: String,
    /// The component file's bytes, unpadded.
    pub data: Vec<u8>,
    /// Load address for the FlashHead image entry (ini `LOAD_ADDR`); default 0xFFFFFFFF.
    pub load_address: Option<u32>,
    /// Image flag for the FlashHead image entry (ini `FLAG`).
    pub flag: u32,
}

/// Everything boot_merger reads from an ini, with the component files loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeSpec {
    pub chip: ChipCode,
    pub version_major: u32,
    pub version_minor: u32,
    pub release_time: ReleaseTime,
    /// ini `[SYSTEM] NEWIDB`: "LDR " container with UsbHead/FlashHead.
    pub new_idb: bool,
    /// ini `[FLAG] RC4_OFF`: sets the header's rc4 flag (ID block written plain).
    pub rc4_off: bool,
    /// ini `[FLAG] 471_RC4_OFF`. Must be true for NEWIDB (the only form seen in
    /// practice) and false otherwise.
    pub rc4_off_471: bool,
    /// Payload alignment in bytes (ini `[SYSTEM] ALIGN` × 512, default 2048).
    pub align: usize,
    pub code471: Vec<StagePart>,
    pub code471_delay_ms: u32,
    pub code472: Vec<StagePart>,
    pub code472_delay_ms: u32,
    pub loaders: Vec<LoaderPart>,
    pub boot_params: BootParams,
    pub merger_version: u32,
}

/// Why a container could not be built.
#[derive(Debug, Error)]
pub enum MergeError {
    #[error("no {0} payload given; a loader needs at least one")]
    MissingPart(EntryKind),
    #[error("payload {name:?} is empty")]
    EmptyPart { name: String },
    #[error("alignment {0} is not a non-zero multiple of 512")]
    BadAlignment(usize),
    #[error(
        "NEWIDB loaders with 471 RC4 enabled (471_RC4_OFF=false) are not supported: no \
         such file exists to check the layout against; set 471_RC4_OFF=true"
    )]
    NewIdbWithRc4On471,
    #[error(
        "471_RC4_OFF=true is only meaningful with NEWIDB=true; BOOT containers always store \
         471/472 RC4-scrambled"
    )]
    Rc4Off471WithoutNewIdb,
    #[error("too many images for an RKNS header ({count}); at most {max}")]
    TooManyImages { count: usize, max: usize },
    #[error(transparent)]
    Container(#[from] ContainerError),
}

/// The entry name boot_merger derives from a component path: the file name up to its
/// first '.', cut to 20 UTF-16 units by [`Entry::new`].
pub fn entry_name_from_path(path: &str) -> String {
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    file.split('.').next().unwrap_or(file).to_string()
}

fn padded(data: &[u8], align: usize) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(align_up(data.len().max(1), align), 0);
    out
}

fn padded_loader(data: &[u8], align: usize) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(align_up(align_up(data.len().max(1), RC4_BLOCK), align), 0);
    out
}

/// Builds the container described by `spec`.
pub fn merge(spec: &MergeSpec) -> Result<LoaderContainer, MergeError> {
    if spec.align == 0 || spec.align % 512 != 0 {
        return Err(MergeError::BadAlignment(spec.align));
    }
    if spec.new_idb && !spec.rc4_off_471 {
        return Err(MergeError::NewIdbWithRc4On471);
    }
    if !spec.new_idb && spec.rc4_off_471 {
        return Err(MergeError::Rc4Off471WithoutNewIdb);
    }
    if spec.code471.is_empty() {
        return Err(MergeError::MissingPart(EntryKind::Area471));
    }
    if spec.code472.is_empty() {
        return Err(MergeError::MissingPart(EntryKind::Area472));
    }
    if spec.loaders.is_empty() {
        return Err(MergeError::MissingPart(EntryKind::Loader));
    }
    let names = spec
        .code471
        .iter()
        .chain(&spec.code472)
        .map(|p| (&p.name, p.data.is_empty()))
        .chain(spec.loaders.iter().map(|p| (&p.name, p.data.is_empty())));
    for (name, empty) in names {
        if empty {
            return Err(MergeError::EmptyPart { name: name.clone() });
        }
    }
    let max = crate::rkns::MAX_IMAGES;
    for count in [spec.code471.len() + spec.code472.len(), spec.loaders.len()] {
        if spec.new_idb && count > max {
            return Err(MergeError::TooManyImages { count, max });
        }
    }

    let align = spec.align;
    let stage_471: Vec<Vec<u8>> = spec
        .code471
        .iter()
        .map(|p| padded(&p.data, align))
        .collect();
    let stage_472: Vec<Vec<u8>> = spec
        .code472
        .iter()
        .map(|p| padded(&p.data, align))
        .collect();
    let loaders: Vec<Vec<u8>> = spec
        .loaders
        .iter()
        .map(|p| padded_loader(&p.data, align))
        .collect();

    let mut entries = Vec::new();
    if spec.new_idb {
        let images: Vec<ImageSpec<'_>> = stage_471
            .iter()
            .chain(&stage_472)
            .map(|data| ImageSpec {
                data,
                address: None,
                flag: 0,
            })
            .collect();
        let usb_head = build_header(&images, align, &spec.boot_params);
        entries.push(Entry::new(
            EntryKind::Area471,
            "UsbHead",
            usb_head,
            spec.code471_delay_ms,
        ));
    }
    let tag = if spec.new_idb {
        ContainerTag::Ldr
    } else {
        ContainerTag::Boot
    };
    let stage_entry = |kind, part: &StagePart, mut data: Vec<u8>, delay| {
        if tag == ContainerTag::Boot {
            rc4_stream_in_place(&mut data);
        }
        Entry::new(kind, &part.name, data, delay)
    };
    for (part, data) in spec.code471.iter().zip(stage_471) {
        entries.push(stage_entry(
            EntryKind::Area471,
            part,
            data,
            spec.code471_delay_ms,
        ));
    }
    for (part, data) in spec.code472.iter().zip(stage_472) {
        entries.push(stage_entry(
            EntryKind::Area472,
            part,
            data,
            spec.code472_delay_ms,
        ));
    }
    if spec.new_idb {
        let images: Vec<ImageSpec<'_>> = spec
            .loaders
            .iter()
            .zip(&loaders)
            .map(|(part, data)| ImageSpec {
                data,
                address: part.load_address,
                flag: part.flag,
            })
            .collect();
        let mut flash_head = build_header(&images, align, &spec.boot_params);
        rc4_blocks_in_place(&mut flash_head);
        entries.push(Entry::new(EntryKind::Loader, "FlashHead", flash_head, 0));
    }
    for (part, mut data) in spec.loaders.iter().zip(loaders) {
        rc4_blocks_in_place(&mut data);
        entries.push(Entry::new(EntryKind::Loader, &part.name, data, 0));
    }

    let mut reserved = [0u8; 57];
    if spec.new_idb && spec.rc4_off_471 {
        reserved[0] = 1;
    }
    // RK3576 files (the only 4 KiB aligned ones) carry a second flag byte; its meaning
    // is not documented, so it is tied to what it was observed with.
    if spec.new_idb && align == 4096 {
        reserved[1] = 1;
    }
    let header = ContainerHeader {
        tag,
        version: (spec.version_major << 8) | (spec.version_minor & 0xff),
        merger_version: spec.merger_version,
        release_time: spec.release_time,
        chip: spec.chip,
        sign_flag: 0,
        rc4_flag: u8::from(spec.rc4_off),
        reserved,
    };
    Ok(LoaderContainer::from_parts(header, entries))
}

/// A component file: its name (for the entry name) and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedBlob {
    /// File name or path; the entry name is derived from it like boot_merger does.
    pub file_name: String,
    pub data: Vec<u8>,
}

/// The usual components of a maskrom loader, as listed in rkbin's `<SOC>MINIALL.ini`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoaderParts {
    /// DDR init: sent to 471 and written as FlashData.
    pub ddr: NamedBlob,
    /// usbplug: sent to 472.
    pub usbplug: NamedBlob,
    /// SPL (or miniloader): written as FlashBoot.
    pub spl: NamedBlob,
    /// FlashBoost (RK3576), written first in the ID block.
    pub boost: Option<NamedBlob>,
}

/// Describes a loader for `soc` from parts, with the settings rkbin uses for that SoC
/// family: "LDR " with RC4 off for new-IDB SoCs, "BOOT" with RC4 on otherwise, 1 ms
/// after 471 stages, the SoC's payload alignment.
pub fn spec_from_parts(
    soc: &crate::soc::Soc,
    parts: LoaderParts,
    version: (u32, u32),
    release_time: ReleaseTime,
) -> MergeSpec {
    let new_idb = soc.container == ContainerTag::Ldr;
    let chip = soc
        .chip_code
        .or_else(|| ChipCode::from_ini_name(soc.name))
        .unwrap_or(ChipCode::from_file_bytes(*b"0000"));
    let stage = |blob: &NamedBlob| StagePart {
        name: entry_name_from_path(&blob.file_name),
        data: blob.data.clone(),
    };
    let loader = |name: &str, blob: NamedBlob| LoaderPart {
        name: name.into(),
        data: blob.data,
        load_address: None,
        flag: 0,
    };
    let code471 = vec![stage(&parts.ddr)];
    let code472 = vec![stage(&parts.usbplug)];
    let mut loaders = Vec::new();
    if let Some(boost) = parts.boost {
        loaders.push(loader("FlashBoost", boost));
    }
    loaders.push(loader("FlashData", parts.ddr));
    loaders.push(loader("FlashBoot", parts.spl));
    MergeSpec {
        chip,
        version_major: version.0,
        version_minor: version.1,
        release_time,
        new_idb,
        rc4_off: new_idb,
        rc4_off_471: new_idb,
        align: soc.entry_align as usize,
        code471,
        code471_delay_ms: 1,
        code472,
        code472_delay_ms: 0,
        loaders,
        boot_params: BootParams::default(),
        merger_version: MERGER_VERSION,
    }
}

/// Why a container cannot be described as a boot_merger input.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RebuildError {
    #[error("{0}; boot_merger cannot produce this layout, so it cannot be rebuilt")]
    Layout(String),
    #[error(
        "the {0} entries have different delays; boot_merger gives all entries of an area one delay"
    )]
    MixedDelays(EntryKind),
    #[error(
        "the loader is signed; a rebuilt copy would carry a stale signature, so rebuild from \
         the unsigned components and sign again"
    )]
    Signed,
    #[error("the loader's {name} is not a valid RKNS header: {source}")]
    BadHead {
        name: &'static str,
        source: crate::rkns::RknsError,
    },
}

/// Describes an existing container as boot_merger input (decoded payloads, delays,
/// flags, FlashHead load addresses, boot parameters), so it can be rebuilt with a
/// component swapped or a new release time. Merging the result unchanged gives the
/// original bytes for files boot_merger made.
pub fn spec_from_container(c: &LoaderContainer) -> Result<MergeSpec, RebuildError> {
    let tag = c.tag();
    let new_idb = tag == ContainerTag::Ldr;
    let h = c.header();
    if h.is_signed() {
        return Err(RebuildError::Signed);
    }
    let delay = |kind: EntryKind, skip: &str| -> Result<u32, RebuildError> {
        let mut delays = c
            .entries(kind)
            .filter(|e| e.name != skip)
            .map(|e| e.delay_ms);
        let first = delays.next().unwrap_or(0);
        if delays.all(|d| d == first) {
            Ok(first)
        } else {
            Err(RebuildError::MixedDelays(kind))
        }
    };
    let mut align = 2048;
    let mut boot_params = BootParams::default();
    let mut flash_images = Vec::new();
    if new_idb {
        let usb_head = c.entries(EntryKind::Area471).next();
        let Some(usb_head) = usb_head.filter(|e| e.name == "UsbHead") else {
            return Err(RebuildError::Layout(
                "the first 471 entry is not UsbHead".into(),
            ));
        };
        if c.entries(EntryKind::Loader).next().map(|e| e.name.as_str()) != Some("FlashHead") {
            return Err(RebuildError::Layout(
                "the first loader entry is not FlashHead".into(),
            ));
        }
        align = usb_head.data.len();
        for (n, word) in boot_params.boot0.iter_mut().enumerate() {
            *word = crate::bytes::u32_at(&usb_head.data, 48 + 4 * n).unwrap_or(0);
        }
        for (n, word) in boot_params.boot1.iter_mut().enumerate() {
            *word = crate::bytes::u32_at(&usb_head.data, 88 + 4 * n).unwrap_or(0);
        }
        let flash_head = c
            .loader_entry("FlashHead")
            .map(|e| e.decoded(tag))
            .unwrap_or_default();
        flash_images = crate::rkns::RknsHeader::parse(&flash_head)
            .map_err(|source| RebuildError::BadHead {
                name: "FlashHead",
                source,
            })?
            .images;
    }
    let stages = |kind: EntryKind| -> Vec<StagePart> {
        c.entries(kind)
            .filter(|e| e.name != "UsbHead")
            .map(|e| StagePart {
                name: e.name.clone(),
                data: e.decoded(tag),
            })
            .collect()
    };
    let loaders = c
        .entries(EntryKind::Loader)
        .filter(|e| !(new_idb && e.name == "FlashHead"))
        .enumerate()
        .map(|(n, e)| {
            let image = flash_images.get(n);
            LoaderPart {
                name: e.name.clone(),
                data: e.decoded(tag),
                load_address: image.map(|i| i.address).filter(|&a| a != u32::MAX),
                flag: image.map_or(0, |i| i.flag),
            }
        })
        .collect();
    Ok(MergeSpec {
        chip: h.chip,
        version_major: h.version_major(),
        version_minor: h.version_minor(),
        release_time: h.release_time,
        new_idb,
        rc4_off: h.rc4_disabled(),
        rc4_off_471: new_idb,
        align,
        code471: stages(EntryKind::Area471),
        code471_delay_ms: delay(EntryKind::Area471, "")?,
        code472: stages(EntryKind::Area472),
        code472_delay_ms: delay(EntryKind::Area472, "")?,
        loaders,
        boot_params,
        merger_version: h.merger_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stop_at_the_first_dot() {
        assert_eq!(
            entry_name_from_path("bin/rk35/rk3588_usbplug_v1.11.bin"),
            "rk3588_usbplug_v1"
        );
        let e = Entry::new(
            EntryKind::Area471,
            &entry_name_from_path("bin/rk35/rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v1.16.bin"),
            vec![],
            1,
        );
        assert_eq!(e.name, "rk3588_ddr_lp4_2112M");
    }
}
