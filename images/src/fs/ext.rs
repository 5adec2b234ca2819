//! ext2/3/4: free space is what each block group's block bitmap leaves clear.
//!
//! Structures and offsets follow the kernel's `fs/ext4/ext4.h`: `struct ext4_super_block`
//! at byte 1024 and the `struct ext4_group_desc` table after it (or, with `META_BG`, one
//! descriptor block at the start of each meta group, as `descriptor_loc` in
//! `fs/ext4/super.c` places it). Everything is little-endian.
//!
//! A group whose descriptor says `BLOCK_UNINIT` (only honoured with `GDT_CSUM` or
//! `METADATA_CSUM`, as the kernel does) has no bitmap on disk: its bitmap is what
//! `ext4_init_block_bitmap` (`fs/ext4/balloc.c`) would build, i.e. the superblock backup,
//! group descriptors and reserved GDT blocks of a group that has a superblock
//! (`ext4_num_base_meta_blocks`), plus the block bitmaps, inode bitmaps and inode tables
//! that lie in the group. The kernel marks only the group's own; this reader marks
//! those of *every* group that land there (with `FLEX_BG` they are packed into a few
//! groups), so it can only call fewer blocks free.
//!
//! Checks before anything is believed: the superblock's geometry (as `ext4_fill_super`
//! checks it), its feature flags (a journal that needs recovery, a journal device,
//! `BIGALLOC`, compression or unknown features are refused), its state (cleanly
//! unmounted, no errors recorded), its `METADATA_CSUM` checksum; every descriptor's
//! checksum (`GDT_CSUM` crc16 or `METADATA_CSUM` crc32c) and metadata locations (as
//! `ext4_check_descriptors` checks them); every on-disk bitmap's checksum
//! (`METADATA_CSUM`); that every bitmap marks all the metadata known to lie in its group;
//! and that each group's free blocks match its descriptor's count.

use super::{FreeList, FreeSpace, FsError, FsKind, Part, damaged};
use crc::{Algorithm, CRC_16_MODBUS, Crc};
use std::ops::Range;

/// Where the superblock lives, whatever the block size.
const SUPERBLOCK_OFFSET: u64 = 1024;
const SUPERBLOCK_LEN: u64 = 1024;
/// `EXT4_SUPER_MAGIC`.
const MAGIC: u16 = 0xEF53;
/// `EXT4_MAX_BLOCK_LOG_SIZE` - 10: 64 KiB blocks.
const MAX_LOG_BLOCK_SIZE: u32 = 6;
/// `EXT4_GOOD_OLD_INODE_SIZE`: the inode size of revision 0.
const GOOD_OLD_INODE_SIZE: u64 = 128;
/// `EXT4_MAX_SUPP_REV`.
const MAX_REVISION: u32 = 1;
/// `EXT4_DESC_SIZE` without 64BIT, and the least with it (`EXT4_MIN_DESC_SIZE_64BIT`).
const DESC_SIZE_32: u64 = 32;
const MIN_DESC_SIZE_64: u64 = 64;
/// `EXT4_MAX_DESC_SIZE`.
const MAX_DESC_SIZE: u64 = 1024;
/// Most block groups read: 128 TiB with 4 KiB blocks. Each costs a descriptor and some
/// bookkeeping in memory, so a hostile geometry of millions of tiny groups is refused.
const MAX_GROUPS: u64 = 1 << 20;

/// Offsets in `struct ext4_super_block`.
mod es {
    pub const INODES_COUNT: usize = 0x0;
    pub const BLOCKS_COUNT_LO: usize = 0x4;
    pub const FIRST_DATA_BLOCK: usize = 0x14;
    pub const LOG_BLOCK_SIZE: usize = 0x18;
    pub const BLOCKS_PER_GROUP: usize = 0x20;
    pub const INODES_PER_GROUP: usize = 0x28;
    pub const MAGIC: usize = 0x38;
    pub const STATE: usize = 0x3A;
    pub const REV_LEVEL: usize = 0x4C;
    pub const INODE_SIZE: usize = 0x58;
    pub const FEATURE_COMPAT: usize = 0x5C;
    pub const FEATURE_INCOMPAT: usize = 0x60;
    pub const FEATURE_RO_COMPAT: usize = 0x64;
    pub const UUID: usize = 0x68;
    pub const RESERVED_GDT_BLOCKS: usize = 0xCE;
    pub const DESC_SIZE: usize = 0xFE;
    pub const FIRST_META_BG: usize = 0x104;
    pub const BLOCKS_COUNT_HI: usize = 0x150;
    pub const CHECKSUM_TYPE: usize = 0x175;
    pub const BACKUP_BGS: usize = 0x24C;
    pub const CHECKSUM_SEED: usize = 0x270;
    pub const CHECKSUM: usize = 0x3FC;
}

/// Offsets in `struct ext4_group_desc`.
mod bg {
    pub const BLOCK_BITMAP_LO: usize = 0x0;
    pub const INODE_BITMAP_LO: usize = 0x4;
    pub const INODE_TABLE_LO: usize = 0x8;
    pub const FREE_BLOCKS_COUNT_LO: usize = 0xC;
    pub const FLAGS: usize = 0x12;
    pub const BLOCK_BITMAP_CSUM_LO: usize = 0x18;
    pub const CHECKSUM: usize = 0x1E;
    pub const BLOCK_BITMAP_HI: usize = 0x20;
    pub const INODE_BITMAP_HI: usize = 0x24;
    pub const INODE_TABLE_HI: usize = 0x28;
    pub const FREE_BLOCKS_COUNT_HI: usize = 0x2C;
    pub const BLOCK_BITMAP_CSUM_HI: usize = 0x38;
    /// `EXT4_BG_BLOCK_BITMAP_CSUM_HI_END`: descriptors this long carry all 32 bits of
    /// the block bitmap checksum.
    pub const BLOCK_BITMAP_CSUM_HI_END: u64 = 0x3A;
    /// `EXT4_BG_BLOCK_UNINIT`.
    pub const FLAG_BLOCK_UNINIT: u16 = 0x2;
}

