//! Picking a loader automatically: given search folders (the CLI passes a flag, an
//! environment variable and the XDG data folder), find the newest valid loader for a
//! SoC and say which file was chosen, why, and why every other candidate was not.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use crate::container::{ContainerTag, LoaderContainer};
use crate::release_time::ReleaseTime;
use crate::soc::Soc;
use crate::standin::is_standin;

/// Files larger than this are not loaders (the biggest real one is under 1 MiB).
const MAX_LOADER_SIZE: u64 = 16 << 20;

/// A loader that qualified.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    pub path: PathBuf,
    pub release_time: ReleaseTime,
    /// "major.minor".
    pub version: String,
    pub tag: ContainerTag,
    #[serde(skip)]
    version_raw: u32,
}

/// A file that was looked at and not used, with the reason.
#[derive(Clone, Debug, Serialize)]
pub struct Rejected {
    pub path: PathBuf,
    pub reason: String,
}

/// The result of a search.
#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    pub chosen: Candidate,
    /// Why this one: a sentence for the user.
    pub why: String,
    /// Valid loaders for the SoC that lost to the chosen one, newest first.
    pub other_candidates: Vec<Candidate>,
    pub rejected: Vec<Rejected>,
    /// Folders searched, in order (missing ones included, marked in `rejected`).
    pub searched: Vec<PathBuf>,
    #[serde(skip)]
    pub container: LoaderContainer,
}

/// No usable loader was found.
#[derive(Debug, Error, Clone)]
#[error(
    "no valid {soc} loader found in {searched}{rejected_note}; put a merged loader (for \
     {soc}: a *_spl_loader_*.bin or MiniLoaderAll.bin from rkbin) in one of these folders \
     or pass its path"
)]
pub struct NoLoaderFound {
    pub soc: &'static str,
    pub searched: String,
    pub rejected_note: String,
    pub rejected: Vec<Rejected>,
}

/// Search options.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChooseOptions {
    /// Accept the stand-in loader (only for the virtual board).
    pub allow_standin: bool,
}

/// Finds the newest valid loader for `soc` in `dirs` (not recursive).
///
/// A file qualifies when it parses and verifies as a container whose chip code is
/// `soc`'s. Among those, the newest release time wins, then the higher version, then
/// the path (so the choice is the same on every run).
pub fn choose_loader(
    dirs: &[PathBuf],
    soc: &'static Soc,
    options: ChooseOptions,
) -> Result<Choice, NoLoaderFound> {
    let mut rejected = Vec::new();
    let mut valid: Vec<(Candidate, LoaderContainer)> = Vec::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                rejected.push(Rejected {
                    path: dir.clone(),
                    reason: format!("folder not readable: {e}"),
                });
                continue;
            }
        };
        files.sort();
        for path in files {
            match consider(&path, soc, options) {
                Consideration::Ignore => {}
                Consideration::Reject(reason) => rejected.push(Rejected { path, reason }),
                Consideration::Accept(c) => {
                    let h = c.header();
                    valid.push((
                        Candidate {
                            path,
                            release_time: h.release_time,
                            version: format!("{}.{}", h.version_major(), h.version_minor()),
                            tag: h.tag,
                            version_raw: h.version,
                        },
                        c,
                    ));
                }
            }
        }
    }
    valid.sort_by(|(a, _), (b, _)| newer_first(a, b));
    let mut valid = valid.into_iter();
    let Some((chosen, container)) = valid.next() else {
        return Err(NoLoaderFound {
            soc: soc.name,
            searched: display_dirs(dirs),
            rejected_note: if rejected.is_empty() {
                String::new()
            } else {
                format!(" ({} files looked at and rejected)", rejected.len())
            },
            rejected,
        });
    };
    let other_candidates: Vec<Candidate> = valid.map(|(c, _)| c).collect();
    let why = if other_candidates.is_empty() {
        format!("the only valid {} loader found", soc.name)
    } else {
        format!(
            "the newest of {} valid {} loaders (released {}, version {}); the next newest is {} from {}",
            other_candidates.len() + 1,
            soc.name,
            chosen.release_time,
            chosen.version,
            other_candidates[0].path.display(),
            other_candidates[0].release_time
        )
    };
    Ok(Choice {
        chosen,
        why,
        other_candidates,
        rejected,
        searched: dirs.to_vec(),
        container,
    })
}

fn newer_first(a: &Candidate, b: &Candidate) -> Ordering {
    b.release_time
        .cmp(&a.release_time)
        .then(b.version_raw.cmp(&a.version_raw))
        .then(a.path.cmp(&b.path))
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no folders (none were configured)".into();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

enum Consideration {
    /// Not a loader and not named like one: not worth mentioning.
    Ignore,
    Reject(String),
    Accept(LoaderContainer),
}

fn looks_like_loader_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("bin"))
}

