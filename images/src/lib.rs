//! Disk image layouts and formats shared by the flasher and the Talos overlay installer.
//!
//! Every offset both sides must agree on (where the bootloader goes, how far the GPT
//! entry array is pushed out, which regions must never be sparse-skipped) is defined once
//! here, so the two can never drift apart. The crate knows nothing of USB or files: it
//! takes bytes, a [`read_at::ReadAt`] source (in-memory windows, a closure, any
//! `Read + Seek`), or streamed chunks.
//!
//! # Modules
//! - [`layout`]: board layouts ([`NANOPI_M6`]) and [`ByteRange`].
//! - [`gpt`]: protective MBR, both GPT copies, CRCs, entries, a printable table and a
//!   precise list of problems ([`gpt::GptReport`]).
//! - [`regions`]: must-write regions (prefix, META, layout ranges) and the trailing wipe.
//! - [`fs`]: XFS, FAT and ext2/3/4 free-space accounting (what a file system calls free).
//! - [`sparse`]: which zero runs a sparse flash may skip (free space, gaps between
//!   partitions) and which it must write, per partition, with the reason.
//! - [`plan`]: the streaming write planner (sparse / full / bmap-mapped).
//! - [`zero`]: the word-wise zero test the planner uses.
//! - [`bmap`]: bmaptool XML 1.x/2.0 parsing, file checksum, streaming range verifier.
//! - [`bootloader`]: recognising an ID block (RKNS or RC4) at the bootloader sector.
//! - [`preflight`]: the check before the first write; errors and warnings as sentences.
//! - `adapt` (feature `adapt`, on by default): a generic Talos image (systemd-boot + UKI)
//!   turned into a board image: partitions moved, table rewritten, U-Boot and the DTB
//!   placed, described as segments a file writer or a flasher consumes.
//! - [`uki`]: the PE section table of unified kernel images, their `.cmdline` and
//!   `.osrel`, and what the command line means on the M6 (Omni, serial console).
//! - [`diskmap`]: a disk layout drawn to scale in a terminal.
//!
//! # How the flasher uses it
//!
//! ```no_run
//! use rockusb_images::{NANOPI_M6, plan, preflight, read_at::Window};
//! # fn demo(prefix: &[u8], image_len: Option<u64>, storage_len: u64,
//! #         chunks: impl Iterator<Item = (u64, Vec<u8>)>) -> Result<(), Box<dyn std::error::Error>> {
//! // 1. Buffer the first `must_write_prefix` bytes (11 MiB) of the decoded image, then:
//! let pf = preflight::preflight(
//!     Window::new(0, prefix),
//!     preflight::PreflightInput {
//!         layout: &NANOPI_M6,
//!         image_len,                 // xz index / file size, or None for a pipe
//!         storage_len: Some(storage_len),
//!         check_backup_gpt: false,   // the tail has not arrived yet
//!     },
//! )?;
//! for warning in pf.warnings() { eprintln!("warning: {warning}"); }
//! if !pf.may_flash() {
//!     for error in pf.errors() { eprintln!("error: {error}"); }
//!     return Ok(());
//! }
//! // 2. Plan: must-write regions (prefix + META) plus every non-zero 4 KiB block.
//! let must_write = pf.must_write.clone().unwrap_or_default();
//! let mut planner = plan::Planner::new(plan::PlanConfig::sparse(must_write.merged()))?;
//! let mut extents = Vec::new();
//! for (offset, chunk) in chunks {
//!     planner.plan_chunk(offset, &chunk, &mut extents)?;
//!     for e in &extents {
//!         let bytes = &chunk[(e.start - offset) as usize..][..e.len as usize];
//!         // hash + write `bytes` at `e.start`
//! #       let _ = bytes;
//!     }
//! }
//! // 3. Zero `must_write.wipe_after_image` (the device's old backup GPT).
//! let stats = planner.stats(); // bytes_to_write, bytes_skipped, extents
//! # let _ = stats; Ok(()) }
//! ```
//!
//! - `--full`: [`plan::PlanConfig::full`].
//! - `--bmap FILE`: [`bmap::Bmap::parse`] (checks the file's own checksum), then
//!   [`plan::PlanConfig::mapped`] with [`bmap::Bmap::mapped_byte_ranges`] (add the
//!   must-write regions for a Talos image, or pass none to write exactly the mapped
//!   ranges), and feed the written bytes to [`bmap::Bmap::verifier`]: `feed` fails at the
//!   first range whose checksum is wrong, `finish` if a range never got all its bytes.
//! - Backup GPT of a streamed image: push every chunk into a [`read_at::TailBuffer`]
//!   (64 KiB), and at the end read the table again from [`read_at::Windows`] of the
//!   prefix and `tail.window()`, with `len` set and `check_backup: true`.
//! - `rockusb gpt [IMAGE]`: [`gpt::GptReport::read`] on a
//!   [`read_at::SeekReader`] (image) or a [`read_at::ReadAtFn`] reading LBAs over USB
//!   (board), with `len` set; print it with `{}`.
//!
//! Chunks must arrive in order, each a whole number of 4 KiB blocks except the last; the
//! last extent may end mid-sector at an image end that is not sector-aligned (the writer
//! pads that sector).

#![forbid(unsafe_code)]

#[cfg(feature = "adapt")]
pub mod adapt;
#[cfg(feature = "bmap")]
pub mod bmap;
pub mod bootloader;
pub mod diskmap;
pub mod fs;
pub mod gpt;
pub mod layout;
pub mod plan;
pub mod preflight;
pub mod read_at;
pub mod regions;
pub mod sparse;
pub mod uki;
pub mod units;
pub mod zero;

pub use layout::{BoardLayout, ByteRange, NANOPI_M6};
