//! XFS (v4 and v5/CRC): free space is what each allocation group's free-space B+tree by
//! block number (the "bnobt") records.
//!
//! Structures and offsets follow the kernel's `fs/xfs/libxfs/xfs_format.h`: the
//! superblock `struct xfs_dsb` at byte 0, each allocation group's (AG's) free-space
//! header `struct xfs_agf` in the AG's second sector, and short-form B+tree blocks
//! (`struct xfs_btree_block` with `struct xfs_btree_block_shdr` on v5) whose leaves hold
//! `struct xfs_alloc_rec` {startblock, blockcount} and whose nodes hold
//! `struct xfs_alloc_rec` keys and `xfs_alloc_ptr_t` pointers. Everything is big-endian
//! except the v5 CRCs (little-endian CRC-32C).
//!
//! Only bnobt records are free. The AG headers, the internal log, every B+tree block and
//! the AG free list (AGFL: blocks held back for B+tree growth, counted neither in the
//! bnobt nor in `agf_freeblks`) stay in use.
//!
//! Every structure is checked before it is believed: the superblock's geometry against
//! itself and the partition, each AGF's sequence number, length and B+tree roots, each
//! B+tree block's magic, level, record count, sibling links and (v5) CRC, owner, disk
//! address and UUID, and the records' order and bounds. The records of each AG must add
//! up to `agf_freeblks` and their longest must be `agf_longest`; the kernel maintains
//! both exactly, and real `mkfs.xfs` / `xfs_repair` output satisfies them.
//!
//! Not checked: whether the log is clean. A file system imaged while mounted, or after a
//! crash, may have free-space changes that only log recovery applies; only the v5
//! `sb_features_log_incompat` bits (set while the log holds items that need them) are
//! taken as a sign of that.

use super::{FreeList, FreeSpace, FsError, FsKind, Part, damaged};
use crate::layout::ByteRange;
use crc::{CRC_32_ISCSI, Crc};

const KIND: FsKind = FsKind::Xfs;

/// `XFS_SB_MAGIC`.
const SB_MAGIC: &[u8; 4] = b"XFSB";
/// `XFS_AGF_MAGIC`.
const AGF_MAGIC: &[u8; 4] = b"XAGF";
/// `XFS_ABTB_MAGIC` (v4) and `XFS_ABTB_CRC_MAGIC` (v5): bnobt blocks.
const BNOBT_MAGIC_V4: &[u8; 4] = b"ABTB";
const BNOBT_MAGIC_V5: &[u8; 4] = b"AB3B";
/// `XFS_AGF_VERSION`.
const AGF_VERSION: u32 = 1;
/// `NULLAGBLOCK`: no left or right sibling.
const NULL_AGBLOCK: u32 = u32::MAX;
/// `XFS_MIN_AG_BLOCKS`: the kernel refuses smaller allocation groups.
const MIN_AG_BLOCKS: u64 = 64;
/// `XFS_BTREE_MAXLEVELS` of the kernels before per-tree limits; an AG of 2^31 blocks
/// needs far fewer levels of free-space B+tree.
const MAX_BTREE_LEVELS: u32 = 9;
/// The sectors at an AG's start: superblock, AGF, AGI, AGFL (`XFS_AGFL_DADDR` is 3).
const AG_HEADER_SECTORS: u64 = 4;

/// Offsets in `struct xfs_dsb`.
mod dsb {
    pub const BLOCKSIZE: usize = 4;
    pub const DBLOCKS: usize = 8;
    pub const UUID: usize = 32;
    pub const LOGSTART: usize = 48;
    pub const AGBLOCKS: usize = 84;
    pub const AGCOUNT: usize = 88;
    pub const LOGBLOCKS: usize = 96;
    pub const VERSIONNUM: usize = 100;
    pub const SECTSIZE: usize = 102;
    pub const BLOCKLOG: usize = 120;
    pub const SECTLOG: usize = 121;
    pub const AGBLKLOG: usize = 124;
    pub const INPROGRESS: usize = 126;
    pub const FEATURES_INCOMPAT: usize = 216;
    pub const FEATURES_LOG_INCOMPAT: usize = 220;
    pub const CRC: usize = 224;
    pub const META_UUID: usize = 248;
}