/// `EXT4_FEATURE_COMPAT_*`.
mod compat {
    pub const HAS_JOURNAL: u32 = 0x4;
    pub const SPARSE_SUPER2: u32 = 0x200;
}

/// `EXT4_FEATURE_INCOMPAT_*`.
mod incompat {
    pub const FILETYPE: u32 = 0x2;
    pub const RECOVER: u32 = 0x4;
    pub const META_BG: u32 = 0x10;
    pub const EXTENTS: u32 = 0x40;
    pub const BIT64: u32 = 0x80;
    pub const MMP: u32 = 0x100;
    pub const FLEX_BG: u32 = 0x200;
    pub const EA_INODE: u32 = 0x400;
    pub const DIRDATA: u32 = 0x1000;
    pub const CSUM_SEED: u32 = 0x2000;
    pub const LARGEDIR: u32 = 0x4000;
    pub const INLINE_DATA: u32 = 0x8000;
    pub const ENCRYPT: u32 = 0x10000;
    pub const CASEFOLD: u32 = 0x20000;
    /// Features whose blocks are still accounted for by the block bitmaps. Not here:
    /// COMPRESSION, RECOVER (the journal must be replayed first), JOURNAL_DEV (an
    /// external journal, not a file system) and anything newer.
    pub const UNDERSTOOD: u32 = FILETYPE
        | META_BG
        | EXTENTS
        | BIT64
        | MMP
        | FLEX_BG
        | EA_INODE
        | DIRDATA
        | CSUM_SEED
        | LARGEDIR
        | INLINE_DATA
        | ENCRYPT
        | CASEFOLD;
    /// What ext3 knew; anything else makes it ext4 (as blkid decides).
    pub const EXT3: u32 = FILETYPE | RECOVER | META_BG;
}

/// `EXT4_FEATURE_RO_COMPAT_*`.
mod ro_compat {
    pub const SPARSE_SUPER: u32 = 0x1;
    pub const LARGE_FILE: u32 = 0x2;
    pub const BTREE_DIR: u32 = 0x4;
    pub const HUGE_FILE: u32 = 0x8;
    pub const GDT_CSUM: u32 = 0x10;
    pub const DIR_NLINK: u32 = 0x20;
    pub const EXTRA_ISIZE: u32 = 0x40;
    pub const QUOTA: u32 = 0x100;
    pub const METADATA_CSUM: u32 = 0x400;
    pub const READONLY: u32 = 0x1000;
    pub const PROJECT: u32 = 0x2000;
    pub const SHARED_BLOCKS: u32 = 0x4000;
    pub const VERITY: u32 = 0x8000;
    pub const ORPHAN_PRESENT: u32 = 0x10000;
    /// Not here: BIGALLOC (bitmaps count clusters), HAS_SNAPSHOT and REPLICA (never in
    /// mainline) and anything newer.
    pub const UNDERSTOOD: u32 = SPARSE_SUPER
        | LARGE_FILE
        | HUGE_FILE
        | GDT_CSUM
        | DIR_NLINK
        | EXTRA_ISIZE
        | QUOTA
        | METADATA_CSUM
        | READONLY
        | PROJECT
        | SHARED_BLOCKS
        | VERITY
        | ORPHAN_PRESENT;
    /// What ext3 knew; anything else makes it ext4 (as blkid decides).
    pub const EXT3: u32 = SPARSE_SUPER | LARGE_FILE | BTREE_DIR;
}

/// `s_state` bits.
const STATE_VALID: u16 = 0x1;
const STATE_ERROR: u16 = 0x2;
/// `EXT4_CRC32C_CHKSUM`, the only `s_checksum_type`.
const CHECKSUM_TYPE_CRC32C: u8 = 1;

/// The kernel's `crc32c()`: CRC-32C from a given seed, without the final inversion
/// (`ext4_chksum`). `crc` applies `refin` to the initial value, hence the reversal.
const CRC32C_RAW: Crc<u32> = Crc::<u32>::new(&Algorithm {
    width: 32,
    poly: 0x1edc_6f41,
    init: 0xffff_ffff,
    refin: true,
    refout: true,
    xorout: 0,
    check: 0xe306_9283 ^ 0xffff_ffff,
    residue: 0,
});
/// The kernel's `crc16()` from `~0`, which `GDT_CSUM` uses.
const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_MODBUS);

fn crc32c_raw(seed: u32, parts: &[&[u8]]) -> u32 {
    let mut digest = CRC32C_RAW.digest_with_initial(seed.reverse_bits());
    for part in parts {
        digest.update(part);
    }
    digest.finalize()
}

/// Recognises an ext2/3/4 superblock and names it by its features.
pub fn probe(head: &[u8]) -> Option<FsKind> {
    let sb = Fields {
        bytes: head.get(SUPERBLOCK_OFFSET as usize..)?,
        kind: FsKind::Ext2,
    };
    if sb.u16(es::MAGIC).ok()? != MAGIC {
        return None;
    }
    let compat = sb.u32(es::FEATURE_COMPAT).ok()?;
    let incompat = sb.u32(es::FEATURE_INCOMPAT).ok()?;
    let ro_compat = sb.u32(es::FEATURE_RO_COMPAT).ok()?;
    Some(kind_from_features(compat, incompat, ro_compat))
}

