//! FAT12/16/32: a cluster is free when its FAT entry is 0.
//!
//! Geometry and the FAT type follow Microsoft's FAT specification ("FAT32 File System
//! Specification", 2000, §3 the BPB and §3.5 the type determination by cluster count):
//! the type is decided by the number of data clusters, never by the label in the boot
//! sector. Only data clusters can be free: the reserved sectors, every FAT copy and
//! FAT12/16's fixed root directory are always in use.
//!
//! A cluster counts as free only if its entry is 0 in **every** FAT copy: an image whose
//! copies disagree (FAT32 with mirroring turned off, or a damaged one) keeps the cluster.

use super::{FreeList, FreeSpace, FsError, FsKind, Part, damaged};

/// FAT entries read per step, so a large FAT32 never sits in memory whole.
const WINDOW_ENTRIES: u64 = 256 * 1024;

/// The BIOS parameter block fields that place things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    kind: FsKind,
    cluster_len: u64,
    /// First byte of the FAT region (after the reserved sectors).
    fat_start: u64,
    fat_len: u64,
    fats: u64,
    /// First byte of cluster 2.
    data_start: u64,
    clusters: u64,
    total_len: u64,
}

fn le16(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]) as u64)
}

fn le32(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64)
}

/// Recognises a FAT boot sector and says which FAT it is.
pub fn probe(head: &[u8]) -> Option<FsKind> {
    geometry(head).ok().map(|g| g.kind)
}

fn geometry(b: &[u8]) -> Result<Geometry, &'static str> {
    if b.len() < 512 {
        return Err("the boot sector is cut short");
    }
    // An x86 jump at the start is what every FAT formatter writes and what Windows and
    // Linux (`fat_read_bpb`) look for; it keeps random data from passing as a FAT.
    if !(b[0] == 0xEB && b[2] == 0x90 || b[0] == 0xE9) {
        return Err("no jump instruction at the start of the boot sector");
    }
    let bytes_per_sector = le16(b, 11);
    let sectors_per_cluster = b[13] as u64;
    let reserved = le16(b, 14);
    let fats = b[16] as u64;
    let root_entries = le16(b, 17);
    let total = match le16(b, 19) {
        0 => le32(b, 32),
        n => n,
    };
    let fat_sectors = match le16(b, 22) {
        0 => le32(b, 36),
        n => n,
    };
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) {
        return Err("bytes per sector is not 512, 1024, 2048 or 4096");
    }
    if !sectors_per_cluster.is_power_of_two() {
        return Err("sectors per cluster is not a power of two");
    }
    if reserved == 0 || fats == 0 || fat_sectors == 0 || total == 0 {
        return Err("a zero count in the BIOS parameter block");
    }
    let root_sectors = (root_entries * 32).div_ceil(bytes_per_sector);
    let meta_sectors = reserved + fats * fat_sectors + root_sectors;
    let data_sectors = total
        .checked_sub(meta_sectors)
        .ok_or("the FATs and root directory are larger than the file system")?;
    let clusters = data_sectors / sectors_per_cluster;
    let kind = match clusters {
        0 => return Err("no data clusters"),
        1..4085 => FsKind::Fat12,
        4085..65525 => FsKind::Fat16,
        _ => FsKind::Fat32,
    };
    if kind == FsKind::Fat32 && (root_entries != 0 || le16(b, 22) != 0) {
        return Err("a FAT32 volume with a FAT16 root directory or FAT size");
    }
    let entry_bits = entry_bits(kind);
    let fat_len = fat_sectors * bytes_per_sector;
    if (clusters + 2) * entry_bits > fat_len * 8 {
        return Err("the FAT is too small for the data clusters");
    }
    Ok(Geometry {
        kind,
        cluster_len: sectors_per_cluster * bytes_per_sector,
        fat_start: reserved * bytes_per_sector,
        fat_len,
        fats,
        data_start: meta_sectors * bytes_per_sector,
        clusters,
        total_len: total * bytes_per_sector,
    })
}

fn entry_bits(kind: FsKind) -> u64 {
    match kind {
        FsKind::Fat12 => 12,
        FsKind::Fat16 => 16,
        _ => 32,
    }
}