/// Offsets in `struct xfs_agf`.
mod agf {
    pub const VERSIONNUM: usize = 4;
    pub const SEQNO: usize = 8;
    pub const LENGTH: usize = 12;
    /// `agf_bno_root` (`agf_roots[XFS_BTNUM_BNO]`).
    pub const BNO_ROOT: usize = 16;
    /// `agf_bno_level` (`agf_levels[XFS_BTNUM_BNO]`).
    pub const BNO_LEVEL: usize = 28;
    pub const FREEBLKS: usize = 52;
    pub const LONGEST: usize = 56;
    pub const UUID: usize = 64;
    pub const CRC: usize = 216;
}

/// Offsets in `struct xfs_btree_block` (short form).
mod btree {
    pub const LEVEL: usize = 4;
    pub const NUMRECS: usize = 6;
    pub const LEFTSIB: usize = 8;
    pub const RIGHTSIB: usize = 12;
    /// `XFS_BTREE_SBLOCK_LEN`.
    pub const HEADER_V4: usize = 16;
    /// v5 tail (`struct xfs_btree_block_shdr`): disk address, LSN, UUID, owner, CRC.
    pub const BLKNO: usize = 16;
    pub const UUID: usize = 32;
    pub const OWNER: usize = 48;
    pub const CRC: usize = 52;
    /// `XFS_BTREE_SBLOCK_CRC_LEN`.
    pub const HEADER_V5: usize = 56;
    /// `struct xfs_alloc_rec` and `xfs_alloc_key`: {startblock, blockcount}.
    pub const REC_LEN: usize = 8;
    /// `xfs_alloc_ptr_t`.
    pub const PTR_LEN: usize = 4;
}

/// Superblock incompatible features (`XFS_SB_FEAT_INCOMPAT_*`) that leave the data
/// section's free-space B+trees as this reader expects: FTYPE, SPINODES, META_UUID,
/// BIGTIME, NREXT64, EXCHRANGE, PARENT, METADIR, ZONED (a zoned realtime section lies
/// after `sb_dblocks` and is written in full). NEEDSREPAIR (1 << 4) and bits from
/// kernels newer than this list are refused.
const KNOWN_INCOMPAT: u32 = 0b11_1110_1111;

/// `xfs_sb_version_hascrc`: version 5 superblocks carry CRCs and self-describing headers.
const VERSION_5: u16 = 5;

const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// Recognises an XFS superblock.
pub fn probe(head: &[u8]) -> Option<FsKind> {
    (head.get(..4) == Some(SB_MAGIC.as_slice())).then_some(KIND)
}

/// The free extents of the XFS file system at the start of `part`.
pub fn free_space(part: &mut Part<'_>, _kind: FsKind) -> Result<FreeSpace, FsError> {
    let geo = read_superblock(part)?;
    let mut free = FreeList::new(KIND);
    for agno in 0..geo.ag_count {
        let agf = read_agf(part, &geo, agno)?;
        let tally = collect_ag_free_extents(part, &geo, agno, &agf, &mut free)?;
        tally.check_against(&agf, agno)?;
    }
    let space = free.finish(geo.fs_len())?;
    check_log_is_not_free(&geo, &space.free)?;
    Ok(space)
}

/// What the superblock says about where things are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Geometry {
    block_size: u64,
    sector_size: u64,
    /// Blocks in every AG but possibly the last.
    ag_blocks: u64,
    ag_count: u64,
    /// Blocks in the data section (the file system's size).
    data_blocks: u64,
    /// Version 5: CRCs and self-describing B+tree headers.
    v5: bool,
    /// The UUID stamped into v5 metadata (`sb_meta_uuid` when META_UUID is set).
    meta_uuid: [u8; 16],
    /// The internal log, in bytes from the partition start.
    log: Option<ByteRange>,
}

impl Geometry {
    fn fs_len(&self) -> u64 {
        // Cannot overflow: checked against the partition when the superblock was read.
        self.data_blocks * self.block_size
    }

    /// Blocks in AG `agno` (the last AG holds what is left of `sb_dblocks`).
    fn ag_len(&self, agno: u64) -> u64 {
        let start = agno * self.ag_blocks;
        (self.data_blocks - start).min(self.ag_blocks)
    }

    /// Byte offset of block `agbno` of AG `agno`.
    fn byte_offset(&self, agno: u64, agbno: u64) -> u64 {
        (agno * self.ag_blocks + agbno) * self.block_size
    }

