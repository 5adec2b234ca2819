//! RKBOOT ini files (rkbin `RKBOOT/*.ini`), the input of boot_merger.
//!
//! ```ini
//! [CHIP_NAME]
//! NAME=RK3588
//! [VERSION]
//! MAJOR=1
//! MINOR=11
//! [CODE471_OPTION]
//! NUM=1
//! Path1=bin/rk35/rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v1.16.bin
//! Sleep=1
//! [CODE472_OPTION]
//! NUM=1
//! Path1=bin/rk35/rk3588_usbplug_v1.11.bin
//! [LOADER_OPTION]
//! NUM=2
//! LOADER1=FlashData
//! LOADER2=FlashBoot
//! FlashData=bin/rk35/rk3588_ddr_lp4_2112MHz_lp5_2400MHz_v1.16.bin
//! FlashBoot=bin/rk35/rk3588_spl_v1.13.bin
//! [OUTPUT]
//! PATH=rk3588_spl_loader_v1.16.113.bin
//! [SYSTEM]
//! NEWIDB=true
//! [FLAG]
//! 471_RC4_OFF=true
//! RC4_OFF=true
//! ```
//!
//! Component paths are relative to the rkbin checkout; [`ComponentDirs`] resolves them
//! against a list of folders, falling back to the bare file name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::chip::ChipCode;
use crate::container::LoaderContainer;
use crate::merge::{
    LoaderPart, MERGER_VERSION, MergeError, MergeSpec, StagePart, entry_name_from_path, merge,
};
use crate::release_time::ReleaseTime;
use crate::rkns::BootParams;

/// A problem in the ini text, with its 1-based line number where there is one.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IniError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("[{section}] {key} is missing; boot_merger needs it")]
    Missing { section: &'static str, key: String },
    #[error("[{section}] NUM={declared} but {found} paths are listed")]
    CountMismatch {
        section: &'static str,
        declared: usize,
        found: usize,
    },
    #[error(
        "chip name {0:?} cannot be turned into a chip code (need at least 4 characters after \"RK\")"
    )]
    BadChipName(String),
}

/// The settings of an RKBOOT ini.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RkbootIni {
    pub chip_name: String,
    pub major: u32,
    pub minor: u32,
    pub code471_paths: Vec<String>,
    pub code471_sleep_ms: u32,
    pub code472_paths: Vec<String>,
    pub code472_sleep_ms: u32,
    /// (entry name, path) in `LOADERn` order.
    pub loaders: Vec<(String, String)>,
    /// `[LOADERn_PARAM]` by 1-based n: (LOAD_ADDR, FLAG).
    pub loader_params: BTreeMap<usize, (Option<u32>, u32)>,
    pub output_path: Option<String>,
    pub idb_path: Option<String>,
    pub new_idb: bool,
    /// `[SYSTEM] ALIGN` in sectors (8 on RK3576); `None` means 2048 bytes.
    pub align_sectors: Option<u32>,
    pub rc4_off_471: bool,
    pub rc4_off: bool,
    pub create_idb: bool,
    pub crc_off: bool,
    pub boot_params: BootParams,
}

fn parse_number(text: &str) -> Option<u32> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

