//! Reading a container from bytes, checking every field against the file.

use super::{
    CRC_LEN, ContainerError, ContainerHeader, ContainerTag, ENTRY_LEN, Entry, EntryKind,
    HEADER_LEN, LoaderContainer, NAME_UNITS, RawFileKind, decode_name,
};
use crate::bytes::{array_at, u8_at, u16_at, u32_at};
use crate::chip::ChipCode;
use crate::crc32::rockchip_crc32;
use crate::rc4::rc4_stream;
use crate::release_time::ReleaseTime;

/// Where each table is described in the header: (count, offset, record size).
const TABLE_FIELDS: [(EntryKind, usize); 3] = [
    (EntryKind::Area471, 25),
    (EntryKind::Area472, 31),
    (EntryKind::Loader, 37),
];

impl LoaderContainer {
    /// Parses and verifies a container: magic, header size, entry tables, entry
    /// bounds and the CRC-32 trailer. The error names the first check that failed.
    pub fn parse(data: &[u8]) -> Result<Self, ContainerError> {
        let file_len = data.len() as u64;
        let magic: [u8; 4] = array_at(data, 0).ok_or(ContainerError::Truncated {
            needed: (HEADER_LEN + CRC_LEN) as u64,
            actual: file_len,
        })?;
        let tag = match ContainerTag::from_magic(magic) {
            Some(tag) => tag,
            None => return Err(not_a_container(data, magic)),
        };
        let too_short = ContainerError::Truncated {
            needed: (HEADER_LEN + CRC_LEN) as u64,
            actual: file_len,
        };
        if data.len() < HEADER_LEN + CRC_LEN {
            return Err(too_short);
        }
        let header_size = u16_at(data, 4).unwrap_or(0);
        if usize::from(header_size) != HEADER_LEN {
            return Err(ContainerError::BadHeaderSize { found: header_size });
        }
        let header = parse_header(data, tag).ok_or(too_short)?;

        // Tables first, so every later message can name the entry concerned.
        let mut records = Vec::new();
        for (kind, field) in TABLE_FIELDS {
            let count = u8_at(data, field).unwrap_or(0);
            let offset = u32_at(data, field + 1).unwrap_or(0);
            let record_size = u8_at(data, field + 5).unwrap_or(0);
            if count == 0 {
                continue;
            }
            if usize::from(record_size) != ENTRY_LEN {
                return Err(ContainerError::BadEntryRecordSize {
                    kind,
                    found: record_size,
                });
            }
            let table_end = u64::from(offset) + u64::from(count) * ENTRY_LEN as u64;
            if (offset as usize) < HEADER_LEN || table_end > file_len - CRC_LEN as u64 {
                return Err(ContainerError::EntryTableOutOfBounds {
                    kind,
                    offset,
                    count,
                    file_len,
                });
            }
            for index in 0..usize::from(count) {
                let at = offset as usize + index * ENTRY_LEN;
                records.push(parse_record(data, kind, index, at)?);
            }
        }

        let table_end = TABLE_FIELDS
            .iter()
            .map(|&(_, field)| {
                let count = u64::from(u8_at(data, field).unwrap_or(0));
                let offset = u64::from(u32_at(data, field + 1).unwrap_or(0));
                if count == 0 {
                    0
                } else {
                    offset + count * ENTRY_LEN as u64
                }
            })
            .max()
            .unwrap_or(0)
            .max(HEADER_LEN as u64);

        // A file cut short shows up as payloads running past the end; report that as
        // truncation rather than as one bad entry.
        let payload_end = records
            .iter()
            .map(|r| u64::from(r.offset) + u64::from(r.size))
            .max()
            .unwrap_or(table_end);
        if payload_end + CRC_LEN as u64 > file_len {
            return Err(ContainerError::Truncated {
                needed: payload_end + CRC_LEN as u64,
                actual: file_len,
            });
        }
        let area_end = file_len - CRC_LEN as u64;
        for r in &records {
            let start = u64::from(r.offset);
            let end = start + u64::from(r.size);
            if start < table_end || end > area_end {
                return Err(ContainerError::EntryOutOfBounds {
                    kind: r.kind,
                    name: decode_name(&r.raw_name),
                    offset: start,
                    end,
                    area_start: table_end,
                    area_end,
                });
            }
        }

        let body = &data[..data.len() - CRC_LEN];
        let expected = u32_at(data, data.len() - CRC_LEN).unwrap_or(0);
        let actual = rockchip_crc32(body);
        if expected != actual {
            return Err(ContainerError::CrcMismatch { expected, actual });
        }

        let canonical_layout = is_canonical(data, &records);
        let entries = records
            .into_iter()
            .map(|r| Entry {
                kind: r.kind,
                name: decode_name(&r.raw_name),
                raw_name: r.raw_name,
                data: body[r.offset as usize..r.offset as usize + r.size as usize].to_vec(),
                delay_ms: r.delay_ms,
                file_offset: Some(r.offset),
            })
            .collect();
        Ok(LoaderContainer {
            header,
            entries,
            canonical_layout,
        })
    }
}