/// ext4 if any feature ext3 did not know is on, ext3 with a journal, else ext2.
fn kind_from_features(compat: u32, incompat: u32, ro_compat: u32) -> FsKind {
    if incompat & !incompat::EXT3 != 0 || ro_compat & !ro_compat::EXT3 != 0 {
        FsKind::Ext4
    } else if compat & compat::HAS_JOURNAL != 0 {
        FsKind::Ext3
    } else {
        FsKind::Ext2
    }
}

/// The free blocks of the ext2/3/4 file system at the start of `part`.
pub fn free_space(part: &mut Part<'_>, kind: FsKind) -> Result<FreeSpace, FsError> {
    let sb = part.read_vec(kind, SUPERBLOCK_OFFSET, SUPERBLOCK_LEN)?;
    let geo = parse_superblock(&sb, kind)?;
    if geo.fs_len() > part.len() {
        return Err(FsError::Truncated {
            kind,
            what: "the end of its partition",
            detail: format!(
                "the superblock declares {} bytes, the partition holds {}",
                geo.fs_len(),
                part.len()
            ),
        });
    }
    let groups = read_group_descriptors(part, &geo)?;
    let metadata = MetadataIndex::new(&geo, &groups);
    let mut free = FreeList::new(kind);
    let mut bitmap = vec![0u8; geo.block_size as usize];
    for (g, desc) in (0u64..).zip(&groups) {
        load_block_bitmap(part, &geo, &metadata, g, desc, &mut bitmap)?;
        let free_blocks = add_free_runs(&geo, g, &bitmap, &mut free)?;
        if free_blocks != desc.free_blocks {
            return Err(geo.bad(format!(
                "group {g}'s bitmap has {free_blocks} free blocks, its descriptor says {}",
                desc.free_blocks
            )));
        }
    }
    free.finish(geo.fs_len())
}

/// Which groups hold a superblock backup (and with it a copy of the descriptors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backups {
    /// No `SPARSE_SUPER`: every group.
    Every,
    /// `SPARSE_SUPER`: groups 0, 1 and powers of 3, 5 and 7.
    Sparse,
    /// `SPARSE_SUPER2`: group 0 and the (up to) two groups in `s_backup_bgs`.
    Listed([u64; 2]),
}

/// How descriptors (and, with `METADATA_CSUM`, bitmaps) are checksummed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checksums {
    None,
    /// `GDT_CSUM`: crc16 over the UUID, group number and descriptor.
    Crc16 {
        uuid: [u8; 16],
    },
    /// `METADATA_CSUM`: crc32c from the file system's seed.
    Crc32c {
        seed: u32,
    },
}

/// What the superblock says about where things are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Geometry {
    kind: FsKind,
    block_size: u64,
    blocks_count: u64,
    first_data_block: u64,
    blocks_per_group: u64,
    group_count: u64,
    /// Blocks of one group's inode table.
    inode_table_blocks: u64,
    desc_size: u64,
    /// `s_gdb_count`: blocks the whole descriptor table takes.
    desc_blocks: u64,
    reserved_gdt_blocks: u64,
    /// `META_BG`: descriptor blocks from this one on live in their meta groups.
    first_meta_bg: Option<u64>,
    backups: Backups,
    flex_bg: bool,
    checksums: Checksums,
}

impl Geometry {
    fn bad(&self, detail: impl Into<String>) -> FsError {
        damaged(self.kind, detail)
    }

    fn fs_len(&self) -> u64 {
        // Cannot overflow: checked when the superblock was read.
        self.blocks_count * self.block_size
    }

    fn descs_per_block(&self) -> u64 {
        self.block_size / self.desc_size
    }

    /// The block holding the superblock: 1 with 1 KiB blocks, else 0.
    fn superblock_block(&self) -> u64 {
        SUPERBLOCK_OFFSET / self.block_size
    }

    /// `ext4_group_first_block_no`.
    fn group_first_block(&self, g: u64) -> u64 {
        self.first_data_block + g * self.blocks_per_group
    }

    /// Blocks in group `g` (the last one holds what is left).
    fn blocks_in_group(&self, g: u64) -> u64 {
        (self.blocks_count - self.group_first_block(g)).min(self.blocks_per_group)
    }

    fn group_blocks(&self, g: u64) -> Range<u64> {
        let first = self.group_first_block(g);
        first..first + self.blocks_in_group(g)
    }

    /// `ext4_bg_has_super`.
    fn has_super(&self, g: u64) -> bool {
        match self.backups {
            _ if g == 0 => true,
            Backups::Listed(groups) => groups.contains(&g),
            Backups::Every => true,
            Backups::Sparse => {
                g == 1 || is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)
            }
        }
    }

    /// `ext4_num_base_meta_blocks`: the superblock backup, descriptor blocks and reserved
    /// GDT blocks at the start of group `g`.
    fn base_meta_blocks(&self, g: u64) -> u64 {
        let has_super = self.has_super(g);
        let per_block = self.descs_per_block();
        if let Some(first_meta_bg) = self.first_meta_bg {
            if g >= first_meta_bg * per_block {
                // `ext4_bg_num_gdb_meta`: a meta group's descriptor block is in its first,
                // second and last group.
                let first = g / per_block * per_block;
                let holds_descriptors = g == first || g == first + 1 || g == first + per_block - 1;
                return u64::from(has_super) + u64::from(holds_descriptors);
            }
        }
        if !has_super {
            return 0;
        }
        // `ext4_bg_num_gdb_nometa`: with META_BG only the blocks before the first meta
        // group are copied after each superblock.
        1 + self.first_meta_bg.unwrap_or(self.desc_blocks) + self.reserved_gdt_blocks
    }

    /// `descriptor_loc`: the block holding descriptor block `nr`.
    fn descriptor_block(&self, nr: u64) -> u64 {
        match self.first_meta_bg {
            Some(first_meta_bg) if nr >= first_meta_bg => {
                let g = nr * self.descs_per_block();
                self.group_first_block(g) + u64::from(self.has_super(g))
            }
            _ => self.superblock_block() + 1 + nr,
        }
    }
}