impl RkbootIni {
    /// Parses ini text. Unknown sections and keys are ignored, as later rkbin
    /// versions add some; malformed values of known keys are errors.
    pub fn parse(text: &str) -> Result<Self, IniError> {
        let mut ini = RkbootIni::default();
        let mut section = String::new();
        let mut num_471 = None;
        let mut num_472 = None;
        let mut num_loader = None;
        let mut paths_471 = BTreeMap::new();
        let mut paths_472 = BTreeMap::new();
        let mut loader_names = BTreeMap::new();
        let mut loader_paths = BTreeMap::new();

        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let err = |message: String| IniError::Line { line, message };
            let text = raw.trim();
            if text.is_empty() || text.starts_with('#') || text.starts_with(';') {
                continue;
            }
            if let Some(name) = text.strip_prefix('[') {
                section = name.trim_end_matches(']').trim().to_ascii_uppercase();
                continue;
            }
            let Some((key, value)) = text.split_once('=') else {
                return Err(err(format!("expected KEY=VALUE, found {text:?}")));
            };
            let key = key.trim();
            let value = value.trim();
            let upper = key.to_ascii_uppercase();
            let number = || {
                parse_number(value).ok_or_else(|| err(format!("{key}={value:?} is not a number")))
            };
            let boolean = || {
                parse_bool(value).ok_or_else(|| err(format!("{key}={value:?} is not true/false")))
            };
            match section.as_str() {
                "CHIP_NAME" if upper == "NAME" => ini.chip_name = value.to_string(),
                "VERSION" if upper == "MAJOR" => ini.major = number()?,
                "VERSION" if upper == "MINOR" => ini.minor = number()?,
                "CODE471_OPTION" | "CODE472_OPTION" => {
                    let is_471 = section == "CODE471_OPTION";
                    if upper == "NUM" {
                        *if is_471 { &mut num_471 } else { &mut num_472 } =
                            Some(number()? as usize);
                    } else if upper == "SLEEP" {
                        let ms = number()?;
                        if is_471 {
                            ini.code471_sleep_ms = ms;
                        } else {
                            ini.code472_sleep_ms = ms;
                        }
                    } else if let Some(index) = upper.strip_prefix("PATH") {
                        let index: usize = index
                            .parse()
                            .map_err(|_| err(format!("{key} is not PathN")))?;
                        let map = if is_471 {
                            &mut paths_471
                        } else {
                            &mut paths_472
                        };
                        map.insert(index, value.replace('\\', "/"));
                    }
                }
                "LOADER_OPTION" => {
                    if upper == "NUM" || upper == "LOADER_NUM" {
                        num_loader = Some(number()? as usize);
                    } else if let Some(index) = upper
                        .strip_prefix("LOADER")
                        .and_then(|i| i.parse::<usize>().ok())
                    {
                        loader_names.insert(index, value.to_string());
                    } else {
                        loader_paths.insert(key.to_string(), value.replace('\\', "/"));
                    }
                }
                "OUTPUT" if upper == "PATH" => ini.output_path = Some(value.to_string()),
                "OUTPUT" if upper == "IDB_PATH" => ini.idb_path = Some(value.to_string()),
                "SYSTEM" if upper == "NEWIDB" => ini.new_idb = boolean()?,
                "SYSTEM" if upper == "ALIGN" => ini.align_sectors = Some(number()?),
                "FLAG" if upper == "471_RC4_OFF" => ini.rc4_off_471 = boolean()?,
                "FLAG" if upper == "RC4_OFF" => ini.rc4_off = boolean()?,
                "FLAG" if upper == "CREATE_IDB" => ini.create_idb = boolean()?,
                "FLAG" if upper == "CRC_OFF" => ini.crc_off = boolean()?,
                "BOOT0_PARAM" | "BOOT1_PARAM" => {
                    if let Some(index) = upper
                        .strip_prefix("WORD_")
                        .and_then(|i| i.parse::<usize>().ok())
                    {
                        let word = number()?;
                        let slot = if section == "BOOT0_PARAM" {
                            ini.boot_params.boot0.get_mut(index)
                        } else {
                            ini.boot_params.boot1.get_mut(index)
                        };
                        *slot
                            .ok_or_else(|| err(format!("{key} is beyond the parameter words")))? =
                            word;
                    }
                }
                s if s.starts_with("LOADER") && s.ends_with("_PARAM") => {
                    let index: usize = s
                        .trim_start_matches("LOADER")
                        .trim_end_matches("_PARAM")
                        .parse()
                        .map_err(|_| err(format!("section [{s}] is not LOADERn_PARAM")))?;
                    let entry = ini.loader_params.entry(index).or_insert((None, 0));
                    if upper == "LOAD_ADDR" {
                        entry.0 = Some(number()?);
                    } else if upper == "FLAG" {
                        entry.1 = number()?;
                    }
                }
                _ => {}
            }
        }

