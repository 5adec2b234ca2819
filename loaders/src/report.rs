//! Serialisable reports behind `loader info` and `loader verify`, so the CLI prints
//! them as text or passes them to `serde_json` for `--json`.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bytes::{hex, slice_at};
use crate::chip::ChipCode;
use crate::container::{
    ContainerTag, Entry, EntryKind, LoaderContainer, PayloadEncoding, classify_raw,
};
use crate::release_time::ReleaseTime;
use crate::rkns::{ImageStatus, RknsHeader};
use crate::standin::is_standin;
use crate::upgrade::build_id_block;

/// Everything `info` shows about a container.
#[derive(Clone, Debug, Serialize)]
pub struct ContainerInfo {
    pub tag: ContainerTag,
    /// The four magic bytes as text ("BOOT", "LDR ").
    pub magic: String,
    /// "major.minor" as boot_merger's ini gives it, e.g. "1.11".
    pub version: String,
    /// The raw header field, e.g. "0x10b".
    pub version_raw: String,
    pub merger_version: String,
    pub release_time: ReleaseTime,
    pub chip: ChipCode,
    /// SoC name from the table, when the chip code is known.
    pub soc: Option<&'static str>,
    pub usb_pid: Option<u16>,
    pub signed: bool,
    pub sign_flag: u8,
    pub rc4_flag: u8,
    /// True when the header says the ID block is written without RC4.
    pub rc4_disabled: bool,
    pub standin: bool,
    pub entries: Vec<EntryInfo>,
}

/// One entry in [`ContainerInfo`].
#[derive(Clone, Debug, Serialize)]
pub struct EntryInfo {
    pub kind: EntryKind,
    pub name: String,
    /// Offset in the file it was read from (absent for built containers).
    pub offset: Option<u32>,
    pub size: usize,
    pub delay_ms: u32,
    /// SHA-256 of the payload as stored.
    pub sha256: String,
    pub encoding: PayloadEncoding,
    /// SHA-256 of the payload with RC4 removed (equals `sha256` for raw entries).
    pub decoded_sha256: String,
}

fn entry_info(tag: ContainerTag, e: &Entry) -> EntryInfo {
    EntryInfo {
        kind: e.kind,
        name: e.name.clone(),
        offset: e.file_offset,
        size: e.data.len(),
        delay_ms: e.delay_ms,
        sha256: hex(&Sha256::digest(&e.data)),
        encoding: e.encoding(tag),
        decoded_sha256: hex(&Sha256::digest(e.decoded(tag))),
    }
}

/// Describes a parsed container.
pub fn info(c: &LoaderContainer) -> ContainerInfo {
    let h = c.header();
    ContainerInfo {
        tag: h.tag,
        magic: String::from_utf8_lossy(&h.tag.magic()).into_owned(),
        version: format!("{}.{}", h.version_major(), h.version_minor()),
        version_raw: format!("{:#x}", h.version),
        merger_version: format!("{:#x}", h.merger_version),
        release_time: h.release_time,
        chip: h.chip,
        soc: c.soc().map(|s| s.name),
        usb_pid: c.soc().map(|s| s.usb_pid),
        signed: h.is_signed(),
        sign_flag: h.sign_flag,
        rc4_flag: h.rc4_flag,
        rc4_disabled: h.rc4_disabled(),
        standin: is_standin(c),
        entries: c
            .all_entries()
            .iter()
            .map(|e| entry_info(h.tag, e))
            .collect(),
    }
}

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    /// Usable, but worth knowing.
    Warn,
    Fail,
}

/// One named check and what it found.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: CheckStatus,
    pub detail: String,
}

/// Everything `verify` checked. `ok` is false when any check failed.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub checks: Vec<Check>,
    /// Present when the file parsed as a container.
    pub info: Option<ContainerInfo>,
}

struct Checks(Vec<Check>);

impl Checks {
    fn push(&mut self, name: &'static str, status: CheckStatus, detail: impl Into<String>) {
        self.0.push(Check {
            name,
            status,
            detail: detail.into(),
        });
    }
}

