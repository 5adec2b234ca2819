use super::pe::{PeError, SectionTable};
use super::*;

/// A small PE image shaped like a UKI: MS-DOS header, COFF header, an optional header of
/// `optional_len` bytes, and one section per (name, data), each at a 512-byte aligned
/// offset with its raw size padded as linkers do.
pub(crate) fn pe_image(sections: &[(&str, &[u8])]) -> Vec<u8> {
    let pe_offset = 0x80usize;
    let optional_len = 0xF0usize;
    let table = pe_offset + 24 + optional_len;
    let mut image = vec![0u8; table + 40 * sections.len()];
    image[..2].copy_from_slice(b"MZ");
    image[0x3C..0x40].copy_from_slice(&(pe_offset as u32).to_le_bytes());
    image[pe_offset..pe_offset + 4].copy_from_slice(b"PE\0\0");
    image[pe_offset + 4..pe_offset + 6].copy_from_slice(&0xAA64u16.to_le_bytes());
    image[pe_offset + 6..pe_offset + 8].copy_from_slice(&(sections.len() as u16).to_le_bytes());
    image[pe_offset + 20..pe_offset + 22].copy_from_slice(&(optional_len as u16).to_le_bytes());
    for (i, (name, data)) in sections.iter().enumerate() {
        let offset = image.len().div_ceil(512) * 512;
        let raw = data.len().div_ceil(512) * 512;
        let h = table + 40 * i;
        image[h..h + name.len()].copy_from_slice(name.as_bytes());
        image[h + 8..h + 12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        image[h + 12..h + 16].copy_from_slice(&(0x1000 * (i as u32 + 1)).to_le_bytes());
        image[h + 16..h + 20].copy_from_slice(&(raw as u32).to_le_bytes());
        image[h + 20..h + 24].copy_from_slice(&(offset as u32).to_le_bytes());
        image.resize(offset, 0);
        image.extend_from_slice(data);
        image.resize(offset + raw, 0);
    }
    image
}

const CMDLINE: &str =
    "talos.platform=metal console=ttyS2,1500000n8 siderolink.api=https://omni.example/?jointoken=x";
const OSREL: &str =
    "NAME=\"Talos\"\nID=talos\nVERSION_ID=v1.11.5\nPRETTY_NAME=\"Talos (v1.11.5)\"\n";

fn sample() -> Vec<u8> {
    pe_image(&[
        (".osrel", OSREL.as_bytes()),
        (".cmdline", CMDLINE.as_bytes()),
        (".linux", &[0x11; 3000]),
    ])
}

#[test]
fn reads_cmdline_and_os_release_from_a_uki_shaped_image() {
    let image = sample();
    let table = SectionTable::parse(&image).unwrap();
    assert_eq!(table.machine, 0xAA64);
    let names: Vec<&str> = table.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, [".osrel", ".cmdline", ".linux"]);
    let info = UkiInfo::read(&mut image.as_slice(), image.len() as u64).unwrap();
    assert_eq!(info.cmdline.as_deref(), Some(CMDLINE));
    assert_eq!(info.talos_version(), Some("v1.11.5"));
    assert!(info.assessment().unwrap().joins_omni());
}

#[test]
fn a_pe_without_uki_sections_has_neither_cmdline_nor_os_release() {
    let image = pe_image(&[(".text", &[0xC0, 0x03, 0x5F, 0xD6])]);
    let info = UkiInfo::read(&mut image.as_slice(), image.len() as u64).unwrap();
    assert_eq!(info.cmdline, None);
    assert_eq!(info.os_release, None);
    assert_eq!(info.assessment(), None);
}

#[test]
fn damaged_headers_are_errors_that_say_what_is_wrong() {
    assert!(matches!(
        SectionTable::parse(b"MZ"),
        Err(PeError::Truncated(_))
    ));
    assert!(matches!(
        SectionTable::parse(&[0u8; 512]),
        Err(PeError::NotPe(_))
    ));
    let mut image = sample();
    image[0x86..0x88].copy_from_slice(&500u16.to_le_bytes());
    assert!(matches!(
        SectionTable::parse(&image),
        Err(PeError::TooManySections(500))
    ));
    // A section pointing past the end of the file.
    let mut image = sample();
    let cmdline_header = 0x80 + 24 + 0xF0 + 40;
    image[cmdline_header + 20..cmdline_header + 24].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = UkiInfo::read(&mut image.as_slice(), image.len() as u64).unwrap_err();
    assert!(err.to_string().contains("section .cmdline"), "{err}");
}

/// xorshift, so the mutations are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn thousands_of_mutated_and_truncated_images_never_panic() {
    let original = sample();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut parsed = 0;
    for round in 0..5000 {
        let mut image = original.clone();
        match round % 4 {
            // Cut anywhere.
            0 => image.truncate(rng.below(original.len())),
            // Flip bytes in the headers, where offsets and counts live.
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(0x80 + 24 + 0xF0 + 120);
                    image[at] = rng.next() as u8;
                }
            }
            // Extreme values in a random 32-bit field.
            2 => {
                let at = rng.below(image.len() - 4);
                let value = [0, 1, u32::MAX, 0x8000_0000, 0xFFFF][rng.below(5)];
                image[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
            // Random bytes anywhere.
            _ => {
                for _ in 0..1 + rng.below(64) {
                    let at = rng.below(image.len());
                    image[at] = rng.next() as u8;
                }
            }
        }
        let len = image.len() as u64;
        if let Ok(info) = UkiInfo::read(&mut image.as_slice(), len) {
            parsed += 1;
            if let Some(a) = info.assessment() {
                let _ = a.notes();
            }
        }
        // A length that disagrees with the bytes must not panic either.
        let _ = UkiInfo::read(&mut image.as_slice(), len.saturating_mul(2));
    }
    assert!(
        parsed > 100,
        "mutations should leave many images readable ({parsed})"
    );
}