    /// The first block after the AG headers (`XFS_AGFL_BLOCK + 1`): no B+tree block or
    /// free extent can lie before it.
    fn first_usable_agbno(&self) -> u64 {
        (AG_HEADER_SECTORS * self.sector_size).div_ceil(self.block_size)
    }

    fn btree_header_len(&self) -> usize {
        if self.v5 {
            btree::HEADER_V5
        } else {
            btree::HEADER_V4
        }
    }

    /// `xfs_allocbt_maxrecs` for leaves.
    fn leaf_max_records(&self) -> usize {
        (self.block_size as usize - self.btree_header_len()) / btree::REC_LEN
    }

    /// `xfs_allocbt_maxrecs` for nodes: pointers start after this many keys.
    fn node_max_records(&self) -> usize {
        (self.block_size as usize - self.btree_header_len()) / (btree::REC_LEN + btree::PTR_LEN)
    }
}

fn read_superblock(part: &mut Part<'_>) -> Result<Geometry, FsError> {
    // The smallest sector first: it holds every field, including the real sector size.
    let first = part.read_vec(KIND, 0, 512)?;
    let sector_size = u64::from(be16(&first, dsb::SECTSIZE)?);
    if !is_power_of_two_in(sector_size, 512, 32768) {
        return Err(damaged(KIND, format!("sector size {sector_size}")));
    }
    let sb = part.read_vec(KIND, 0, sector_size)?;
    let geo = parse_superblock(&sb)?;
    if geo.fs_len() > part.len() {
        return Err(FsError::Truncated {
            kind: KIND,
            what: "the end of its partition",
            detail: format!(
                "the superblock declares {} bytes, the partition holds {}",
                geo.fs_len(),
                part.len()
            ),
        });
    }
    Ok(geo)
}

/// Checks the superblock (one sector) the way `xfs_validate_sb_common` does for the
/// fields this reader depends on, and returns its geometry.
fn parse_superblock(sb: &[u8]) -> Result<Geometry, FsError> {
    if sb.get(..4) != Some(SB_MAGIC.as_slice()) {
        return Err(damaged(KIND, "no XFS superblock magic"));
    }
    let version = be16(sb, dsb::VERSIONNUM)? & 0xf;
    let v5 = match version {
        4 => false,
        VERSION_5 => true,
        _ => return Err(damaged(KIND, format!("superblock version {version}"))),
    };
    if v5 {
        check_v5_superblock(sb)?;
    }
    if byte(sb, dsb::INPROGRESS)? != 0 {
        return Err(damaged(KIND, "mkfs did not finish (sb_inprogress is set)"));
    }
    let (block_size, sector_size) = block_and_sector_size(sb)?;
    let (ag_blocks, ag_count, data_blocks) = ag_geometry(sb)?;
    if data_blocks.checked_mul(block_size).is_none() {
        return Err(damaged(KIND, "the file system size overflows"));
    }
    let mut geo = Geometry {
        block_size,
        sector_size,
        ag_blocks,
        ag_count,
        data_blocks,
        v5,
        meta_uuid: meta_uuid(sb, v5)?,
        log: None,
    };
    geo.log = internal_log(sb, &geo)?;
    Ok(geo)
}

/// `sb_blocksize` (a power of two, 512..=64 KiB) and `sb_sectsize` (a power of two,
/// 512..=32 KiB, at most a block), each matching its log2 field.
fn block_and_sector_size(sb: &[u8]) -> Result<(u64, u64), FsError> {
    let block_size = u64::from(be32(sb, dsb::BLOCKSIZE)?);
    let sector_size = u64::from(be16(sb, dsb::SECTSIZE)?);
    if !is_power_of_two_in(block_size, 512, 65536)
        || u32::from(byte(sb, dsb::BLOCKLOG)?) != block_size.trailing_zeros()
    {
        return Err(damaged(KIND, format!("block size {block_size}")));
    }
    if !is_power_of_two_in(sector_size, 512, 32768.min(block_size))
        || u32::from(byte(sb, dsb::SECTLOG)?) != sector_size.trailing_zeros()
    {
        return Err(damaged(
            KIND,
            format!("sector size {sector_size} with {block_size}-byte blocks"),
        ));
    }
    Ok((block_size, sector_size))
}