/// `n` is `base` to some power ≥ 1 (`test_root`).
fn is_power_of(mut n: u64, base: u64) -> bool {
    if n < base {
        return false;
    }
    while n % base == 0 {
        n /= base;
    }
    n == 1
}

/// Checks the superblock the way `ext4_fill_super` does for the fields this reader
/// depends on, and returns its geometry.
fn parse_superblock(sb: &[u8], kind: FsKind) -> Result<Geometry, FsError> {
    let sb = Fields { bytes: sb, kind };
    if sb.u16(es::MAGIC)? != MAGIC {
        return Err(damaged(kind, "no ext2/3/4 superblock magic"));
    }
    check_features_and_state(sb)?;
    let checksums = checksums(sb)?;
    let (block_size, blocks_count, first_data_block) = block_counts(sb)?;
    let blocks_per_group = blocks_per_group(sb, block_size)?;
    let group_count = (blocks_count - first_data_block).div_ceil(blocks_per_group);
    if group_count > MAX_GROUPS {
        return Err(damaged(kind, format!("{group_count} block groups")));
    }
    let inode_table_blocks = inode_table_blocks(sb, block_size, blocks_per_group, group_count)?;
    let desc_size = descriptor_size(sb, block_size)?;
    let desc_blocks = group_count.div_ceil(block_size / desc_size);
    let reserved_gdt_blocks = u64::from(sb.u16(es::RESERVED_GDT_BLOCKS)?);
    if reserved_gdt_blocks > block_size / 4 {
        return Err(damaged(
            kind,
            format!("{reserved_gdt_blocks} reserved GDT blocks"),
        ));
    }
    Ok(Geometry {
        kind,
        block_size,
        blocks_count,
        first_data_block,
        blocks_per_group,
        group_count,
        inode_table_blocks,
        desc_size,
        desc_blocks,
        reserved_gdt_blocks,
        first_meta_bg: first_meta_bg(sb, desc_blocks)?,
        backups: backups(sb)?,
        flex_bg: sb.u32(es::FEATURE_INCOMPAT)? & incompat::FLEX_BG != 0,
        checksums,
    })
}

/// Block size, block count (64-bit with `64BIT`) and first data block.
fn block_counts(sb: Fields<'_>) -> Result<(u64, u64, u64), FsError> {
    let log_block_size = sb.u32(es::LOG_BLOCK_SIZE)?;
    if log_block_size > MAX_LOG_BLOCK_SIZE {
        return Err(damaged(
            sb.kind,
            format!("block size 1024 << {log_block_size}"),
        ));
    }
    let block_size = 1024u64 << log_block_size;
    let high = if sb.u32(es::FEATURE_INCOMPAT)? & incompat::BIT64 != 0 {
        sb.u32(es::BLOCKS_COUNT_HI)?
    } else {
        0
    };
    let blocks_count = u64::from(high) << 32 | u64::from(sb.u32(es::BLOCKS_COUNT_LO)?);
    let first_data_block = u64::from(sb.u32(es::FIRST_DATA_BLOCK)?);
    // Only BIGALLOC (refused) moves the first data block from the superblock's block.
    if first_data_block != SUPERBLOCK_OFFSET / block_size || blocks_count <= first_data_block {
        return Err(damaged(
            sb.kind,
            format!(
                "first data block {first_data_block} of {blocks_count} with {block_size}-byte blocks"
            ),
        ));
    }
    if blocks_count.checked_mul(block_size).is_none() {
        return Err(damaged(sb.kind, "the file system size overflows"));
    }
    Ok((block_size, blocks_count, first_data_block))
}

/// `s_blocks_per_group`: a whole number of bitmap bytes, at most one bitmap block.
fn blocks_per_group(sb: Fields<'_>, block_size: u64) -> Result<u64, FsError> {
    let n = u64::from(sb.u32(es::BLOCKS_PER_GROUP)?);
    if n < 8 || n > 8 * block_size || n % 8 != 0 {
        return Err(damaged(sb.kind, format!("{n} blocks per group")));
    }
    Ok(n)
}

/// `EXT4_DESC_SIZE`: 32 bytes, or `s_desc_size` (a power of two, 64..=1024) with
/// `64BIT`.
fn descriptor_size(sb: Fields<'_>, block_size: u64) -> Result<u64, FsError> {
    if sb.u32(es::FEATURE_INCOMPAT)? & incompat::BIT64 == 0 {
        return Ok(DESC_SIZE_32);
    }
    let size = u64::from(sb.u16(es::DESC_SIZE)?);
    if !size.is_power_of_two() || size < MIN_DESC_SIZE_64 || size > MAX_DESC_SIZE.min(block_size) {
        return Err(damaged(sb.kind, format!("descriptor size {size}")));
    }
    Ok(size)
}

/// `s_first_meta_bg` with `META_BG`: at most the number of descriptor blocks.
fn first_meta_bg(sb: Fields<'_>, desc_blocks: u64) -> Result<Option<u64>, FsError> {
    if sb.u32(es::FEATURE_INCOMPAT)? & incompat::META_BG == 0 {
        return Ok(None);
    }
    let first = u64::from(sb.u32(es::FIRST_META_BG)?);
    if first > desc_blocks {
        return Err(damaged(
            sb.kind,
            format!("first meta group {first} past {desc_blocks} descriptor blocks"),
        ));
    }
    Ok(Some(first))
}

