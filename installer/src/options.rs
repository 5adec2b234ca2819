//! The overlay's extra options (`overlay.options` in a profile, `--overlay-option k=v`
//! on the imager): console baud, DTB file name, earlycon, the CMA size, SPI boot and extra
//! kernel arguments.
//!
//! Values arrive as YAML-typed values or as strings (the imager CLI turns every
//! `k=v` into a string), so `true` and `"true"`, `1500000` and `"1500000"` are equal.

use crate::board::{BASE_KERNEL_ARGS, CONSOLE_TTY, DEFAULT_CMA, DEFAULT_CONSOLE_BAUD, EARLYCON};
use std::collections::BTreeMap;
use thiserror::Error;
use yaml_serde::Value;

pub const OPTION_CMA: &str = "cma";
pub const OPTION_CONSOLE_BAUD: &str = "console_baud";
pub const OPTION_DTB: &str = "dtb";
pub const OPTION_EARLYCON: &str = "earlycon";
pub const OPTION_EXTRA_KERNEL_ARGS: &str = "extra_kernel_args";
/// The name upstream's RK3588 installers use (`siderolabs/sbc-rockchip:installers/rock5b/
/// src/main.go`, `SPIBoot bool yaml:"spi_boot"`): U-Boot runs from the SPI-NOR, so the
/// installer does not write it to the disk.
pub const OPTION_SPI_BOOT: &str = "spi_boot";
pub const KNOWN_OPTIONS: &[&str] = &[
    OPTION_CMA,
    OPTION_CONSOLE_BAUD,
    OPTION_DTB,
    OPTION_EARLYCON,
    OPTION_EXTRA_KERNEL_ARGS,
    OPTION_SPI_BOOT,
];

/// Baud rates the RK3588 UART and the 8250 driver run reliably.
pub const SUPPORTED_BAUDS: &[u32] = &[
    9600, 19200, 38400, 57600, 115_200, 230_400, 460_800, 921_600, 1_000_000, 1_500_000, 3_000_000,
];

/// The DTB file names the overlay knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtbName {
    /// `rk3588s-nanopi-m6.dtb`: the vendor kernel, Armbian and the U-Boot defconfig's
    /// `CONFIG_DEFAULT_FDT_FILE`.
    #[default]
    NanopiM6,
    /// `rk3588s-nanopi-m6v1.dtb`: the name the upstream Linux series (v2 and later) uses.
    NanopiM6v1,
}

impl DtbName {
    pub const ALL: [DtbName; 2] = [DtbName::NanopiM6, DtbName::NanopiM6v1];

    pub fn file_name(self) -> &'static str {
        match self {
            DtbName::NanopiM6 => "rk3588s-nanopi-m6.dtb",
            DtbName::NanopiM6v1 => "rk3588s-nanopi-m6v1.dtb",
        }
    }

    /// Accepts the file name with or without `.dtb` and with or without `rockchip/`.
    pub fn parse(text: &str) -> Option<DtbName> {
        let base = text.trim().trim_start_matches("rockchip/");
        let base = base.strip_suffix(".dtb").unwrap_or(base);
        DtbName::ALL
            .into_iter()
            .find(|d| d.file_name().strip_suffix(".dtb") == Some(base))
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum OptionsError {
    #[error("overlay option {name:?} must be {expected}, got {got}")]
    WrongType {
        name: &'static str,
        expected: &'static str,
        got: String,
    },
    #[error(
        "overlay option console_baud {baud} is not a supported baud rate; use one of {SUPPORTED_BAUDS:?} (the M6 console runs at 1500000)"
    )]
    UnsupportedBaud { baud: u64 },
    #[error(
        "overlay option dtb {given:?} is not a NanoPi M6 DTB name; use rk3588s-nanopi-m6.dtb or rk3588s-nanopi-m6v1.dtb"
    )]
    UnknownDtb { given: String },
    #[error(
        "overlay option cma {given:?} is not a size the kernel's cma= accepts; use a whole number with an optional K, M or G suffix (\"128MB\", \"256M\", optionally @start[-end]), or \"off\" to keep the kernel's built-in 16 MiB"
    )]
    BadCma { given: String },
}