/// `sb_agblocks`, `sb_agcount` and `sb_dblocks`: every AG but the last is full, the
/// last holds at least one block, and `sb_agblklog` numbers an AG's blocks.
fn ag_geometry(sb: &[u8]) -> Result<(u64, u64, u64), FsError> {
    let ag_blocks = u64::from(be32(sb, dsb::AGBLOCKS)?);
    let ag_count = u64::from(be32(sb, dsb::AGCOUNT)?);
    let data_blocks = be64(sb, dsb::DBLOCKS)?;
    if ag_count == 0 || ag_blocks < MIN_AG_BLOCKS {
        return Err(damaged(
            KIND,
            format!("{ag_count} allocation groups of {ag_blocks} blocks"),
        ));
    }
    if u32::from(byte(sb, dsb::AGBLKLOG)?) != ceil_log2(ag_blocks) {
        return Err(damaged(KIND, "sb_agblklog does not match sb_agblocks"));
    }
    if data_blocks > ag_count * ag_blocks || data_blocks <= (ag_count - 1) * ag_blocks {
        return Err(damaged(
            KIND,
            format!("{data_blocks} blocks do not fill {ag_count} allocation groups of {ag_blocks}"),
        ));
    }
    Ok((ag_blocks, ag_count, data_blocks))
}

/// v5 only: the superblock's CRC, and the feature bits that make its free space
/// unreliable or not understood.
fn check_v5_superblock(sb: &[u8]) -> Result<(), FsError> {
    if !crc_matches(sb, dsb::CRC) {
        return Err(damaged(KIND, "the superblock's CRC does not match"));
    }
    let incompat = be32(sb, dsb::FEATURES_INCOMPAT)?;
    if incompat & !KNOWN_INCOMPAT != 0 {
        return Err(damaged(
            KIND,
            format!("unknown or repair-needed incompatible features {incompat:#x}"),
        ));
    }
    // Set while the log holds items that need them; clear after a clean unmount.
    let log_incompat = be32(sb, dsb::FEATURES_LOG_INCOMPAT)?;
    if log_incompat != 0 {
        return Err(damaged(
            KIND,
            format!("log-incompatible features {log_incompat:#x} are set: the log needs recovery"),
        ));
    }
    Ok(())
}

/// The UUID v5 metadata headers carry: `sb_meta_uuid` with the META_UUID feature (the
/// user-visible UUID was changed), otherwise `sb_uuid`. Unused on v4.
fn meta_uuid(sb: &[u8], v5: bool) -> Result<[u8; 16], FsError> {
    /// `XFS_SB_FEAT_INCOMPAT_META_UUID`.
    const META_UUID: u32 = 1 << 2;
    let at = if v5 && be32(sb, dsb::FEATURES_INCOMPAT)? & META_UUID != 0 {
        dsb::META_UUID
    } else {
        dsb::UUID
    };
    uuid(sb, at)
}

/// The internal log's bytes (`sb_logstart` non-zero), checked to lie inside one AG.
fn internal_log(sb: &[u8], geo: &Geometry) -> Result<Option<ByteRange>, FsError> {
    let start = be64(sb, dsb::LOGSTART)?;
    if start == 0 {
        return Ok(None); // an external log device
    }
    // `sb_logstart` is an `xfs_fsblock_t`: AG number above `sb_agblklog` bits.
    let ag_bits = ceil_log2(geo.ag_blocks);
    let agno = start >> ag_bits;
    let agbno = start & ((1u64 << ag_bits) - 1);
    let blocks = u64::from(be32(sb, dsb::LOGBLOCKS)?);
    if agno >= geo.ag_count || blocks == 0 || agbno + blocks > geo.ag_len(agno) {
        return Err(damaged(
            KIND,
            format!(
                "the internal log ({blocks} blocks at AG {agno} block {agbno}) is not inside an allocation group"
            ),
        ));
    }
    Ok(Some(ByteRange::new(
        geo.byte_offset(agno, agbno),
        blocks * geo.block_size,
    )))
}

/// The fields of an AG's free-space header this reader uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Agf {
    /// Blocks in this AG.
    length: u64,
    bno_root: u32,
    bno_levels: u32,
    free_blocks: u64,
    longest: u64,
}

fn read_agf(part: &mut Part<'_>, geo: &Geometry, agno: u64) -> Result<Agf, FsError> {
    let at = geo.byte_offset(agno, 0) + geo.sector_size;
    let buf = part.read_vec(KIND, at, geo.sector_size)?;
    parse_agf(&buf, geo, agno)
}