/// Refuses features that change what the bitmaps mean or say they are stale, and a
/// file system not cleanly unmounted or with errors recorded (its bitmaps may be wrong
/// until `e2fsck` has run).
fn check_features_and_state(sb: Fields<'_>) -> Result<(), FsError> {
    let kind = sb.kind;
    let incompat = sb.u32(es::FEATURE_INCOMPAT)?;
    let ro_compat = sb.u32(es::FEATURE_RO_COMPAT)?;
    if incompat & incompat::RECOVER != 0 {
        return Err(damaged(kind, "the journal needs recovery"));
    }
    if incompat & !incompat::UNDERSTOOD != 0 {
        return Err(damaged(
            kind,
            format!(
                "incompatible features {:#x} not understood",
                incompat & !incompat::UNDERSTOOD
            ),
        ));
    }
    if ro_compat & !ro_compat::UNDERSTOOD != 0 {
        return Err(damaged(
            kind,
            format!(
                "read-only features {:#x} not understood",
                ro_compat & !ro_compat::UNDERSTOOD
            ),
        ));
    }
    let state = sb.u16(es::STATE)?;
    if state & STATE_VALID == 0 || state & STATE_ERROR != 0 {
        return Err(damaged(
            kind,
            format!("state {state:#x}: not cleanly unmounted, or errors were recorded"),
        ));
    }
    let revision = sb.u32(es::REV_LEVEL)?;
    if revision > MAX_REVISION {
        return Err(damaged(kind, format!("revision {revision}")));
    }
    Ok(())
}

/// Which checksums the descriptors carry; with `METADATA_CSUM`, also checks the
/// superblock's own (`ext4_superblock_csum_verify`).
fn checksums(sb: Fields<'_>) -> Result<Checksums, FsError> {
    let kind = sb.kind;
    let ro_compat = sb.u32(es::FEATURE_RO_COMPAT)?;
    let uuid: [u8; 16] = sb.array(es::UUID)?;
    if ro_compat & ro_compat::METADATA_CSUM != 0 {
        if sb.array::<1>(es::CHECKSUM_TYPE)? != [CHECKSUM_TYPE_CRC32C] {
            return Err(damaged(kind, "unknown metadata checksum type"));
        }
        let body = sb.bytes.get(..es::CHECKSUM).unwrap_or_default();
        if crc32c_raw(!0, &[body]) != sb.u32(es::CHECKSUM)? {
            return Err(damaged(kind, "the superblock's checksum does not match"));
        }
        let seed = if sb.u32(es::FEATURE_INCOMPAT)? & incompat::CSUM_SEED != 0 {
            sb.u32(es::CHECKSUM_SEED)?
        } else {
            crc32c_raw(!0, &[&uuid])
        };
        Ok(Checksums::Crc32c { seed })
    } else if ro_compat & ro_compat::GDT_CSUM != 0 {
        Ok(Checksums::Crc16 { uuid })
    } else {
        Ok(Checksums::None)
    }
}

fn backups(sb: Fields<'_>) -> Result<Backups, FsError> {
    if sb.u32(es::FEATURE_COMPAT)? & compat::SPARSE_SUPER2 != 0 {
        let first = u64::from(sb.u32(es::BACKUP_BGS)?);
        let second = u64::from(sb.u32(es::BACKUP_BGS + 4)?);
        Ok(Backups::Listed([first, second]))
    } else if sb.u32(es::FEATURE_RO_COMPAT)? & ro_compat::SPARSE_SUPER != 0 {
        Ok(Backups::Sparse)
    } else {
        Ok(Backups::Every)
    }
}

/// Blocks of one group's inode table, after the kernel's checks of the inode size and
/// count. Rounded up: a partial block still belongs to the table.
fn inode_table_blocks(
    sb: Fields<'_>,
    block_size: u64,
    blocks_per_group: u64,
    group_count: u64,
) -> Result<u64, FsError> {
    let kind = sb.kind;
    let inode_size = if sb.u32(es::REV_LEVEL)? == 0 {
        GOOD_OLD_INODE_SIZE
    } else {
        u64::from(sb.u16(es::INODE_SIZE)?)
    };
    if !inode_size.is_power_of_two() || inode_size < GOOD_OLD_INODE_SIZE || inode_size > block_size
    {
        return Err(damaged(kind, format!("inode size {inode_size}")));
    }
    let inodes_per_group = u64::from(sb.u32(es::INODES_PER_GROUP)?);
    if inodes_per_group < block_size / inode_size || inodes_per_group > 8 * block_size {
        return Err(damaged(
            kind,
            format!("{inodes_per_group} inodes per group"),
        ));
    }
    if u64::from(sb.u32(es::INODES_COUNT)?) != group_count * inodes_per_group {
        return Err(damaged(kind, "the inode count does not fill the groups"));
    }
    let blocks = (inodes_per_group * inode_size).div_ceil(block_size);
    if blocks >= blocks_per_group {
        return Err(damaged(kind, "an inode table larger than its group"));
    }
    Ok(blocks)
}

/// One group's descriptor, as far as this reader needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GroupDesc {
    block_bitmap: u64,
    inode_bitmap: u64,
    inode_table: u64,
    free_blocks: u64,
    /// `BLOCK_UNINIT` set and honoured (the file system has descriptor checksums).
    block_uninit: bool,
    block_bitmap_csum: u32,
}

impl GroupDesc {
    /// Block bitmap, inode bitmap and inode table, as block ranges.
    fn metadata(&self, geo: &Geometry) -> [Range<u64>; 3] {
        [
            self.block_bitmap..self.block_bitmap.saturating_add(1),
            self.inode_bitmap..self.inode_bitmap.saturating_add(1),
            self.inode_table..self.inode_table.saturating_add(geo.inode_table_blocks),
        ]
    }
}