/// The overlay's options after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardOptions {
    pub console_baud: u32,
    pub dtb: DtbName,
    pub earlycon: bool,
    /// The `cma=` value, or `None` to leave the kernel's built-in size.
    pub cma: Option<String>,
    /// U-Boot boots from the SPI-NOR: do not write `u-boot-rockchip.bin` to the disk.
    pub spi_boot: bool,
    pub extra_kernel_args: Vec<String>,
}

impl Default for BoardOptions {
    fn default() -> Self {
        BoardOptions {
            console_baud: DEFAULT_CONSOLE_BAUD,
            dtb: DtbName::default(),
            earlycon: false,
            cma: Some(DEFAULT_CMA.to_owned()),
            spi_boot: false,
            extra_kernel_args: Vec::new(),
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a map".to_owned(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

fn as_bool(name: &'static str, value: &Value) -> Result<bool, OptionsError> {
    let parsed = match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" | "" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| OptionsError::WrongType {
        name,
        expected: "a boolean (true/false, or the strings \"true\"/\"false\")",
        got: describe(value),
    })
}

fn as_baud(value: &Value) -> Result<u32, OptionsError> {
    let number = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| OptionsError::WrongType {
        name: OPTION_CONSOLE_BAUD,
        expected: "a whole number such as 1500000",
        got: describe(value),
    })?;
    u32::try_from(number)
        .ok()
        .filter(|b| SUPPORTED_BAUDS.contains(b))
        .ok_or(OptionsError::UnsupportedBaud { baud: number })
}

fn as_dtb(value: &Value) -> Result<DtbName, OptionsError> {
    let Value::String(text) = value else {
        return Err(OptionsError::WrongType {
            name: OPTION_DTB,
            expected: "a DTB file name",
            got: describe(value),
        });
    };
    DtbName::parse(text).ok_or_else(|| OptionsError::UnknownDtb {
        given: text.clone(),
    })
}

/// `size[@start[-end]]`, each a decimal number with an optional K/M/G/T/P/E suffix, which
/// the kernel's `memparse` reads; a trailing `B` after the suffix (`128MB`, as upstream
/// writes it) is left unread by `memparse` and harmless.
fn is_cma_size(text: &str) -> bool {
    let number = |part: &str| {
        let part = part
            .strip_suffix(['B', 'b'])
            .filter(|p| p.ends_with(|c: char| "KMGTPEkmgtpe".contains(c)))
            .unwrap_or(part);
        let digits = part.trim_end_matches(|c: char| "KMGTPEkmgtpe".contains(c));
        part.len() - digits.len() <= 1
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
    };
    let (size, placement) = match text.split_once('@') {
        Some((size, placement)) => (size, Some(placement)),
        None => (text, None),
    };
    number(size)
        && placement.is_none_or(|p| match p.split_once('-') {
            Some((start, end)) => number(start) && number(end),
            None => number(p),
        })
}

/// `off`/`none`/`false`/empty drop the argument; anything else must be a `cma=` size.
fn as_cma(value: &Value) -> Result<Option<String>, OptionsError> {
    let text = match value {
        Value::Null | Value::Bool(false) => return Ok(None),
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(OptionsError::WrongType {
                name: OPTION_CMA,
                expected: "a size such as \"128MB\", or \"off\"",
                got: describe(value),
            });
        }
    };
    match text.to_ascii_lowercase().as_str() {
        "" | "off" | "none" | "false" | "no" => Ok(None),
        _ if is_cma_size(&text) => Ok(Some(text)),
        _ => Err(OptionsError::BadCma { given: text }),
    }
}

/// A string is split on whitespace (the imager CLI can only pass strings); a list keeps
/// one argument per entry.
fn as_kernel_args(value: &Value) -> Result<Vec<String>, OptionsError> {
    let wrong = || OptionsError::WrongType {
        name: OPTION_EXTRA_KERNEL_ARGS,
        expected: "a string of space-separated arguments or a list of strings",
        got: describe(value),
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(s.split_whitespace().map(str::to_owned).collect()),
        Value::Sequence(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.trim().is_empty() && !s.contains(char::is_whitespace) => {
                    Ok(s.clone())
                }
                _ => Err(wrong()),
            })
            .collect(),
        _ => Err(wrong()),
    }
}

