//! The flash journal: how far an interrupted flash got, so `flash --resume` can continue it.
//!
//! One small JSON file per board and storage, in the user's state directory, written before
//! the first byte reaches the board and brought forward as runs are written (atomically:
//! write, sync, rename, so a crash or power loss of the host leaves the old record or the
//! new one, never half of one). It says which image (a digest of its stored bytes), which
//! board (port path, SoC, flash id, capacity) and storage, and the image offset below which
//! every planned run has been written. A successful flash removes it.
//!
//! Resuming trusts the journal only to say *where to look*: every run below that offset is
//! read back and compared with the image before it is skipped, and written again when it
//! differs (the board was swapped on the same port, the write never reached the medium).
//! The leading region (bootloader, GPT) and the old backup GPT's wipe are always written
//! again, last, in the crash-safe order of [`super`].

use crate::protocol::StorageKind;
use rockusb_images::units::human_bytes;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const VERSION: u32 = 1;
/// The journal is brought forward at most this often while runs go out …
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// … or once this much more has been written, whichever comes first.
const SAVE_EVERY_BYTES: u64 = 64 << 20;

/// Which image a flash wrote: the files it was made from, by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIdentity {
    /// The image's name as given (for messages only).
    pub name: String,
    /// Bytes of the stored (possibly compressed) file.
    pub stored_len: u64,
    /// xxh3-128 of the stored bytes of the image and of any file it was adapted with.
    pub digest: String,
}

impl ImageIdentity {
    /// Reads `image` (and the files it is adapted with, if any) to their end.
    pub fn of_files(image: &Path, extra: &[&Path]) -> io::Result<Self> {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut stored_len = 0;
        let mut buf = vec![0u8; 1 << 20];
        for (i, path) in std::iter::once(image)
            .chain(extra.iter().copied())
            .enumerate()
        {
            let mut file = std::fs::File::open(path)?;
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                if i == 0 {
                    stored_len += n as u64;
                }
            }
        }
        Ok(ImageIdentity {
            name: image.display().to_string(),
            stored_len,
            digest: format!("{:032x}", hasher.digest128()),
        })
    }
}

/// Which board and storage a flash wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardIdentity {
    pub port_path: String,
    pub soc: Option<String>,
    /// What READ_FLASH_ID returned, as text.
    pub flash_id: String,
    pub capacity: Option<u64>,
    pub storage: StorageKind,
}

impl std::fmt::Display for BoardIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} of the {} board at {}",
            self.storage,
            self.soc.as_deref().unwrap_or("Rockchip"),
            self.port_path
        )?;
        if let Some(capacity) = self.capacity {
            write!(f, " ({})", human_bytes(capacity))?;
        }
        Ok(())
    }
}

/// What the journal file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRecord {
    pub version: u32,
    pub image: ImageIdentity,
    pub board: BoardIdentity,
    /// Every run of the image below this offset was written (outside the leading region,
    /// which is written last).
    pub written_to: u64,
    pub started_unix: u64,
    pub updated_unix: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "refusing to resume: the interrupted flash recorded for {board} was of {recorded} ({} stored, written up to image byte {written_to}), not of {given}. Nothing was written. Resume with that image, or run without --resume to flash {given} from the start",
        human_bytes(*recorded_len)
    )]
    OtherImage {
        board: Box<BoardIdentity>,
        recorded: String,
        recorded_len: u64,
        written_to: u64,
        given: String,
    },
    #[error(
        "refusing to resume: the journal {path} was written for {recorded}, but the board at that port is now {now}. Nothing was written. Run without --resume to flash this board from the start"
    )]
    OtherBoard {
        path: PathBuf,
        recorded: Box<BoardIdentity>,
        now: Box<BoardIdentity>,
    },
    #[error(
        "the flash journal {path} cannot be read ({reason}). Nothing was written. Delete it and run without --resume to flash from the start"
    )]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "cannot write the flash journal in {dir}: {error}. Nothing was written. Make the folder writable or point ROCKUSB_STATE_DIR at one that is"
    )]
    Write { dir: PathBuf, error: io::Error },
}