/// Checks an AGF the way `xfs_agf_verify` does for the fields used here.
fn parse_agf(b: &[u8], geo: &Geometry, agno: u64) -> Result<Agf, FsError> {
    let bad = |what: String| damaged(KIND, format!("AG {agno}'s AGF: {what}"));
    if b.get(..4) != Some(AGF_MAGIC.as_slice()) {
        return Err(bad("no XAGF magic".into()));
    }
    if be32(b, agf::VERSIONNUM)? != AGF_VERSION {
        return Err(bad("unknown version".into()));
    }
    if u64::from(be32(b, agf::SEQNO)?) != agno {
        return Err(bad("wrong sequence number".into()));
    }
    if geo.v5 {
        if uuid(b, agf::UUID)? != geo.meta_uuid {
            return Err(bad("UUID of another file system".into()));
        }
        if !crc_matches(b, agf::CRC) {
            return Err(bad("CRC does not match".into()));
        }
    }
    let agf = Agf {
        length: u64::from(be32(b, agf::LENGTH)?),
        bno_root: be32(b, agf::BNO_ROOT)?,
        bno_levels: be32(b, agf::BNO_LEVEL)?,
        free_blocks: u64::from(be32(b, agf::FREEBLKS)?),
        longest: u64::from(be32(b, agf::LONGEST)?),
    };
    if agf.length != geo.ag_len(agno) {
        return Err(bad(format!(
            "length {} where the superblock gives {}",
            agf.length,
            geo.ag_len(agno)
        )));
    }
    if !(1..=MAX_BTREE_LEVELS).contains(&agf.bno_levels) {
        return Err(bad(format!("{} free-space B+tree levels", agf.bno_levels)));
    }
    if !is_btree_block(geo, &agf, agf.bno_root) {
        return Err(bad(format!(
            "free-space B+tree root at block {}",
            agf.bno_root
        )));
    }
    if agf.free_blocks > agf.length || agf.longest > agf.free_blocks {
        return Err(bad("more free blocks than the AG holds".into()));
    }
    Ok(agf)
}

/// True if `agbno` may hold a B+tree block: past the AG headers, inside the AG.
fn is_btree_block(geo: &Geometry, agf: &Agf, agbno: u32) -> bool {
    let agbno = u64::from(agbno);
    agbno >= geo.first_usable_agbno() && agbno < agf.length
}

/// What one AG's bnobt records add up to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct AgTally {
    blocks: u64,
    longest: u64,
}

impl AgTally {
    /// `agf_freeblks` and `agf_longest` are the sum and maximum of the bnobt records.
    fn check_against(&self, agf: &Agf, agno: u64) -> Result<(), FsError> {
        if self.blocks != agf.free_blocks || self.longest != agf.longest {
            return Err(damaged(
                KIND,
                format!(
                    "AG {agno}'s free-space B+tree holds {} free blocks (longest {}), its AGF says {} (longest {})",
                    self.blocks, self.longest, agf.free_blocks, agf.longest
                ),
            ));
        }
        Ok(())
    }
}

/// Walks AG `agno`'s bnobt in key order and adds its records to `free`.
fn collect_ag_free_extents(
    part: &mut Part<'_>,
    geo: &Geometry,
    agno: u64,
    agf: &Agf,
    free: &mut FreeList,
) -> Result<AgTally, FsError> {
    let mut tally = AgTally::default();
    // Records must come in increasing block order without overlapping: the next one
    // starts at or after this block.
    let mut next_start = geo.first_usable_agbno();
    walk_bnobt(part, geo, agno, agf, |start, count| {
        let end = start + count; // two u32s: cannot overflow a u64
        if count == 0 || start < next_start || end > agf.length {
            return Err(damaged(
                KIND,
                format!(
                    "AG {agno}'s free-space record {start}+{count} is out of order or outside blocks {next_start}..{}",
                    agf.length
                ),
            ));
        }
        next_start = end;
        tally.blocks += count;
        tally.longest = tally.longest.max(count);
        free.push(geo.byte_offset(agno, start), count * geo.block_size)
    })?;
    Ok(tally)
}