/// The option names in `map` this overlay does not know.
pub fn unknown_options(map: &BTreeMap<String, Value>) -> Vec<String> {
    map.keys()
        .filter(|name| !KNOWN_OPTIONS.contains(&name.as_str()))
        .cloned()
        .collect()
}

/// A one-line warning naming ignored options, or `None` when there are none.
pub fn unknown_options_warning(map: &BTreeMap<String, Value>) -> Option<String> {
    let unknown = unknown_options(map);
    (!unknown.is_empty()).then(|| {
        format!("nanopi-m6: ignoring unknown overlay options {unknown:?}; this overlay knows {KNOWN_OPTIONS:?}")
    })
}

impl BoardOptions {
    /// Validates the options map. Names the overlay does not know are skipped, as the
    /// protocol's other installers do (an option meant for another overlay must not break
    /// the build); [`unknown_options`] lists them so the caller can warn about typos.
    pub fn from_map(map: &BTreeMap<String, Value>) -> Result<BoardOptions, OptionsError> {
        let mut options = BoardOptions::default();
        for (name, value) in map {
            match name.as_str() {
                OPTION_CONSOLE_BAUD => options.console_baud = as_baud(value)?,
                OPTION_DTB => options.dtb = as_dtb(value)?,
                OPTION_EARLYCON => options.earlycon = as_bool(OPTION_EARLYCON, value)?,
                OPTION_CMA => options.cma = as_cma(value)?,
                OPTION_SPI_BOOT => options.spi_boot = as_bool(OPTION_SPI_BOOT, value)?,
                OPTION_EXTRA_KERNEL_ARGS => options.extra_kernel_args = as_kernel_args(value)?,
                _ => {}
            }
        }
        Ok(options)
    }