/// Reads, checksums and checks every group descriptor.
fn read_group_descriptors(part: &mut Part<'_>, geo: &Geometry) -> Result<Vec<GroupDesc>, FsError> {
    let mut groups = Vec::with_capacity(geo.group_count as usize);
    let per_block = geo.descs_per_block();
    for nr in 0..geo.desc_blocks {
        let location = geo.descriptor_block(nr);
        if location >= geo.blocks_count {
            return Err(geo.bad(format!(
                "descriptor block {nr} at block {location}, past the file system"
            )));
        }
        let at = location * geo.block_size;
        let block = part.read_vec(geo.kind, at, geo.block_size)?;
        let in_block = per_block.min(geo.group_count - nr * per_block);
        for i in 0..in_block {
            let g = nr * per_block + i;
            let start = (i * geo.desc_size) as usize;
            let raw = block
                .get(start..start + geo.desc_size as usize)
                .ok_or_else(|| geo.bad("a descriptor past its block"))?;
            groups.push(parse_descriptor(raw, geo, g)?);
        }
    }
    Ok(groups)
}

fn parse_descriptor(raw: &[u8], geo: &Geometry, g: u64) -> Result<GroupDesc, FsError> {
    let raw = Fields {
        bytes: raw,
        kind: geo.kind,
    };
    if !descriptor_checksum_matches(raw, geo, g)? {
        return Err(geo.bad(format!("group {g}'s descriptor checksum does not match")));
    }
    let wide = geo.desc_size >= MIN_DESC_SIZE_64;
    let lo_hi32 = |lo, hi| -> Result<u64, FsError> {
        let high = if wide {
            u64::from(raw.u32(hi)?) << 32
        } else {
            0
        };
        Ok(u64::from(raw.u32(lo)?) | high)
    };
    let free_high = if wide {
        u64::from(raw.u16(bg::FREE_BLOCKS_COUNT_HI)?) << 16
    } else {
        0
    };
    let csum_high = if geo.desc_size >= bg::BLOCK_BITMAP_CSUM_HI_END {
        u32::from(raw.u16(bg::BLOCK_BITMAP_CSUM_HI)?) << 16
    } else {
        0
    };
    let desc = GroupDesc {
        block_bitmap: lo_hi32(bg::BLOCK_BITMAP_LO, bg::BLOCK_BITMAP_HI)?,
        inode_bitmap: lo_hi32(bg::INODE_BITMAP_LO, bg::INODE_BITMAP_HI)?,
        inode_table: lo_hi32(bg::INODE_TABLE_LO, bg::INODE_TABLE_HI)?,
        free_blocks: u64::from(raw.u16(bg::FREE_BLOCKS_COUNT_LO)?) | free_high,
        block_uninit: geo.checksums != Checksums::None
            && raw.u16(bg::FLAGS)? & bg::FLAG_BLOCK_UNINIT != 0,
        block_bitmap_csum: u32::from(raw.u16(bg::BLOCK_BITMAP_CSUM_LO)?) | csum_high,
    };
    check_descriptor_locations(&desc, geo, g)?;
    Ok(desc)
}

/// `ext4_group_desc_csum_verify`.
fn descriptor_checksum_matches(raw: Fields<'_>, geo: &Geometry, g: u64) -> Result<bool, FsError> {
    let group = (g as u32).to_le_bytes();
    let before = raw.bytes.get(..bg::CHECKSUM).unwrap_or_default();
    let after = raw.bytes.get(bg::CHECKSUM + 2..).unwrap_or_default();
    let computed = match geo.checksums {
        Checksums::None => return Ok(true),
        Checksums::Crc16 { uuid } => {
            let mut digest = CRC16.digest();
            for part in [&uuid[..], &group, before, after] {
                digest.update(part);
            }
            digest.finalize()
        }
        Checksums::Crc32c { seed } => crc32c_raw(seed, &[&group, before, &[0, 0], after]) as u16,
    };
    Ok(computed == raw.u16(bg::CHECKSUM)?)
}

/// `ext4_check_descriptors`: bitmaps and inode table inside the group (inside the file
/// system with `FLEX_BG`), and no more free blocks than the group holds.
fn check_descriptor_locations(desc: &GroupDesc, geo: &Geometry, g: u64) -> Result<(), FsError> {
    let allowed = if geo.flex_bg {
        geo.first_data_block..geo.blocks_count
    } else {
        geo.group_blocks(g)
    };
    for blocks in desc.metadata(geo) {
        if blocks.start < allowed.start || blocks.end > allowed.end {
            return Err(geo.bad(format!(
                "group {g}'s bitmaps or inode table (blocks {blocks:?}) lie outside blocks {allowed:?}"
            )));
        }
    }
    if desc.free_blocks > geo.blocks_in_group(g) {
        return Err(geo.bad(format!("group {g} has more free blocks than blocks")));
    }
    Ok(())
}

/// Every group's bitmaps and inode table, sorted by first block, to find the ones that
/// lie in a given group.
struct MetadataIndex {
    ranges: Vec<Range<u64>>,
    /// The longest range: a range reaching into a group starts at most this far before it.
    longest: u64,
}

impl MetadataIndex {
    fn new(geo: &Geometry, groups: &[GroupDesc]) -> Self {
        let mut ranges: Vec<Range<u64>> = groups.iter().flat_map(|d| d.metadata(geo)).collect();
        ranges.sort_unstable_by_key(|r| r.start);
        let longest = ranges.iter().map(|r| r.end - r.start).max().unwrap_or(0);
        Self { ranges, longest }
    }