/// Verifies a loader file as far as possible. Never fails: a file that does not
/// parse is a report with a failed "container" check naming the reason.
pub fn verify(bytes: &[u8]) -> VerifyReport {
    let mut checks = Checks(Vec::new());
    let c = match LoaderContainer::parse(bytes) {
        Ok(c) => c,
        Err(e) => {
            checks.push("container", CheckStatus::Fail, e.to_string());
            return VerifyReport {
                ok: false,
                checks: checks.0,
                info: None,
            };
        }
    };
    checks.push(
        "container",
        CheckStatus::Pass,
        format!(
            "{} container, {} entries, header/table/bounds valid, CRC-32 {:#010x} matches",
            c.tag(),
            c.all_entries().len(),
            crate::bytes::u32_at(bytes, bytes.len() - 4).unwrap_or(0)
        ),
    );
    if !c.has_canonical_layout() {
        checks.push(
            "layout",
            CheckStatus::Warn,
            "payloads are not laid out back to back as boot_merger writes them; the file is \
             valid, but writing it back gives a normalised copy",
        );
    }
    check_soc(&c, &mut checks);
    check_entries_present(&c, &mut checks);
    check_alignment(&c, &mut checks);
    match c.tag() {
        ContainerTag::Ldr => {
            check_usb_head(&c, &mut checks);
            check_flash_head(&c, &mut checks);
        }
        ContainerTag::Boot => check_boot_stages_decode(&c, &mut checks),
    }
    match build_id_block(&c) {
        Ok(idb) => checks.push(
            "id_block",
            CheckStatus::Pass,
            format!(
                "an ID block of {} bytes can be written at LBA {} ({})",
                idb.bytes.len(),
                idb.lba,
                idb.parts
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Err(e) => checks.push(
            "id_block",
            CheckStatus::Warn,
            format!("cannot upgrade the loader on flash: {e}"),
        ),
    }
    if is_standin(&c) {
        checks.push(
            "standin",
            CheckStatus::Warn,
            "this is the rockusb stand-in loader: it only works with the virtual board",
        );
    }
    let ok = checks.0.iter().all(|c| c.status != CheckStatus::Fail);
    VerifyReport {
        ok,
        checks: checks.0,
        info: Some(info(&c)),
    }
}

fn check_soc(c: &LoaderContainer, checks: &mut Checks) {
    match c.soc() {
        Some(soc) if soc.container == c.tag() => checks.push(
            "soc",
            CheckStatus::Pass,
            format!(
                "chip {} is {} (USB PID {:#06x})",
                c.chip_code(),
                soc.name,
                soc.usb_pid
            ),
        ),
        Some(soc) => checks.push(
            "soc",
            CheckStatus::Warn,
            format!(
                "chip {} is {}, whose loaders are normally {} containers, but this one is {}",
                c.chip_code(),
                soc.name,
                soc.container,
                c.tag()
            ),
        ),
        None => checks.push(
            "soc",
            CheckStatus::Warn,
            format!(
                "chip {} is not in the SoC table; the loader cannot be matched to a board",
                c.chip_code()
            ),
        ),
    }
}

fn check_entries_present(c: &LoaderContainer, checks: &mut Checks) {
    let missing: Vec<&str> = EntryKind::ALL
        .into_iter()
        .filter(|&k| c.entries(k).next().is_none())
        .map(EntryKind::label)
        .collect();
    if missing.is_empty() {
        checks.push(
            "entries",
            CheckStatus::Pass,
            "471, 472 and loader entries present",
        );
    } else {
        let status = if missing.contains(&"471") || missing.contains(&"472") {
            CheckStatus::Fail
        } else {
            CheckStatus::Warn
        };
        checks.push(
            "entries",
            status,
            format!(
                "no {} entries; a maskrom boot needs 471 and 472 stages",
                missing.join("/")
            ),
        );
    }
}

fn check_alignment(c: &LoaderContainer, checks: &mut Checks) {
    let unaligned: Vec<String> = c
        .all_entries()
        .iter()
        .filter(|e| e.data.len() % 2048 != 0)
        .map(|e| format!("{} ({} bytes)", e.name, e.data.len()))
        .collect();
    if unaligned.is_empty() {
        checks.push(
            "alignment",
            CheckStatus::Pass,
            "every payload is a multiple of 2048 bytes",
        );
    } else {
        checks.push(
            "alignment",
            CheckStatus::Warn,
            format!(
                "payloads not padded to 2048 bytes as boot_merger does: {}",
                unaligned.join(", ")
            ),
        );
    }
}

/// Compares an RKNS header's images with `payloads` in order.
fn rkns_matches(
    header: &RknsHeader,
    block: &[u8],
    payloads: &[(&str, Vec<u8>)],
) -> Result<(), String> {
    if !header.header_hash_ok {
        return Err("its own header hash does not match".into());
    }
    if header.images.len() != payloads.len() {
        return Err(format!(
            "it describes {} images but there are {} payloads",
            header.images.len(),
            payloads.len()
        ));
    }
    let mut laid_out = block.to_vec();
    for (image, (_, data)) in header.images.iter().zip(payloads) {
        let (offset, size) = (image.offset_bytes(), image.size_bytes());
        if laid_out.len() < offset + size {
            laid_out.resize(offset + size, 0);
        }
        let Some(src) = slice_at(data, 0, size) else {
            return Err(format!(
                "image #{} is {} bytes but its payload is {}",
                image.index,
                size,
                data.len()
            ));
        };
        laid_out[offset..offset + size].copy_from_slice(src);
    }
    for (check, (name, _)) in header.check_images(&laid_out).iter().zip(payloads) {
        if !matches!(check.status, ImageStatus::Ok | ImageStatus::NotHashed) {
            return Err(format!(
                "image #{} ({name}) hash does not match: {:?}",
                check.index, check.status
            ));
        }
    }
    Ok(())
}

fn check_usb_head(c: &LoaderContainer, checks: &mut Checks) {
    let tag = c.tag();
    let Some(head) = c.entries(EntryKind::Area471).find(|e| e.name == "UsbHead") else {
        checks.push(
            "usb_head",
            CheckStatus::Warn,
            "no UsbHead entry, unusual for an LDR loader",
        );
        return;
    };
    let payloads: Vec<(&str, Vec<u8>)> = c
        .entries(EntryKind::Area471)
        .chain(c.entries(EntryKind::Area472))
        .filter(|e| e.name != "UsbHead")
        .map(|e| (e.name.as_str(), e.decoded(tag)))
        .collect();
    let result = RknsHeader::parse(&head.data)
        .map_err(|e| e.to_string())
        .and_then(|h| rkns_matches(&h, &head.data, &payloads));
    match result {
        Ok(()) => checks.push(
            "usb_head",
            CheckStatus::Pass,
            format!(
                "UsbHead RKNS hashes match the {} 471/472 payloads",
                payloads.len()
            ),
        ),
        Err(why) => checks.push(
            "usb_head",
            CheckStatus::Fail,
            format!(
                "UsbHead does not describe the 471/472 payloads: {why}; the BootROM may reject it"
            ),
        ),
    }
}

fn check_flash_head(c: &LoaderContainer, checks: &mut Checks) {
    let tag = c.tag();
    let Some(head) = c.loader_entry("FlashHead") else {
        checks.push(
            "flash_head",
            CheckStatus::Warn,
            "no FlashHead entry; the loader cannot be written to flash",
        );
        return;
    };
    let decoded = head.decoded(tag);
    let result = RknsHeader::parse(&decoded)
        .map_err(|e| e.to_string())
        .and_then(|h| {
            // FlashHead lists images in ID-block order, which need not be table order.
            let mut payloads: Vec<(&str, Vec<u8>)> = Vec::new();
            for image in &h.images {
                let found = c
                    .entries(EntryKind::Loader)
                    .filter(|e| e.name != "FlashHead")
                    .map(|e| (e.name.as_str(), e.decoded(tag)))
                    .find(|(_, d)| {
                        slice_at(d, 0, image.size_bytes())
                            .is_some_and(|d| Sha256::digest(d)[..] == image.hash[..32])
                    });
                match found {
                    Some(p) => payloads.push(p),
                    None => return Err(format!("image #{} matches no loader entry", image.index)),
                }
            }
            rkns_matches(&h, &decoded, &payloads)
        });
    match result {
        Ok(()) => checks.push(
            "flash_head",
            CheckStatus::Pass,
            "FlashHead RKNS hashes match the loader entries",
        ),
        Err(why) => checks.push(
            "flash_head",
            CheckStatus::Fail,
            format!("FlashHead is inconsistent: {why}"),
        ),
    }
}

fn check_boot_stages_decode(c: &LoaderContainer, checks: &mut Checks) {
    let tag = c.tag();
    let odd: Vec<String> = c
        .entries(EntryKind::Area471)
        .chain(c.entries(EntryKind::Area472))
        .filter(|e| classify_raw(&e.decoded(tag)).is_none())
        .map(|e| e.name.clone())
        .collect();
    if odd.is_empty() {
        checks.push(
            "stage_encoding",
            CheckStatus::Pass,
            "471/472 payloads decode (one RC4 stream) to a tagged blob or branch instruction",
        );
    } else {
        checks.push(
            "stage_encoding",
            CheckStatus::Warn,
            format!(
                "471/472 payloads that do not decode to a recognisable stage: {}; the file may \
                 be scrambled differently than BOOT loaders normally are",
                odd.join(", ")
            ),
        );
    }
}