    /// The kernel arguments `get-options` reports. Talos applies them with SetAll, so the
    /// `console=` pair replaces the platform's `ttyAMA0` default; the last console listed
    /// (the UART) becomes `/dev/console`. `spi_boot` changes no argument.
    pub fn kernel_args(&self) -> Vec<String> {
        let mut args = vec![
            "console=tty0".to_owned(),
            format!("console={CONSOLE_TTY},{}n8", self.console_baud),
        ];
        if let Some(cma) = &self.cma {
            args.push(format!("cma={cma}"));
        }
        args.extend(BASE_KERNEL_ARGS.iter().map(|a| (*a).to_owned()));
        if self.earlycon {
            args.push(EARLYCON.to_owned());
        }
        args.extend(self.extra_kernel_args.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(yaml: &str) -> BTreeMap<String, Value> {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_give_the_m6_console_at_1500000() {
        let args = BoardOptions::default().kernel_args();
        assert_eq!(
            args,
            [
                "console=tty0",
                "console=ttyS2,1500000n8",
                "cma=128MB",
                "sysctl.kernel.kexec_load_disabled=1",
                "talos.dashboard.disabled=1"
            ]
        );
    }

    #[test]
    fn cma_can_be_changed_or_dropped_and_bad_sizes_are_refused() {
        for (yaml, expect) in [
            ("cma: 256M\n", Some("cma=256M")),
            ("cma: \"64MB@0-4G\"\n", Some("cma=64MB@0-4G")),
            ("cma: 134217728\n", Some("cma=134217728")),
            ("cma: \"off\"\n", None),
            ("cma: false\n", None),
            ("cma: \"\"\n", None),
        ] {
            let args = BoardOptions::from_map(&map(yaml)).unwrap().kernel_args();
            let cma: Vec<_> = args.iter().filter(|a| a.starts_with("cma=")).collect();
            assert_eq!(cma.first().map(|a| a.as_str()), expect, "{yaml}");
            assert!(cma.len() <= 1);
        }
        for bad in [
            "cma: lots\n",
            "cma: 128XB\n",
            "cma: \"128MB@\"\n",
            "cma: \"M\"\n",
        ] {
            let err = BoardOptions::from_map(&map(bad)).unwrap_err();
            assert!(matches!(err, OptionsError::BadCma { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("\"off\""), "{err}");
        }
    }

    #[test]
    fn spi_boot_accepts_bool_and_string_forms() {
        for yaml in ["spi_boot: true\n", "spi_boot: \"true\"\n"] {
            assert!(
                BoardOptions::from_map(&map(yaml)).unwrap().spi_boot,
                "{yaml}"
            );
        }
        assert!(!BoardOptions::default().spi_boot);
        assert!(
            !BoardOptions::from_map(&map("spi_boot: \"false\"\n"))
                .unwrap()
                .spi_boot
        );
        let err = BoardOptions::from_map(&map("spi_boot: maybe\n")).unwrap_err();
        assert!(err.to_string().contains("spi_boot"), "{err}");
    }

    #[test]
    fn string_and_typed_values_mean_the_same() {
        let typed = BoardOptions::from_map(&map("earlycon: true\nconsole_baud: 115200\n")).unwrap();
        let strings =
            BoardOptions::from_map(&map("earlycon: \"true\"\nconsole_baud: \"115200\"\n")).unwrap();
        assert_eq!(typed, strings);
        assert!(typed.earlycon);
        assert_eq!(typed.console_baud, 115_200);
        assert!(
            typed
                .kernel_args()
                .contains(&"console=ttyS2,115200n8".to_owned())
        );
        assert!(typed.kernel_args().contains(&EARLYCON.to_owned()));
    }

    #[test]
    fn false_strings_are_false() {
        for text in ["false", "\"false\"", "\"0\"", "no"] {
            let options = BoardOptions::from_map(&map(&format!("earlycon: {text}\n"))).unwrap();
            assert!(!options.earlycon, "{text}");
        }
    }

    #[test]
    fn dtb_names_cover_vendor_and_upstream() {
        assert_eq!(
            DtbName::parse("rk3588s-nanopi-m6.dtb"),
            Some(DtbName::NanopiM6)
        );
        assert_eq!(
            DtbName::parse("rk3588s-nanopi-m6v1"),
            Some(DtbName::NanopiM6v1)
        );
        assert_eq!(
            DtbName::parse("rockchip/rk3588s-nanopi-m6v1.dtb"),
            Some(DtbName::NanopiM6v1)
        );
        assert_eq!(DtbName::parse("../../etc/passwd"), None);
        let err = BoardOptions::from_map(&map("dtb: rk3588s-nanopi-r6s.dtb\n")).unwrap_err();
        assert!(matches!(err, OptionsError::UnknownDtb { .. }));
    }

    #[test]
    fn extra_kernel_args_from_string_or_list() {
        let from_string =
            BoardOptions::from_map(&map("extra_kernel_args: \"cma=128MB  loglevel=7\"\n")).unwrap();
        let from_list =
            BoardOptions::from_map(&map("extra_kernel_args: [cma=128MB, loglevel=7]\n")).unwrap();
        assert_eq!(from_string.extra_kernel_args, ["cma=128MB", "loglevel=7"]);
        assert_eq!(from_string, from_list);
        assert_eq!(from_list.kernel_args().last().unwrap(), "loglevel=7");
    }

    #[test]
    fn bad_values_are_refused_with_the_option_name() {
        let err = BoardOptions::from_map(&map("console_baud: 12345\n")).unwrap_err();
        assert_eq!(err, OptionsError::UnsupportedBaud { baud: 12345 });
        let err = BoardOptions::from_map(&map("earlycon: maybe\n")).unwrap_err();
        assert!(err.to_string().contains("earlycon"), "{err}");
    }

    #[test]
    fn unknown_names_are_skipped_and_reported_for_a_warning() {
        let options = map("console-baud: 115200\nspi-boot: true\nearlycon: true\n");
        let parsed = BoardOptions::from_map(&options).unwrap();
        assert_eq!(parsed.console_baud, DEFAULT_CONSOLE_BAUD);
        assert!(parsed.earlycon);
        assert!(!parsed.spi_boot);
        assert_eq!(unknown_options(&options), ["console-baud", "spi-boot"]);
        let warning = unknown_options_warning(&options).unwrap();
        assert!(
            warning.contains("console-baud") && warning.contains("console_baud"),
            "{warning}"
        );
        assert_eq!(unknown_options_warning(&map("earlycon: true\n")), None);
    }
}