/// An entry record before its payload is copied out.
struct Record {
    kind: EntryKind,
    raw_name: [u16; NAME_UNITS],
    offset: u32,
    size: u32,
    delay_ms: u32,
}

fn parse_header(data: &[u8], tag: ContainerTag) -> Option<ContainerHeader> {
    Some(ContainerHeader {
        tag,
        version: u32_at(data, 6)?,
        merger_version: u32_at(data, 10)?,
        release_time: ReleaseTime::from_bytes(array_at(data, 14)?),
        chip: ChipCode::from_file_bytes(array_at(data, 21)?),
        sign_flag: u8_at(data, 43)?,
        rc4_flag: u8_at(data, 44)?,
        reserved: array_at(data, 45)?,
    })
}

fn parse_record(
    data: &[u8],
    kind: EntryKind,
    index: usize,
    at: usize,
) -> Result<Record, ContainerError> {
    let truncated = || ContainerError::Truncated {
        needed: (at + ENTRY_LEN) as u64,
        actual: data.len() as u64,
    };
    let size_byte = u8_at(data, at).ok_or_else(truncated)?;
    let mut raw_name = [0u16; NAME_UNITS];
    for (n, unit) in raw_name.iter_mut().enumerate() {
        *unit = u16_at(data, at + 5 + 2 * n).ok_or_else(truncated)?;
    }
    if usize::from(size_byte) != ENTRY_LEN {
        return Err(ContainerError::BadEntrySizeByte {
            kind,
            index,
            found: size_byte,
        });
    }
    let type_code = u32_at(data, at + 1).ok_or_else(truncated)?;
    if type_code != kind.type_code() {
        return Err(ContainerError::BadEntryType {
            kind,
            index,
            name: decode_name(&raw_name),
            expected: kind.type_code(),
            found: type_code,
        });
    }
    Ok(Record {
        kind,
        raw_name,
        offset: u32_at(data, at + 45).ok_or_else(truncated)?,
        size: u32_at(data, at + 49).ok_or_else(truncated)?,
        delay_ms: u32_at(data, at + 53).ok_or_else(truncated)?,
    })
}

/// True when [`LoaderContainer::to_bytes`] would reproduce `data`: the header's table
/// fields are what the writer puts there (tables right after the header in
/// 471/472/loader order, 57-byte records, empty tables pointing where they would
/// start) and the payloads follow back to back in table order, ending at the CRC.
fn is_canonical(data: &[u8], records: &[Record]) -> bool {
    let mut table_offset = HEADER_LEN;
    for (kind, field) in TABLE_FIELDS {
        let count = records.iter().filter(|r| r.kind == kind).count();
        let mut expected = [0u8; 6];
        expected[0] = count as u8;
        expected[1..5].copy_from_slice(&(table_offset as u32).to_le_bytes());
        expected[5] = ENTRY_LEN as u8;
        if data.get(field..field + 6) != Some(&expected[..]) {
            return false;
        }
        table_offset += count * ENTRY_LEN;
    }
    let mut expected = table_offset as u64;
    for r in records {
        if u64::from(r.offset) != expected {
            return false;
        }
        expected += u64::from(r.size);
    }
    expected + CRC_LEN as u64 == data.len() as u64
}

/// Names the kind of non-container file, so the user learns what to do instead.
fn not_a_container(data: &[u8], magic: [u8; 4]) -> ContainerError {
    if let Some(kind) = classify_raw(data) {
        return ContainerError::RawFile { kind };
    }
    ContainerError::BadMagic {
        found: magic,
        ascii: String::from_utf8_lossy(&magic).into_owned(),
    }
}