    /// The parts of all metadata ranges inside `blocks`.
    fn within(&self, blocks: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let from = blocks.start.saturating_sub(self.longest);
        let first = self.ranges.partition_point(|r| r.start < from);
        self.ranges
            .get(first..)
            .unwrap_or_default()
            .iter()
            .take_while(move |r| r.start < blocks.end)
            .map(move |r| r.start.max(blocks.start)..r.end.min(blocks.end))
            .filter(|r| r.start < r.end)
    }
}

/// Fills `bitmap` with group `g`'s block bitmap: read from disk (and checked to mark all
/// the metadata known to lie in the group), or for `BLOCK_UNINIT` built from that
/// metadata alone.
fn load_block_bitmap(
    part: &mut Part<'_>,
    geo: &Geometry,
    metadata: &MetadataIndex,
    g: u64,
    desc: &GroupDesc,
    bitmap: &mut [u8],
) -> Result<(), FsError> {
    let expected = known_metadata_bitmap(geo, metadata, g)?;
    if desc.block_uninit {
        bitmap.fill(0);
        bitmap
            .get_mut(..expected.len())
            .ok_or_else(|| geo.bad("a group larger than its bitmap"))?
            .copy_from_slice(&expected);
        return Ok(());
    }
    part.read(geo.kind, desc.block_bitmap * geo.block_size, bitmap)?;
    if !bitmap_checksum_matches(bitmap, geo, desc) {
        return Err(geo.bad(format!("group {g}'s block bitmap checksum does not match")));
    }
    if !marks_all(bitmap, &expected) {
        return Err(geo.bad(format!(
            "group {g}'s block bitmap calls metadata that lies in the group free"
        )));
    }
    Ok(())
}

/// The bitmap `ext4_init_block_bitmap` would build for group `g` (one bit per block of
/// the group), with every group's bitmaps and inode table that lie here marked.
fn known_metadata_bitmap(
    geo: &Geometry,
    metadata: &MetadataIndex,
    g: u64,
) -> Result<Vec<u8>, FsError> {
    let blocks = geo.group_blocks(g);
    let len = blocks.end - blocks.start;
    let mut bits = vec![0u8; len.div_ceil(8) as usize];
    let base = geo.base_meta_blocks(g);
    if base > len {
        return Err(geo.bad(format!(
            "group {g} is smaller than its superblock backup and descriptors"
        )));
    }
    set_bits(&mut bits, 0..base);
    for r in metadata.within(blocks.clone()) {
        set_bits(&mut bits, r.start - blocks.start..r.end - blocks.start);
    }
    Ok(bits)
}

/// `ext4_block_bitmap_csum_verify`: crc32c of the group's bits (`METADATA_CSUM` only).
fn bitmap_checksum_matches(bitmap: &[u8], geo: &Geometry, desc: &GroupDesc) -> bool {
    let Checksums::Crc32c { seed } = geo.checksums else {
        return true;
    };
    let covered = bitmap
        .get(..(geo.blocks_per_group / 8) as usize)
        .unwrap_or_default();
    let computed = crc32c_raw(seed, &[covered]);
    if geo.desc_size >= bg::BLOCK_BITMAP_CSUM_HI_END {
        computed == desc.block_bitmap_csum
    } else {
        computed & 0xFFFF == desc.block_bitmap_csum
    }
}

/// Adds group `g`'s clear bits as free extents; returns how many blocks they are.
fn add_free_runs(
    geo: &Geometry,
    g: u64,
    bitmap: &[u8],
    free: &mut FreeList,
) -> Result<u64, FsError> {
    let first = geo.group_first_block(g);
    let mut total = 0;
    for run in clear_runs(bitmap, geo.blocks_in_group(g)) {
        total += run.end - run.start;
        free.push(
            (first + run.start) * geo.block_size,
            (run.end - run.start) * geo.block_size,
        )?;
    }
    Ok(total)
}

fn set_bits(bits: &mut [u8], range: Range<u64>) {
    for i in range {
        if let Some(b) = bits.get_mut((i / 8) as usize) {
            *b |= 1 << (i % 8);
        }
    }
}

/// True if every bit set in `wanted` is set in `bits`.
fn marks_all(bits: &[u8], wanted: &[u8]) -> bool {
    wanted.len() <= bits.len() && wanted.iter().zip(bits).all(|(w, b)| w & !b == 0)
}

/// The runs of clear bits among the first `n` bits (a bit past the bitmap counts as set).
fn clear_runs(bits: &[u8], n: u64) -> Vec<Range<u64>> {
    let mut runs = Vec::new();
    let mut run_start = None;
    let mut i = 0;
    while i < n {
        let byte = bits.get((i / 8) as usize).copied().unwrap_or(0xFF);
        let used = byte & (1 << (i % 8)) != 0;
        match (used, run_start) {
            (false, None) => run_start = Some(i),
            (true, Some(start)) => {
                runs.push(start..i);
                run_start = None;
            }
            _ => {}
        }
        // A whole byte of equal bits is passed at once.
        let whole_byte = i % 8 == 0 && i + 8 <= n && (byte == 0 || byte == 0xFF);
        i += if whole_byte { 8 } else { 1 };
    }
    runs.extend(run_start.map(|start| start..n));
    runs
}

/// A little-endian structure read field by field: a field past its end is an error
/// naming the file system, never a panic.
#[derive(Debug, Clone, Copy)]
struct Fields<'a> {
    bytes: &'a [u8],
    kind: FsKind,
}