/// Where a flash starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// From the beginning; `replaced` is an interrupted flash's record that will be
    /// overwritten (a plain flash over an interrupted one).
    Fresh { replaced: Option<JournalRecord> },
    /// Runs below `written_to` are read back and kept where they match.
    Resume { written_to: u64 },
}

/// The journals in one folder.
#[derive(Debug, Clone)]
pub struct JournalDir {
    dir: PathBuf,
}

impl JournalDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JournalDir { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The journal file of a board's storage: one per port and storage, so a flash of the
    /// same board replaces the record of the last one.
    pub fn file_for(&self, board: &BoardIdentity) -> PathBuf {
        let port: String = board
            .port_path
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        self.dir
            .join(format!("{port}-{}.json", board.storage.name()))
    }

    /// The record for `board`, if there is one.
    pub fn load(&self, board: &BoardIdentity) -> Result<Option<JournalRecord>, JournalError> {
        let path = self.file_for(board);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(JournalError::Unreadable {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        match serde_json::from_str::<JournalRecord>(&text) {
            Ok(r) if r.version == VERSION => Ok(Some(r)),
            Ok(r) => Err(JournalError::Unreadable {
                path,
                reason: format!(
                    "version {} of the format; this rockusb reads {VERSION}",
                    r.version
                ),
            }),
            Err(e) => Err(JournalError::Unreadable {
                path,
                reason: e.to_string(),
            }),
        }
    }

    /// Decides where a flash of `image` onto `board` starts: with `resume`, from the
    /// journal's offset when it records this image on this board (refused when it records
    /// another), from the beginning when there is none.
    pub fn start(
        &self,
        image: &ImageIdentity,
        board: &BoardIdentity,
        resume: bool,
    ) -> Result<Start, JournalError> {
        let record = match self.load(board) {
            Ok(r) => r,
            // A damaged journal is worth nothing to a fresh flash, which replaces it.
            Err(_) if !resume => None,
            Err(e) => return Err(e),
        };
        let Some(record) = record else {
            return Ok(Start::Fresh { replaced: None });
        };
        if !resume {
            return Ok(Start::Fresh {
                replaced: Some(record),
            });
        }
        if record.board != *board {
            return Err(JournalError::OtherBoard {
                path: self.file_for(board),
                recorded: Box::new(record.board),
                now: Box::new(board.clone()),
            });
        }
        if record.image.digest != image.digest || record.image.stored_len != image.stored_len {
            return Err(JournalError::OtherImage {
                board: Box::new(board.clone()),
                recorded: record.image.name,
                recorded_len: record.image.stored_len,
                written_to: record.written_to,
                given: image.name.clone(),
            });
        }
        Ok(Start::Resume {
            written_to: record.written_to,
        })
    }

    /// Starts the journal of a flash: written at once, before the first write to the board.
    pub fn begin(
        &self,
        image: ImageIdentity,
        board: BoardIdentity,
        written_to: u64,
    ) -> Result<Journal, JournalError> {
        let now = unix_now();
        let mut journal = Journal {
            path: self.file_for(&board),
            record: JournalRecord {
                version: VERSION,
                image,
                board,
                written_to,
                started_unix: now,
                updated_unix: now,
            },
            last_save: Instant::now(),
            saved_to: written_to,
            finished: false,
        };
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| journal.save())
            .map_err(|error| JournalError::Write {
                dir: self.dir.clone(),
                error,
            })?;
        Ok(journal)
    }
}

/// The journal of the flash under way.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    record: JournalRecord,
    last_save: Instant,
    saved_to: u64,
    /// Set when the flash completed and the file was removed.
    finished: bool,
}

impl Drop for Journal {
    /// A flash that stops (an error, a panic) leaves its journal at the last run written.
    fn drop(&mut self) {
        if !self.finished && self.saved_to != self.record.written_to {
            self.save_quietly();
        }
    }
}

impl Journal {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn written_to(&self) -> u64 {
        self.record.written_to
    }

    /// Records that every run below `offset` is written; saved now and then (a journal
    /// that lags only makes a resume read back a little more).
    pub fn advance(&mut self, offset: u64) {
        if offset <= self.record.written_to {
            return;
        }
        self.record.written_to = offset;
        if self.last_save.elapsed() >= SAVE_EVERY || offset - self.saved_to >= SAVE_EVERY_BYTES {
            self.save_quietly();
        }
    }