/// Recognises the raw files most often passed where a container is expected.
pub fn classify_raw(data: &[u8]) -> Option<RawFileKind> {
    let magic: [u8; 4] = array_at(data, 0)?;
    if &magic == b"RKNS" {
        return Some(RawFileKind::RknsIdBlock);
    }
    if rc4_stream(&magic) == [0x55, 0xaa, 0xf0, 0x0f] {
        return Some(RawFileKind::V1IdBlock);
    }
    let word = u32::from_le_bytes(magic);
    // AArch64 `b imm26`: top six bits 000101. ARM32 `b` with condition AL: 0xEA.
    if word >> 26 == 0b000101 || magic[3] == 0xea {
        return Some(RawFileKind::RawSpl);
    }
    if magic[0] == b'R' && magic[1] == b'K' && magic[2..].iter().all(u8::is_ascii_alphanumeric) {
        return Some(RawFileKind::TaggedBlob);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crc32::rockchip_crc32;
    use crate::soc::by_name;
    use crate::standin;

    fn standin() -> Vec<u8> {
        standin::build(by_name("rk3588").unwrap())
    }

    /// Applies `edit` and recomputes the CRC, so only the edited check can fail.
    fn edited(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut bytes = standin();
        edit(&mut bytes);
        let n = bytes.len();
        let crc = rockchip_crc32(&bytes[..n - 4]);
        bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    #[test]
    fn each_structural_check_is_named() {
        assert_eq!(
            LoaderContainer::parse(&edited(|b| b[4] = 100)),
            Err(ContainerError::BadHeaderSize { found: 100 })
        );
        assert_eq!(
            LoaderContainer::parse(&edited(|b| b[36] = 56)),
            Err(ContainerError::BadEntryRecordSize {
                kind: EntryKind::Area472,
                found: 56
            })
        );
        assert!(matches!(
            LoaderContainer::parse(&edited(
                |b| b[26..30].copy_from_slice(&u32::MAX.to_le_bytes())
            )),
            Err(ContainerError::EntryTableOutOfBounds {
                kind: EntryKind::Area471,
                ..
            })
        ));
        // First 471 record's type changed to "loader".
        assert!(matches!(
            LoaderContainer::parse(&edited(|b| b[103] = 4)),
            Err(ContainerError::BadEntryType {
                kind: EntryKind::Area471,
                index: 0,
                found: 4,
                ..
            })
        ));
        assert!(matches!(
            LoaderContainer::parse(&edited(|b| b[102] = 58)),
            Err(ContainerError::BadEntrySizeByte {
                index: 0,
                found: 58,
                ..
            })
        ));
        assert!(matches!(
            LoaderContainer::parse(&standin()[..50]),
            Err(ContainerError::Truncated {
                needed: 106,
                actual: 50
            })
        ));
        assert!(matches!(
            LoaderContainer::parse(b"LD"),
            Err(ContainerError::Truncated { actual: 2, .. })
        ));
    }

    #[test]
    fn empty_table_pointing_elsewhere_is_not_canonical() {
        // No 472 entries: the writer points the empty 472 table where it would start.
        let full = LoaderContainer::parse(&standin()).unwrap();
        let without_472: Vec<_> = full
            .all_entries()
            .iter()
            .filter(|e| e.kind != EntryKind::Area472)
            .cloned()
            .collect();
        let c = LoaderContainer::from_parts(full.header().clone(), without_472);
        let bytes = c.to_bytes().unwrap();
        assert!(
            LoaderContainer::parse(&bytes)
                .unwrap()
                .has_canonical_layout()
        );

        // The same file with the empty table's offset field changed still parses, but
        // writing it normalises the field, so it must not claim to be canonical.
        let mut odd = bytes.clone();
        odd[32..36].copy_from_slice(&7u32.to_le_bytes());
        let n = odd.len();
        let crc = rockchip_crc32(&odd[..n - 4]);
        odd[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let parsed = LoaderContainer::parse(&odd).unwrap();
        assert!(!parsed.has_canonical_layout());
        assert_eq!(parsed.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn raw_files_are_classified() {
        assert_eq!(
            classify_raw(b"RKNS\0\0\0\0"),
            Some(RawFileKind::RknsIdBlock)
        );
        assert_eq!(
            classify_raw(&[0x01, 0x00, 0x00, 0x14]),
            Some(RawFileKind::RawSpl)
        );
        assert_eq!(
            classify_raw(&[0x10, 0x00, 0x00, 0xea]),
            Some(RawFileKind::RawSpl)
        );
        assert_eq!(classify_raw(b"RK33...."), Some(RawFileKind::TaggedBlob));
        assert_eq!(
            classify_raw(&rc4_stream(&[0x55, 0xaa, 0xf0, 0x0f])),
            Some(RawFileKind::V1IdBlock)
        );
        assert_eq!(classify_raw(b"\x7fELF"), None);
    }
}