impl Fields<'_> {
    fn array<const N: usize>(&self, at: usize) -> Result<[u8; N], FsError> {
        super::field(self.kind, self.bytes, at)
    }

    fn u16(&self, at: usize) -> Result<u16, FsError> {
        self.array(at).map(u16::from_le_bytes)
    }

    fn u32(&self, at: usize) -> Result<u32, FsError> {
        self.array(at).map(u32::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_crc32c_is_the_kernels_uninverted_crc() {
        // The CRC-32C check value is 0xE3069283 with the final inversion.
        assert_eq!(crc32c_raw(!0, &[b"123456789"]), !0xE306_9283);
        // Chaining from an intermediate value is the same as one pass.
        let mid = crc32c_raw(!0, &[b"12345"]);
        assert_eq!(crc32c_raw(mid, &[b"6789"]), crc32c_raw(!0, &[b"123456789"]));
    }

    #[test]
    fn sparse_super_keeps_backups_in_groups_0_1_and_powers_of_3_5_7() {
        let with_backup: Vec<u64> = (0..100)
            .filter(|&g| {
                g == 0 || g == 1 || is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)
            })
            .collect();
        assert_eq!(with_backup, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
        assert!(!is_power_of(0, 3));
        assert!(
            !is_power_of(1, 3),
            "group 1 is listed on its own, not as 3^0"
        );
    }

    /// 256 MiB of 1 KiB blocks with 64-byte descriptors and `META_BG` from the first
    /// descriptor block, as `mke2fs -b 1024 -O meta_bg,^resize_inode` makes it.
    fn meta_bg_geometry() -> Geometry {
        Geometry {
            kind: FsKind::Ext4,
            block_size: 1024,
            blocks_count: 262_144,
            first_data_block: 1,
            blocks_per_group: 8192,
            group_count: 32,
            inode_table_blocks: 512,
            desc_size: 64,
            desc_blocks: 2,
            reserved_gdt_blocks: 0,
            first_meta_bg: Some(0),
            backups: Backups::Sparse,
            flex_bg: true,
            checksums: Checksums::None,
        }
    }

    #[test]
    fn meta_bg_descriptors_sit_in_the_first_second_and_last_group_of_each_meta_group() {
        let geo = meta_bg_geometry();
        // As dumpe2fs reports: group 0's descriptors at 2, group 16's at 131073.
        assert_eq!(geo.descriptor_block(0), 2);
        assert_eq!(geo.descriptor_block(1), 131_073);
        let base: Vec<u64> = (0..32).map(|g| geo.base_meta_blocks(g)).collect();
        // Superblock + descriptor block in groups 0 and 1; superblock alone in 3, 5, 7,
        // 9, 25, 27; a descriptor copy alone in 15, 16, 17 and 31.
        let mut expected = vec![0u64; 32];
        for g in [0, 1] {
            expected[g] = 2;
        }
        for g in [3, 5, 7, 9, 25, 27, 15, 16, 17, 31] {
            expected[g] = 1;
        }
        assert_eq!(base, expected);
    }

    #[test]
    fn without_meta_bg_every_backup_carries_all_descriptors_and_reserved_blocks() {
        let geo = Geometry {
            first_meta_bg: None,
            reserved_gdt_blocks: 63,
            ..meta_bg_geometry()
        };
        assert_eq!(geo.descriptor_block(1), 3);
        assert_eq!(geo.base_meta_blocks(0), 1 + 2 + 63);
        assert_eq!(geo.base_meta_blocks(2), 0);
        let every = Geometry {
            backups: Backups::Every,
            ..geo.clone()
        };
        assert_eq!(every.base_meta_blocks(2), 1 + 2 + 63);
        let listed = Geometry {
            backups: Backups::Listed([1, 31]),
            ..geo
        };
        assert_eq!(listed.base_meta_blocks(3), 0);
        assert_eq!(listed.base_meta_blocks(31), 1 + 2 + 63);
    }

    #[test]
    fn clear_runs_finds_free_blocks_and_stops_at_the_group_end() {
        // Blocks 0-2 used, 3-20 free, 21 used, 22-39 free; a 30-block group.
        let mut bits = vec![0u8; 5];
        set_bits(&mut bits, 0..3);
        set_bits(&mut bits, 21..22);
        assert_eq!(clear_runs(&bits, 30), vec![3..21, 22..30]);
        assert!(clear_runs(&[0xFF; 4], 32).is_empty());
        assert_eq!(clear_runs(&[0; 4], 32), vec![0..32]);
        assert_eq!(
            clear_runs(&[0b0111_1111; 4], 32),
            vec![7..8, 15..16, 23..24, 31..32]
        );
        // Bits the bitmap does not hold count as used.
        assert_eq!(clear_runs(&[0], 12), vec![0..8]);
    }

    #[test]
    fn marks_all_wants_every_expected_bit() {
        assert!(marks_all(&[0b1111], &[0b0101]));
        assert!(!marks_all(&[0b1011], &[0b0101]));
        assert!(!marks_all(&[0xFF], &[0x01, 0x01]));
    }

    #[test]
    fn kind_follows_blkid() {
        assert_eq!(
            kind_from_features(0, incompat::FILETYPE, ro_compat::SPARSE_SUPER),
            FsKind::Ext2
        );
        assert_eq!(
            kind_from_features(compat::HAS_JOURNAL, incompat::FILETYPE, 0),
            FsKind::Ext3
        );
        assert_eq!(
            kind_from_features(compat::HAS_JOURNAL, incompat::EXTENTS, 0),
            FsKind::Ext4
        );
        assert_eq!(
            kind_from_features(0, 0, ro_compat::METADATA_CSUM),
            FsKind::Ext4
        );
    }

    #[test]
    fn probe_needs_the_magic_at_byte_1080() {
        let mut head = vec![0u8; 2048];
        assert_eq!(probe(&head), None);
        head[1024 + 56..1024 + 58].copy_from_slice(&MAGIC.to_le_bytes());
        assert_eq!(probe(&head), Some(FsKind::Ext2));
        assert_eq!(probe(&head[..1030]), None);
    }
}