/// The free clusters of the FAT file system at the start of `part`.
pub fn free_space(part: &mut Part<'_>, kind: FsKind) -> Result<FreeSpace, FsError> {
    let boot = part.read_vec(kind, 0, 512)?;
    let g = geometry(&boot).map_err(|why| damaged(kind, why))?;
    if g.total_len > part.len() {
        return Err(FsError::Truncated {
            kind: g.kind,
            what: "the end of its partition",
            detail: format!(
                "the boot sector declares {} bytes, the partition holds {}",
                g.total_len,
                part.len()
            ),
        });
    }
    let mut free = FreeList::new(g.kind);
    let mut run: Option<(u64, u64)> = None; // (first cluster, count)
    let last = g.clusters + 2; // one past the last cluster number
    let mut first = 2u64;
    while first < last {
        let count = WINDOW_ENTRIES.min(last - first);
        let mask = free_mask(part, &g, first, count)?;
        for (i, is_free) in mask.into_iter().enumerate() {
            let cluster = first + i as u64;
            match (is_free, &mut run) {
                (true, Some((_, n))) => *n += 1,
                (true, None) => run = Some((cluster, 1)),
                (false, Some((start, n))) => {
                    push_run(&mut free, &g, *start, *n)?;
                    run = None;
                }
                (false, None) => {}
            }
        }
        first += count;
    }
    if let Some((start, n)) = run {
        push_run(&mut free, &g, start, n)?;
    }
    free.finish(g.total_len)
}

fn push_run(free: &mut FreeList, g: &Geometry, cluster: u64, count: u64) -> Result<(), FsError> {
    free.push(
        g.data_start + (cluster - 2) * g.cluster_len,
        count * g.cluster_len,
    )
}

/// For clusters `first .. first + count`: true where the entry is 0 in every FAT copy.
fn free_mask(
    part: &mut Part<'_>,
    g: &Geometry,
    first: u64,
    count: u64,
) -> Result<Vec<bool>, FsError> {
    let bits = entry_bits(g.kind);
    // The bytes holding entries first..first+count (FAT12 entries straddle bytes).
    let lo = first * bits / 8;
    let hi = ((first + count) * bits).div_ceil(8).min(g.fat_len);
    let mut mask = vec![true; count as usize];
    for copy in 0..g.fats {
        let bytes = part.read_vec(g.kind, g.fat_start + copy * g.fat_len + lo, hi - lo)?;
        for (i, slot) in mask.iter_mut().enumerate() {
            if *slot && entry(&bytes, g.kind, first + i as u64, lo) != Some(0) {
                *slot = false;
            }
        }
    }
    Ok(mask)
}