    /// Saves what is recorded now (when the flash stops, so the resume starts from there).
    pub fn save_quietly(&mut self) {
        // A journal that cannot be brought forward only costs a resume some reading.
        let _ = self.save();
    }

    /// The flash finished: nothing is left to resume.
    pub fn finish(mut self) -> io::Result<()> {
        self.finished = true;
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn save(&mut self) -> io::Result<()> {
        self.record.updated_unix = unix_now();
        let text = serde_json::to_string_pretty(&self.record).map_err(io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        // On the medium before the rename makes it the journal: a power loss of the host
        // then leaves the old record or this one.
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &self.path)?;
        // Makes the rename itself durable. Unix only: Windows opens no directory as a file
        // (NTFS journals the rename itself).
        #[cfg(unix)]
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        self.last_save = Instant::now();
        self.saved_to = self.record.written_to;
        Ok(())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(port: &str) -> BoardIdentity {
        BoardIdentity {
            port_path: port.into(),
            soc: Some("RK3588".into()),
            flash_id: "EMMC ".into(),
            capacity: Some(64 << 30),
            storage: StorageKind::Emmc,
        }
    }

    fn image(digest: &str) -> ImageIdentity {
        ImageIdentity {
            name: format!("{digest}.raw.xz"),
            stored_len: 1000,
            digest: digest.into(),
        }
    }

    #[test]
    fn a_journal_resumes_its_own_image_and_refuses_another() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JournalDir::new(tmp.path().join("journal"));
        let b = board("1-1");
        assert_eq!(
            dir.start(&image("a"), &b, true).unwrap(),
            Start::Fresh { replaced: None }
        );
        let mut j = dir.begin(image("a"), b.clone(), 0).unwrap();
        j.advance(5 << 20);
        j.save_quietly();
        assert_eq!(
            dir.start(&image("a"), &b, true).unwrap(),
            Start::Resume {
                written_to: 5 << 20
            }
        );
        let err = dir.start(&image("b"), &b, true).unwrap_err();
        assert!(matches!(err, JournalError::OtherImage { .. }), "{err}");
        assert!(err.to_string().contains("a.raw.xz"), "{err}");
        // Without --resume the old record is only reported, to be replaced.
        assert!(matches!(
            dir.start(&image("b"), &b, false).unwrap(),
            Start::Fresh { replaced: Some(_) }
        ));
        // Another board on another port has no journal; one with other facts is refused.
        assert_eq!(
            dir.start(&image("a"), &board("1-2"), true).unwrap(),
            Start::Fresh { replaced: None }
        );
        let smaller = BoardIdentity {
            capacity: Some(16 << 30),
            ..b.clone()
        };
        assert!(matches!(
            dir.start(&image("a"), &smaller, true).unwrap_err(),
            JournalError::OtherBoard { .. }
        ));
        j.finish().unwrap();
        assert_eq!(
            dir.start(&image("a"), &b, true).unwrap(),
            Start::Fresh { replaced: None }
        );
    }

    #[test]
    fn a_damaged_journal_is_refused_for_resume_and_replaced_otherwise() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JournalDir::new(tmp.path());
        let b = board("3-1.4");
        std::fs::write(dir.file_for(&b), "{ not json").unwrap();
        let err = dir.start(&image("a"), &b, true).unwrap_err();
        assert!(matches!(err, JournalError::Unreadable { .. }), "{err}");
        assert_eq!(
            dir.start(&image("a"), &b, false).unwrap(),
            Start::Fresh { replaced: None }
        );
    }

    #[test]
    fn the_image_identity_covers_every_file_it_was_made_from() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::write(&a, b"image").unwrap();
        std::fs::write(&b, b"u-boot").unwrap();
        let plain = ImageIdentity::of_files(&a, &[]).unwrap();
        let adapted = ImageIdentity::of_files(&a, &[&b]).unwrap();
        assert_eq!(plain.stored_len, 5);
        assert_eq!(adapted.stored_len, 5);
        assert_ne!(plain.digest, adapted.digest);
        assert_eq!(plain, ImageIdentity::of_files(&a, &[]).unwrap());
    }
}
