//! The SoC table: chip code ↔ SoC name ↔ USB PID ↔ RC4 expectation ↔ storage layout.
//!
//! Sources: xrock's chip list and rkdeveloptool's udev rules for PIDs, the chip codes
//! of real loader files, xrock's RC4 column and the rkbin `[FLAG]` keys for RC4, and
//! U-Boot's rockchip layout for the ID block position.

use serde::Serialize;
use thiserror::Error;

use crate::chip::ChipCode;
use crate::container::{ContainerTag, LoaderContainer};

/// Where things live on the boot medium, in 512-byte sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StorageLayout {
    /// The ID block (idbloader) on eMMC/SD.
    pub idb_lba: u32,
    /// U-Boot FIT (`u-boot.itb`, "loader2") on eMMC/SD for the mainline layout.
    pub fit_lba: u32,
    /// Largest first stage (DDR init / TPL) the BootROM accepts from storage, bytes.
    pub max_init_size: u32,
}

/// One SoC (or a family sharing chip code and PID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Soc {
    /// Canonical name, e.g. "RK3588".
    pub name: &'static str,
    /// Other names for the same silicon as seen by the BootROM ("RK3588S").
    pub aliases: &'static [&'static str],
    /// USB product ID (vendor 0x2207) in maskrom and loader mode.
    pub usb_pid: u16,
    /// Chip code in loader headers; `None` where no loader file was available to confirm it.
    pub chip_code: Option<ChipCode>,
    /// True when the BootROM expects 471/472 data RC4-scrambled (one stream) on the wire.
    pub rc4_on_wire: bool,
    /// Container flavour its loaders use.
    pub container: ContainerTag,
    /// Payload alignment in its loader files (bytes).
    pub entry_align: u32,
    pub layout: StorageLayout,
}

impl Soc {
    /// True when `name` is this SoC's name or an alias (case-insensitive).
    pub fn is_named(&self, name: &str) -> bool {
        let name = name.trim();
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

const fn code(bytes: &[u8; 4]) -> Option<ChipCode> {
    Some(ChipCode::from_file_bytes(*bytes))
}

const LAYOUT_2048: StorageLayout = StorageLayout {
    idb_lba: 64,
    fit_lba: 16384,
    max_init_size: 0xff000,
};

const fn layout(max_init_size: u32) -> StorageLayout {
    StorageLayout {
        idb_lba: 64,
        fit_lba: 16384,
        max_init_size,
    }
}

const fn new_idb(
    name: &'static str,
    aliases: &'static [&'static str],
    usb_pid: u16,
    chip_code: Option<ChipCode>,
    entry_align: u32,
    layout: StorageLayout,
) -> Soc {
    Soc {
        name,
        aliases,
        usb_pid,
        chip_code,
        rc4_on_wire: false,
        container: ContainerTag::Ldr,
        entry_align,
        layout,
    }
}

const fn old_idb(
    name: &'static str,
    aliases: &'static [&'static str],
    usb_pid: u16,
    chip_code: Option<ChipCode>,
    layout: StorageLayout,
) -> Soc {
    Soc {
        name,
        aliases,
        usb_pid,
        chip_code,
        rc4_on_wire: true,
        container: ContainerTag::Boot,
        entry_align: 2048,
        layout,
    }
}

/// Every known SoC. RC4 is off for the new-IDB parts (rkbin `471_RC4_OFF=true`,
/// xrock) and on for the older parts, whose BOOT loaders all store 471/472 scrambled.
pub static SOCS: &[Soc] = &[
    new_idb(
        "RK3588",
        &["RK3588S"],
        0x350b,
        code(b"8853"),
        2048,
        LAYOUT_2048,
    ),
    new_idb(
        "RK3568",
        &["RK3566", "RK356X"],
        0x350a,
        code(b"8653"),
        2048,
        layout(0xf000),
    ),
    new_idb("RK3576", &[], 0x350e, code(b"6753"), 4096, layout(0x7f000)),
    new_idb("RK3562", &[], 0x350d, code(b"2653"), 2048, LAYOUT_2048),
    new_idb(
        "RK3506",
        &["RK350F", "RK3506G", "RK3506B"],
        0x350f,
        code(b"F053"),
        2048,
        LAYOUT_2048,
    ),
    new_idb("RV1106", &["RV1103"], 0x110c, None, 2048, LAYOUT_2048),
    old_idb(
        "RK3399",
        &["RK330C", "RK3399PRO"],
        0x330c,
        code(b"C033"),
        layout(0x2e000),
    ),
    old_idb("PX30", &["RK3326"], 0x330d, code(b"03XP"), LAYOUT_2048),
    old_idb("RK3308", &[], 0x330e, code(b"8033"), LAYOUT_2048),
    old_idb("RK3368", &["RK330A"], 0x330a, code(b"A033"), LAYOUT_2048),
    old_idb("RK3328", &["RK322H"], 0x320c, code(b"H223"), LAYOUT_2048),
    old_idb("RK3288", &["RK320A"], 0x320a, code(b"A023"), LAYOUT_2048),
    old_idb(
        "RK3228",
        &["RK3229", "RK322A"],
        0x320b,
        code(b"A223"),
        LAYOUT_2048,
    ),
    old_idb("RK3036", &["RK303A"], 0x301a, code(b"A303"), LAYOUT_2048),
    old_idb(
        "RK1808",
        &["RK1806", "RK180A"],
        0x180a,
        code(b"A081"),
        LAYOUT_2048,
    ),
    old_idb("RK3128", &[], 0x310c, None, LAYOUT_2048),
    old_idb("RK3188", &[], 0x310b, None, LAYOUT_2048),
    old_idb("RK3066", &["RK3168"], 0x300a, None, LAYOUT_2048),
];