/// Cluster `n`'s entry, from `bytes` holding the FAT from byte `base` on.
fn entry(bytes: &[u8], kind: FsKind, n: u64, base: u64) -> Option<u32> {
    let at = |byte: u64| (byte.checked_sub(base)?).try_into().ok();
    match kind {
        FsKind::Fat12 => {
            let i: usize = at(n * 3 / 2)?;
            let pair = u16::from_le_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]);
            Some(if n % 2 == 0 { pair & 0x0FFF } else { pair >> 4 } as u32)
        }
        FsKind::Fat16 => {
            let i: usize = at(n * 2)?;
            Some(u16::from_le_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]) as u32)
        }
        _ => {
            let i: usize = at(n * 4)?;
            let raw = bytes.get(i..i + 4)?;
            // The top four bits of a FAT32 entry are reserved (FAT specification §4).
            Some(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) & 0x0FFF_FFFF)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::ByteRange;
    use crate::read_at::ReadAt;

    /// A FAT16 boot sector: 512-byte sectors, 4 sectors per cluster, 1 reserved sector,
    /// 2 FATs of 40 sectors, 512 root entries, 20480 sectors in all.
    fn fat16_boot() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0] = 0xEB;
        b[2] = 0x90;
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 4;
        b[14..16].copy_from_slice(&1u16.to_le_bytes());
        b[16] = 2;
        b[17..19].copy_from_slice(&512u16.to_le_bytes());
        b[19..21].copy_from_slice(&20480u16.to_le_bytes());
        b[22..24].copy_from_slice(&40u16.to_le_bytes());
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    fn image_with(boot: &[u8], fat_entries: &[(u64, u16)], second_copy: bool) -> Vec<u8> {
        let mut img = vec![0u8; 20480 * 512];
        img[..512].copy_from_slice(boot);
        for copy in 0..if second_copy { 2 } else { 1 } {
            for &(n, v) in fat_entries {
                let at = 512 + copy * 40 * 512 + n as usize * 2;
                img[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
        img
    }

    fn read(img: &[u8]) -> Result<FreeSpace, FsError> {
        let mut src: &[u8] = img;
        let mut part = Part::new(
            &mut src as &mut dyn ReadAt,
            ByteRange::new(0, img.len() as u64),
        );
        free_space(&mut part, FsKind::Fat16)
    }

    #[test]
    fn fat16_type_comes_from_the_cluster_count_and_free_runs_are_data_clusters() {
        let boot = fat16_boot();
        assert_eq!(probe(&boot), Some(FsKind::Fat16));
        // Media and end-of-chain markers in entries 0 and 1; clusters 2, 3 and 10 used.
        let img = image_with(
            &boot,
            &[(0, 0xFFF8), (1, 0xFFFF), (2, 3), (3, 0xFFFF), (10, 0xFFF7)],
            true,
        );
        let fs = read(&img).unwrap();
        // Data start: (1 + 2 * 40 + 32) sectors; 4-sector clusters.
        let data = 113 * 512;
        let cluster = 2048;
        let clusters = (20480 - 113) / 4;
        assert_eq!(fs.kind, FsKind::Fat16);
        assert_eq!(fs.fs_len, 20480 * 512);
        assert_eq!(
            fs.free,
            vec![
                ByteRange::new(data + 2 * cluster, 6 * cluster),
                ByteRange::new(data + 9 * cluster, (clusters - 9) * cluster),
            ]
        );
    }

    #[test]
    fn a_cluster_used_in_either_fat_copy_is_not_free() {
        let boot = fat16_boot();
        let mut img = image_with(&boot, &[(2, 0xFFFF)], true);
        // The second copy alone marks cluster 5.
        let at = 512 + 40 * 512 + 5 * 2;
        img[at..at + 2].copy_from_slice(&0xFFFFu16.to_le_bytes());
        let fs = read(&img).unwrap();
        let data = 113 * 512;
        assert_eq!(fs.free[0], ByteRange::new(data + 2048, 2 * 2048));
        assert_eq!(fs.free[1].start, data + 4 * 2048);
    }

    #[test]
    fn fat12_entries_are_unpacked_from_byte_pairs() {
        // Entries 2 = 0x123, 3 = 0x000, 4 = 0xABC packed as 12-bit pairs.
        let fat = [0u8, 0, 0, 0x23, 0x01, 0x00, 0xBC, 0x0A];
        assert_eq!(entry(&fat, FsKind::Fat12, 2, 0), Some(0x123));
        assert_eq!(entry(&fat, FsKind::Fat12, 3, 0), Some(0));
        assert_eq!(entry(&fat, FsKind::Fat12, 4, 0), Some(0xABC));
        assert_eq!(entry(&fat, FsKind::Fat12, 40, 0), None);
    }

    #[test]
    fn hostile_boot_sectors_are_refused_without_panicking() {
        let good = fat16_boot();
        let cases: Vec<(usize, u8)> = vec![
            (0, 0),
            (11, 3),
            (13, 3),
            (14, 0),
            (15, 0),
            (16, 0),
            (22, 0),
            (23, 0xFF),
            (19, 0),
            (20, 0),
        ];
        for (at, v) in cases {
            let mut b = good.clone();
            b[at] = v;
            if b[19] == 0 && b[20] == 0 {
                // total16 = 0 and total32 = 0: no size at all.
                assert_eq!(probe(&b), None);
                continue;
            }
            if let Some(kind) = probe(&b) {
                let mut img = image_with(&b, &[], false);
                img.truncate(4096);
                let mut src: &[u8] = &img;
                let mut part = Part::new(&mut src as &mut dyn ReadAt, ByteRange::new(0, 4096));
                assert!(free_space(&mut part, kind).is_err(), "byte {at} = {v}");
            }
        }
    }
}
