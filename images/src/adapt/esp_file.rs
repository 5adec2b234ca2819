//! Writing one file into the EFI system partition through the FAT library, with every
//! change captured as sector patches instead of written to the source.

use super::sector_overlay::SectorOverlay;
use crate::layout::ByteRange;
use crate::read_at::ReadAt;
use std::io::{self, Read, Write};

/// The clock the FAT library stamps new entries with: fixed, so the same inputs give the
/// same output bytes whether an image is adapted to a file or while flashing (the FAT
/// epoch, 1980-01-01 00:00, as reproducible-build tools use).
#[derive(Debug)]
struct FixedClock;

impl fatfs::TimeProvider for FixedClock {
    fn get_current_date(&self) -> fatfs::Date {
        fatfs::Date {
            year: 1980,
            month: 1,
            day: 1,
        }
    }

    fn get_current_date_time(&self) -> fatfs::DateTime {
        fatfs::DateTime {
            date: self.get_current_date(),
            time: fatfs::Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        }
    }
}

static FIXED_CLOCK: FixedClock = FixedClock;

pub(crate) fn fs_options() -> fatfs::FsOptions {
    fatfs::FsOptions::new()
        .time_provider(&FIXED_CLOCK)
        .update_accessed_date(false)
}

/// Creates (or replaces) `dirs/name` holding `contents` in the FAT file system at
/// `partition` of `source`, creating missing directories, and reads it back.
///
/// Returns the changed sector runs as (byte offset within the partition, bytes).
pub(crate) fn put_file(
    source: &mut dyn ReadAt,
    partition: ByteRange,
    dirs: &[&str],
    name: &str,
    contents: &[u8],
) -> io::Result<Vec<(u64, Vec<u8>)>> {
    let mut device = SectorOverlay::new(&mut *source, partition);
    let fs = fatfs::FileSystem::new(&mut device, fs_options())?;
    write_file(&fs, dirs, name, contents)?;
    // Unmounting writes the FSInfo free count and clears the dirty flag set on first write.
    fs.unmount()?;
    super::dot_entries::repair_new_directories(&mut device)?;
    read_back(&mut device, dirs, name, contents)?;
    Ok(device.changed_runs())
}

fn write_file<T: fatfs::ReadWriteSeek>(
    fs: &fatfs::FileSystem<T>,
    dirs: &[&str],
    name: &str,
    contents: &[u8],
) -> io::Result<()> {
    let mut dir = fs.root_dir();
    for d in dirs {
        dir = dir.create_dir(d)?;
    }
    let mut file = dir.create_file(name)?;
    file.truncate()?;
    file.write_all(contents)?;
    file.flush()
}

/// Mounts the changed file system again and checks the file holds `contents`, so a
/// library fault shows here rather than on the board.
fn read_back<S: ReadAt>(
    device: &mut SectorOverlay<S>,
    dirs: &[&str],
    name: &str,
    contents: &[u8],
) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    device.seek(SeekFrom::Start(0))?;
    let fs = fatfs::FileSystem::new(&mut *device, fs_options())?;
    let path = dirs
        .iter()
        .copied()
        .chain([name])
        .collect::<Vec<_>>()
        .join("/");
    let mut file = fs.root_dir().open_file(&path)?;
    let mut back = Vec::with_capacity(contents.len());
    file.read_to_end(&mut back)?;
    if back != contents {
        return Err(io::Error::other(format!(
            "{path} reads back {} bytes that differ from the {} written",
            back.len(),
            contents.len()
        )));
    }
    Ok(())
}