/// A B+tree block still to be read, with what its parent says about it.
#[derive(Debug, Clone, Copy)]
struct Pending {
    agbno: u32,
    level: u32,
    /// The parent's key for it: its first record's startblock (`None` for the root).
    low_key: Option<u32>,
}

/// A block already read at some level, for the sibling-link checks.
#[derive(Debug, Clone, Copy)]
struct Visited {
    agbno: u32,
    right: u32,
}

/// Reads the bnobt depth first, left to right, calling `record(startblock, blockcount)`
/// for every leaf record in key order.
///
/// Each block's level must be one below its parent's, so the walk cannot loop; it reads
/// at most as many blocks as the AG holds, and each level's blocks must be linked left to
/// right by their sibling pointers exactly in the order the walk meets them.
fn walk_bnobt(
    part: &mut Part<'_>,
    geo: &Geometry,
    agno: u64,
    agf: &Agf,
    mut record: impl FnMut(u64, u64) -> Result<(), FsError>,
) -> Result<(), FsError> {
    let mut stack = vec![Pending {
        agbno: agf.bno_root,
        level: agf.bno_levels - 1,
        low_key: None,
    }];
    let mut last_at_level: Vec<Option<Visited>> = vec![None; agf.bno_levels as usize];
    let mut buf = vec![0u8; geo.block_size as usize];
    let mut blocks_read = 0u64;
    while let Some(pending) = stack.pop() {
        blocks_read += 1;
        if blocks_read > agf.length {
            return Err(damaged(
                KIND,
                format!("AG {agno}'s free-space B+tree has more blocks than the AG"),
            ));
        }
        part.read(
            KIND,
            geo.byte_offset(agno, u64::from(pending.agbno)),
            &mut buf,
        )?;
        let header = check_block_header(&buf, geo, agno, agf, pending)?;
        link_sibling(&mut last_at_level, pending, &header, agno)?;
        if pending.level == 0 {
            for (start, count) in leaf_records(&buf, geo, &header)? {
                record(u64::from(start), u64::from(count))?;
            }
        } else {
            let children = node_children(&buf, geo, agno, agf, &header, pending)?;
            stack.extend(children.into_iter().rev());
        }
    }
    // The rightmost block of every level ends its level's chain.
    for last in last_at_level.iter().flatten() {
        if last.right != NULL_AGBLOCK {
            return Err(damaged(
                KIND,
                format!(
                    "AG {agno}'s free-space B+tree block {} has a right sibling the walk never reached",
                    last.agbno
                ),
            ));
        }
    }
    Ok(())
}

/// The parts of a B+tree block header the walk uses.
#[derive(Debug, Clone, Copy)]
struct BlockHeader {
    records: usize,
    left: u32,
    right: u32,
}

/// Checks magic, level, record count and (v5) CRC, owner, disk address and UUID, the way
/// `xfs_btree_sblock_verify` and `xfs_btree_sblock_v5hdr_verify` do.
fn check_block_header(
    b: &[u8],
    geo: &Geometry,
    agno: u64,
    agf: &Agf,
    pending: Pending,
) -> Result<BlockHeader, FsError> {
    let bad = |what: &str| {
        damaged(
            KIND,
            format!(
                "AG {agno}'s free-space B+tree block {}: {what}",
                pending.agbno
            ),
        )
    };
    let magic = if geo.v5 {
        BNOBT_MAGIC_V5
    } else {
        BNOBT_MAGIC_V4
    };
    if b.get(..4) != Some(magic.as_slice()) {
        return Err(bad("wrong magic"));
    }
    if geo.v5 {
        let daddr = geo.byte_offset(agno, u64::from(pending.agbno)) / 512;
        if be64(b, btree::BLKNO)? != daddr {
            return Err(bad("records another disk address"));
        }
        if u64::from(be32(b, btree::OWNER)?) != agno {
            return Err(bad("owned by another allocation group"));
        }
        if uuid(b, btree::UUID)? != geo.meta_uuid {
            return Err(bad("UUID of another file system"));
        }
        if !crc_matches(b, btree::CRC) {
            return Err(bad("CRC does not match"));
        }
    }
    if u32::from(be16(b, btree::LEVEL)?) != pending.level {
        return Err(bad("not at the level its parent puts it"));
    }
    let records = usize::from(be16(b, btree::NUMRECS)?);
    let is_root = pending.low_key.is_none();
    let max = if pending.level == 0 {
        geo.leaf_max_records()
    } else {
        geo.node_max_records()
    };
    // Only a root leaf may be empty (an AG with no free space at all).
    let min = if pending.level == 0 && is_root { 0 } else { 1 };
    if records < min || records > max {
        return Err(bad("record count out of range"));
    }
    let header = BlockHeader {
        records,
        left: be32(b, btree::LEFTSIB)?,
        right: be32(b, btree::RIGHTSIB)?,
    };
    for sibling in [header.left, header.right] {
        if sibling != NULL_AGBLOCK && !is_btree_block(geo, agf, sibling) {
            return Err(bad("sibling pointer outside the AG"));
        }
    }
    Ok(header)
}