        if ini.chip_name.is_empty() {
            return Err(IniError::Missing {
                section: "CHIP_NAME",
                key: "NAME".into(),
            });
        }
        ini.code471_paths = collect_paths("CODE471_OPTION", num_471, paths_471)?;
        ini.code472_paths = collect_paths("CODE472_OPTION", num_472, paths_472)?;
        let declared = num_loader.ok_or(IniError::Missing {
            section: "LOADER_OPTION",
            key: "NUM".into(),
        })?;
        if loader_names.len() != declared {
            return Err(IniError::CountMismatch {
                section: "LOADER_OPTION",
                declared,
                found: loader_names.len(),
            });
        }
        for name in loader_names.into_values() {
            let path = loader_paths.get(&name).cloned().ok_or(IniError::Missing {
                section: "LOADER_OPTION",
                key: name.clone(),
            })?;
            ini.loaders.push((name, path));
        }
        Ok(ini)
    }

    /// Payload alignment in bytes.
    pub fn align_bytes(&self) -> usize {
        self.align_sectors.map_or(2048, |s| s as usize * 512)
    }

    /// Loads the components through `load` and describes the merge.
    pub fn to_spec<E>(
        &self,
        release_time: ReleaseTime,
        mut load: impl FnMut(&str) -> Result<Vec<u8>, E>,
    ) -> Result<MergeSpec, E>
    where
        E: From<IniError>,
    {
        let chip = ChipCode::from_ini_name(&self.chip_name)
            .ok_or_else(|| IniError::BadChipName(self.chip_name.clone()))?;
        let mut stage = |paths: &[String]| -> Result<Vec<StagePart>, E> {
            paths
                .iter()
                .map(|p| {
                    Ok(StagePart {
                        name: entry_name_from_path(p),
                        data: load(p)?,
                    })
                })
                .collect()
        };
        let code471 = stage(&self.code471_paths)?;
        let code472 = stage(&self.code472_paths)?;
        let mut loaders = Vec::new();
        for (n, (name, path)) in self.loaders.iter().enumerate() {
            let (load_address, flag) = self
                .loader_params
                .get(&(n + 1))
                .copied()
                .unwrap_or((None, 0));
            loaders.push(LoaderPart {
                name: name.clone(),
                data: load(path)?,
                load_address,
                flag,
            });
        }
        Ok(MergeSpec {
            chip,
            version_major: self.major,
            version_minor: self.minor,
            release_time,
            new_idb: self.new_idb,
            rc4_off: self.rc4_off,
            rc4_off_471: self.rc4_off_471,
            align: self.align_bytes(),
            code471,
            code471_delay_ms: self.code471_sleep_ms,
            code472,
            code472_delay_ms: self.code472_sleep_ms,
            loaders,
            boot_params: self.boot_params,
            merger_version: MERGER_VERSION,
        })
    }
}

fn collect_paths(
    section: &'static str,
    declared: Option<usize>,
    paths: BTreeMap<usize, String>,
) -> Result<Vec<String>, IniError> {
    let declared = declared.ok_or(IniError::Missing {
        section,
        key: "NUM".into(),
    })?;
    if paths.len() != declared || paths.keys().copied().ne(1..=declared) {
        return Err(IniError::CountMismatch {
            section,
            declared,
            found: paths.len(),
        });
    }
    Ok(paths.into_values().collect())
}

/// Folders searched for component files named in an ini.
#[derive(Clone, Debug, Default)]
pub struct ComponentDirs {
    pub dirs: Vec<PathBuf>,
}

/// A component could not be loaded, or the ini/merge failed.
#[derive(Debug, Error)]
pub enum BuildError {
    #[error(transparent)]
    Ini(#[from] IniError),
    #[error(
        "component {path:?} was not found in {searched}; put the rkbin file there or pass its folder"
    )]
    ComponentNotFound { path: String, searched: String },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Merge(#[from] MergeError),
}

impl ComponentDirs {
    /// Searches `dirs` in order.
    pub fn new(dirs: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        ComponentDirs {
            dirs: dirs.into_iter().map(Into::into).collect(),
        }
    }