/// The SoC with this USB product ID (vendor 0x2207).
pub fn by_usb_pid(pid: u16) -> Option<&'static Soc> {
    SOCS.iter().find(|s| s.usb_pid == pid)
}

/// The SoC with this name or alias, case-insensitive ("rk3588", "RK3588S").
pub fn by_name(name: &str) -> Option<&'static Soc> {
    SOCS.iter().find(|s| s.is_named(name))
}

/// The SoC whose loaders carry this chip code.
pub fn by_chip_code(chip: ChipCode) -> Option<&'static Soc> {
    SOCS.iter().find(|s| s.chip_code == Some(chip))
}

/// A loader that was built for a different chip than the board.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChipMismatch {
    #[error(
        "this loader is for {loader_chip}, but the board is {board} (USB PID {board_pid:#06x}); \
         use a loader built for {board}"
    )]
    WrongChip {
        loader_chip: String,
        board: &'static str,
        board_pid: u16,
    },
    #[error(
        "this loader is for chip {loader_chip}, which is not in the SoC table, and the board \
         is {board}; use a loader built for {board}"
    )]
    UnknownLoaderChip {
        loader_chip: String,
        board: &'static str,
    },
    #[error(
        "the board's USB PID {board_pid:#06x} is not in the SoC table, so the loader \
         (for {loader_chip}) cannot be checked against it; pass the SoC name explicitly"
    )]
    UnknownBoard { loader_chip: String, board_pid: u16 },
}

/// Refuses a loader whose chip does not match the board, naming both.
pub fn check_loader_for_board(
    loader: &LoaderContainer,
    board: &'static Soc,
) -> Result<(), ChipMismatch> {
    let chip = loader.chip_code();
    match loader.soc() {
        Some(soc) if soc == board => Ok(()),
        Some(soc) => Err(ChipMismatch::WrongChip {
            loader_chip: soc.name.to_string(),
            board: board.name,
            board_pid: board.usb_pid,
        }),
        None => Err(ChipMismatch::UnknownLoaderChip {
            loader_chip: chip.to_string(),
            board: board.name,
        }),
    }
}

/// [`check_loader_for_board`] for a board known only by its USB PID.
pub fn check_loader_for_pid(loader: &LoaderContainer, board_pid: u16) -> Result<(), ChipMismatch> {
    match by_usb_pid(board_pid) {
        Some(board) => check_loader_for_board(loader, board),
        None => Err(ChipMismatch::UnknownBoard {
            loader_chip: loader.chip_code().to_string(),
            board_pid,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_agree_for_rk3588() {
        let soc = by_usb_pid(0x350b).unwrap();
        assert_eq!(soc.name, "RK3588");
        assert_eq!(by_name("rk3588s"), Some(soc));
        assert_eq!(by_chip_code(ChipCode::from_file_bytes(*b"8853")), Some(soc));
        assert!(!soc.rc4_on_wire);
        assert_eq!(soc.layout.idb_lba, 64);
    }

    #[test]
    fn mismatched_loader_is_refused_naming_both_chips() {
        let rk3568_loader = crate::standin::build_container(by_name("rk3568").unwrap());
        let rk3588 = by_name("rk3588").unwrap();
        let err = check_loader_for_board(&rk3568_loader, rk3588).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("for RK3568"), "{message}");
        assert!(message.contains("board is RK3588"), "{message}");
        assert!(check_loader_for_pid(&rk3568_loader, 0x350a).is_ok());
        assert!(matches!(
            check_loader_for_pid(&rk3568_loader, 0x1234),
            Err(ChipMismatch::UnknownBoard {
                board_pid: 0x1234,
                ..
            })
        ));
        let rk3588_loader = crate::standin::build_container(rk3588);
        assert!(check_loader_for_board(&rk3588_loader, rk3588).is_ok());
    }

    #[test]
    fn pids_and_chip_codes_are_unique() {
        for (i, a) in SOCS.iter().enumerate() {
            for b in &SOCS[i + 1..] {
                assert_ne!(a.usb_pid, b.usb_pid, "{} and {}", a.name, b.name);
                if a.chip_code.is_some() {
                    assert_ne!(a.chip_code, b.chip_code, "{} and {}", a.name, b.name);
                }
            }
        }
    }

    #[test]
    fn chip_code_matches_the_name_boot_merger_would_use() {
        for soc in SOCS {
            if let Some(code) = soc.chip_code {
                let from_name = std::iter::once(soc.name)
                    .chain(soc.aliases.iter().copied())
                    .filter_map(ChipCode::from_ini_name)
                    .any(|c| c == code);
                assert!(
                    from_name,
                    "{}: {code} not derivable from its names",
                    soc.name
                );
            }
        }
    }
}