/// Each level is a doubly linked list in key order: this block must be the right
/// sibling of the block met before it at its level, and point back to it.
fn link_sibling(
    last_at_level: &mut [Option<Visited>],
    pending: Pending,
    header: &BlockHeader,
    agno: u64,
) -> Result<(), FsError> {
    let slot = last_at_level
        .get_mut(pending.level as usize)
        .ok_or_else(|| damaged(KIND, "B+tree level out of range"))?;
    let linked = match *slot {
        None => header.left == NULL_AGBLOCK,
        Some(prev) => prev.right == pending.agbno && header.left == prev.agbno,
    };
    if !linked {
        return Err(damaged(
            KIND,
            format!(
                "AG {agno}'s free-space B+tree block {} is not linked to its left neighbour",
                pending.agbno
            ),
        ));
    }
    *slot = Some(Visited {
        agbno: pending.agbno,
        right: header.right,
    });
    Ok(())
}

/// A leaf's {startblock, blockcount} records.
fn leaf_records(
    b: &[u8],
    geo: &Geometry,
    header: &BlockHeader,
) -> Result<Vec<(u32, u32)>, FsError> {
    let base = geo.btree_header_len();
    (0..header.records)
        .map(|i| {
            let at = base + i * btree::REC_LEN;
            Ok((be32(b, at)?, be32(b, at + 4)?))
        })
        .collect()
}

/// A node's children in key order. Keys must increase, pointers must lie in the AG, and
/// the node's first key must be its own low key as its parent recorded it.
fn node_children(
    b: &[u8],
    geo: &Geometry,
    agno: u64,
    agf: &Agf,
    header: &BlockHeader,
    pending: Pending,
) -> Result<Vec<Pending>, FsError> {
    let keys_at = geo.btree_header_len();
    // `XFS_ALLOC_PTR_ADDR`: pointers follow room for the maximum number of keys.
    let ptrs_at = keys_at + geo.node_max_records() * btree::REC_LEN;
    let mut children = Vec::with_capacity(header.records);
    for i in 0..header.records {
        let key = be32(b, keys_at + i * btree::REC_LEN)?;
        let ptr = be32(b, ptrs_at + i * btree::PTR_LEN)?;
        let prev_key = children.last().and_then(|c: &Pending| c.low_key);
        if prev_key.is_some_and(|prev| key <= prev) || !is_btree_block(geo, agf, ptr) {
            return Err(damaged(
                KIND,
                format!(
                    "AG {agno}'s free-space B+tree node {} has a bad key or pointer",
                    pending.agbno
                ),
            ));
        }
        children.push(Pending {
            agbno: ptr,
            level: pending.level - 1,
            low_key: Some(key),
        });
    }
    check_low_key(b, geo, agno, pending)?;
    Ok(children)
}

/// A non-root block's first key (node) or first record's startblock (leaf) is the key
/// its parent holds for it (`xfs_btree_update_keys` keeps them equal).
fn check_low_key(b: &[u8], geo: &Geometry, agno: u64, pending: Pending) -> Result<(), FsError> {
    let Some(expected) = pending.low_key else {
        return Ok(());
    };
    if be32(b, geo.btree_header_len())? != expected {
        return Err(damaged(
            KIND,
            format!(
                "AG {agno}'s free-space B+tree block {} does not start at its parent's key {expected}",
                pending.agbno
            ),
        ));
    }
    Ok(())
}

/// The internal log is never free space; a free extent over it means the AGFs and the
/// superblock disagree.
fn check_log_is_not_free(geo: &Geometry, free: &[ByteRange]) -> Result<(), FsError> {
    let Some(log) = geo.log else {
        return Ok(());
    };
    if let Some(overlap) = free.iter().find(|r| r.overlaps(&log)) {
        return Err(damaged(
            KIND,
            format!("free space ({overlap}) overlaps the internal log ({log})"),
        ));
    }
    Ok(())
}