fn consider(path: &Path, soc: &'static Soc, options: ChooseOptions) -> Consideration {
    let Ok(meta) = std::fs::metadata(path) else {
        return Consideration::Ignore;
    };
    if !meta.is_file() {
        return Consideration::Ignore;
    }
    if meta.len() > MAX_LOADER_SIZE {
        return if looks_like_loader_name(path) {
            Consideration::Reject(format!("{} bytes, too large to be a loader", meta.len()))
        } else {
            Consideration::Ignore
        };
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Consideration::Reject(format!("not readable: {e}")),
    };
    let has_magic = bytes
        .get(..4)
        .and_then(|m| ContainerTag::from_magic(m.try_into().ok()?))
        .is_some();
    if !has_magic && !looks_like_loader_name(path) {
        return Consideration::Ignore;
    }
    let c = match LoaderContainer::parse(&bytes) {
        Ok(c) => c,
        Err(e) => return Consideration::Reject(e.to_string()),
    };
    match c.soc() {
        Some(found) if found == soc => {}
        Some(found) => {
            return Consideration::Reject(format!("a loader for {}, not {}", found.name, soc.name));
        }
        None => {
            return Consideration::Reject(format!(
                "a loader for chip {}, which is not {}",
                c.chip_code(),
                soc.name
            ));
        }
    }
    if is_standin(&c) && !options.allow_standin {
        return Consideration::Reject(
            "the stand-in loader, which only works with the virtual board".into(),
        );
    }
    let report = crate::report::verify(&bytes);
    if let Some(failed) = report
        .checks
        .iter()
        .find(|c| c.status == crate::report::CheckStatus::Fail)
    {
        return Consideration::Reject(format!(
            "fails verification ({}): {}",
            failed.name, failed.detail
        ));
    }
    Consideration::Accept(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::merge;
    use crate::soc::by_name;
    use crate::standin;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A stand-in-shaped loader for `soc` with a real-looking payload and release time.
    fn loader(soc: &Soc, year: u16) -> Vec<u8> {
        let mut spec = standin::spec(soc);
        spec.release_time.year = year;
        for part in spec.code471.iter_mut().chain(spec.code472.iter_mut()) {
            part.data = vec![0x01, 0x00, 0x00, 0x14, year as u8];
        }
        merge(&spec).unwrap().to_bytes().unwrap()
    }

    #[test]
    fn newest_matching_loader_wins_and_others_are_explained() {
        let tmp_dir = tempfile::tempdir().unwrap();
        let tmp = tmp_dir.path();
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let rk3588 = by_name("rk3588").unwrap();
        let old = write(&a, "old.bin", &loader(rk3588, 2021));
        let new = write(&b, "new.bin", &loader(rk3588, 2024));
        write(
            &a,
            "other-chip.bin",
            &loader(by_name("rk3568").unwrap(), 2025),
        );
        write(&a, "standin.bin", &standin::build(rk3588));
        write(&a, "raw_spl.bin", &[0x01, 0x00, 0x00, 0x14, 0, 0, 0, 0]);
        write(&a, "notes.txt", b"not a loader");
        let mut damaged = loader(rk3588, 2026);
        let n = damaged.len();
        damaged[n - 10] ^= 1;
        write(&b, "damaged.bin", &damaged);

        let choice = choose_loader(
            &[a.clone(), b.clone(), tmp.join("missing")],
            rk3588,
            ChooseOptions::default(),
        )
        .unwrap();
        assert_eq!(choice.chosen.path, new);
        assert_eq!(choice.other_candidates.len(), 1);
        assert_eq!(choice.other_candidates[0].path, old);
        assert!(choice.why.contains("newest of 2"), "{}", choice.why);
        let reason = |name: &str| {
            choice
                .rejected
                .iter()
                .find(|r| r.path.file_name().is_some_and(|f| f == name))
                .map(|r| r.reason.clone())
                .unwrap_or_default()
        };
        assert!(reason("other-chip.bin").contains("RK3568, not RK3588"));
        assert!(reason("standin.bin").contains("virtual board"));
        assert!(reason("raw_spl.bin").contains("raw SPL"));
        assert!(reason("damaged.bin").contains("CRC-32 mismatch"));
        assert!(reason("missing").contains("not readable"));
        assert_eq!(reason("notes.txt"), "");

        // With nothing valid left, the error lists where it looked.
        let err = choose_loader(
            std::slice::from_ref(&a),
            by_name("rk3576").unwrap(),
            ChooseOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no valid RK3576 loader"), "{err}");
        assert!(err.to_string().contains(&a.display().to_string()));

        // The stand-in is accepted when asked for (virtual board).
        let only_standin = tmp.join("c");
        std::fs::create_dir_all(&only_standin).unwrap();
        write(&only_standin, "standin.bin", &standin::build(rk3588));
        let choice = choose_loader(
            &[only_standin],
            rk3588,
            ChooseOptions {
                allow_standin: true,
            },
        )
        .unwrap();
        assert!(is_standin(&choice.container));
    }
}