    /// The first existing file: `dir/path`, then `dir/<file name of path>`, per folder.
    pub fn find(&self, path: &str) -> Option<PathBuf> {
        let file_name = Path::new(path).file_name()?;
        self.dirs.iter().find_map(|dir| {
            [dir.join(path), dir.join(file_name)]
                .into_iter()
                .find(|candidate| candidate.is_file())
        })
    }

    /// Reads the component `path` names.
    pub fn load(&self, path: &str) -> Result<Vec<u8>, BuildError> {
        let found = self
            .find(path)
            .ok_or_else(|| BuildError::ComponentNotFound {
                path: path.to_string(),
                searched: self
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        std::fs::read(&found).map_err(|source| BuildError::Read {
            path: found,
            source,
        })
    }
}

/// Builds the container an RKBOOT ini describes, with components from `dirs`.
pub fn build_from_ini(
    ini_text: &str,
    release_time: ReleaseTime,
    dirs: &ComponentDirs,
) -> Result<LoaderContainer, BuildError> {
    let ini = RkbootIni::parse(ini_text)?;
    let spec = ini.to_spec(release_time, |p| dirs.load(p))?;
    Ok(merge(&spec)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RK3576: &str = "[CHIP_NAME]\nNAME=RK3576\n[VERSION]\nMAJOR=1\nMINOR=100\n\
        [CODE471_OPTION]\nNUM=1\nPath1=bin/rk35/ddr.bin\nSleep=1\n[CODE472_OPTION]\nNUM=1\n\
        Path1=bin/rk35/usbplug.bin\n[LOADER_OPTION]\nNUM=3\nLOADER1=FlashBoost\n\
        LOADER2=FlashData\nLOADER3=FlashBoot\nFlashBoost=bin/boost.bin\nFlashData=bin/ddr.bin\n\
        FlashBoot=bin/spl.bin\n[LOADER1_PARAM]\nLOAD_ADDR=0x3FFC0000\nFLAG=0x0\n\
        [LOADER2_PARAM]\nLOAD_ADDR=0x3FF81000\nFLAG=0x0\n[OUTPUT]\nPATH=out.bin\n\
        IDB_PATH=idb.img\n[SYSTEM]\nNEWIDB=true\nALIGN=8\n[FLAG]\nCREATE_IDB=true\n\
        471_RC4_OFF=true\nRC4_OFF=true\nCRC_OFF=true\n[BOOT1_PARAM]\nWORD_2=0x100\n";

    #[test]
    fn rk3576_ini_is_understood() {
        let ini = RkbootIni::parse(RK3576).unwrap();
        assert_eq!(ini.chip_name, "RK3576");
        assert_eq!((ini.major, ini.minor), (1, 100));
        assert_eq!(ini.code471_paths, ["bin/rk35/ddr.bin"]);
        assert_eq!(ini.code471_sleep_ms, 1);
        assert_eq!(
            ini.loaders[0],
            ("FlashBoost".to_string(), "bin/boost.bin".to_string())
        );
        assert_eq!(ini.loader_params[&1], (Some(0x3ffc_0000), 0));
        assert_eq!(ini.align_bytes(), 4096);
        assert!(ini.new_idb && ini.rc4_off && ini.rc4_off_471 && ini.crc_off && ini.create_idb);
        assert_eq!(ini.boot_params.boot1[2], 0x100);
        assert_eq!(ini.idb_path.as_deref(), Some("idb.img"));
    }

    #[test]
    fn problems_are_named() {
        let missing_path = RK3576.replace("FlashBoot=bin/spl.bin\n", "");
        assert!(matches!(
            RkbootIni::parse(&missing_path),
            Err(IniError::Missing { key, .. }) if key == "FlashBoot"
        ));
        let bad_num = RK3576.replace("MINOR=100", "MINOR=ten");
        assert!(matches!(
            RkbootIni::parse(&bad_num),
            Err(IniError::Line { line: 5, .. })
        ));
        let wrong_count = RK3576.replace("[CODE471_OPTION]\nNUM=1", "[CODE471_OPTION]\nNUM=2");
        assert!(matches!(
            RkbootIni::parse(&wrong_count),
            Err(IniError::CountMismatch {
                declared: 2,
                found: 1,
                ..
            })
        ));
    }
}