/// v5 CRC: CRC-32C of the structure with its CRC field taken as zero, stored
/// little-endian (`xfs_start_cksum_safe` / `xfs_end_cksum`).
fn crc_matches(b: &[u8], crc_at: usize) -> bool {
    let (Some(before), Some(stored), Some(after)) = (
        b.get(..crc_at),
        b.get(crc_at..crc_at + 4),
        b.get(crc_at + 4..),
    ) else {
        return false;
    };
    let mut digest = CRC32C.digest();
    digest.update(before);
    digest.update(&[0; 4]);
    digest.update(after);
    stored == digest.finalize().to_le_bytes()
}

/// `n` is a power of two in `min..=max`.
fn is_power_of_two_in(n: u64, min: u64, max: u64) -> bool {
    n.is_power_of_two() && (min..=max).contains(&n)
}

/// The number of bits needed to number `n` things: `xfs_highbit32(n - 1) + 1`.
fn ceil_log2(n: u64) -> u32 {
    u64::BITS - n.saturating_sub(1).leading_zeros()
}

fn field<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], FsError> {
    super::field(KIND, b, at)
}

fn byte(b: &[u8], at: usize) -> Result<u8, FsError> {
    field::<1>(b, at).map(|[v]| v)
}

fn be16(b: &[u8], at: usize) -> Result<u16, FsError> {
    field(b, at).map(u16::from_be_bytes)
}

fn be32(b: &[u8], at: usize) -> Result<u32, FsError> {
    field(b, at).map(u32::from_be_bytes)
}

fn be64(b: &[u8], at: usize) -> Result<u64, FsError> {
    field(b, at).map(u64::from_be_bytes)
}

fn uuid(b: &[u8], at: usize) -> Result<[u8; 16], FsError> {
    field(b, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_log2_counts_the_bits_of_the_largest_block_number() {
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(2), 1);
        assert_eq!(ceil_log2(64), 6);
        assert_eq!(ceil_log2(20480), 15);
        assert_eq!(ceil_log2(32768), 15);
        assert_eq!(ceil_log2(32769), 16);
    }

    #[test]
    fn crc_of_a_structure_treats_its_own_crc_field_as_zero() {
        let mut b = vec![0xA5u8; 512];
        b[100..104].copy_from_slice(&[0; 4]);
        let crc = CRC32C.checksum(&b);
        b[100..104].copy_from_slice(&crc.to_le_bytes());
        assert!(crc_matches(&b, 100));
        b[7] ^= 1;
        assert!(!crc_matches(&b, 100));
        assert!(
            !crc_matches(&b, 510),
            "a CRC field past the end never matches"
        );
    }

    #[test]
    fn fields_past_the_end_are_errors_not_panics() {
        let b = [1u8, 2, 3];
        assert_eq!(be16(&b, 1).unwrap(), 0x0203);
        assert!(be32(&b, 0).is_err());
        assert!(be64(&b, usize::MAX).is_err());
    }

    #[test]
    fn probe_wants_the_superblock_magic() {
        assert_eq!(probe(b"XFSB\0\0"), Some(FsKind::Xfs));
        assert_eq!(probe(b"XFS"), None);
        assert_eq!(probe(b"XAGF"), None);
    }

    #[test]
    fn node_pointers_follow_room_for_the_largest_key_count() {
        let v4 = Geometry {
            block_size: 4096,
            sector_size: 512,
            ag_blocks: 1 << 15,
            ag_count: 1,
            data_blocks: 1 << 15,
            v5: false,
            meta_uuid: [0; 16],
            log: None,
        };
        let v5 = Geometry {
            v5: true,
            ..v4.clone()
        };
        assert_eq!(v4.leaf_max_records(), 510);
        assert_eq!(v4.node_max_records(), 340);
        assert_eq!(v5.leaf_max_records(), 505);
        assert_eq!(v5.node_max_records(), 336);
        assert_eq!(v4.first_usable_agbno(), 1);
        let tiny = Geometry {
            block_size: 512,
            ..v4
        };
        assert_eq!(tiny.first_usable_agbno(), 4);
    }
}
