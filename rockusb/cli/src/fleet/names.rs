//! The fleet file: names for the station's ports, used in its output, its report and its
//! page.
//!
//! ```toml
//! [ports]
//! "1-1.1" = "rack-a-slot-1"
//! "1-1.2" = "rack-a-slot-2"
//! "1-2" = "bench"
//! ```
//!
//! Ports are USB port paths as `rockusb list` shows them; they stay the same when a board
//! re-enumerates after its loader starts, so a name belongs to a place on the hub. Neither
//! the MaskROM nor the loaders this tool knows report a chip serial over USB, so names are
//! given by port; a `[serials]` table is refused rather than silently never matched.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    /// Port path → name.
    #[serde(default)]
    ports: BTreeMap<String, String>,
    #[serde(default)]
    serials: Option<toml::Table>,
}

impl FleetFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the fleet file {}", path.display()))?;
        Self::parse(&text).with_context(|| {
            format!(
                "{} is not a usable fleet file (expected a [ports] table of \"PORTPATH\" = \"NAME\" lines)",
                path.display()
            )
        })
    }

    pub fn parse(text: &str) -> Result<Self> {
        let file: FleetFile = toml::from_str(text)?;
        if file.serials.is_some() {
            bail!(
                "[serials]: the boards' MaskROM and loaders report no chip serial over USB, so \
                 boards can be named only by port; use a [ports] table"
            );
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (port, name) in &file.ports {
            if !valid_port(port) {
                bail!(
                    "{port:?} is not a USB port path: use BUS-PORT[.PORT…], as `rockusb list` \
                     shows (e.g. 1-3.2)"
                );
            }
            if name.trim().is_empty() {
                bail!("the name of port {port} is empty");
            }
            if let Some(other) = seen.insert(name, port) {
                bail!(
                    "the name {name:?} is given to both {other} and {port}: names must be unique"
                );
            }
        }
        Ok(file)
    }

    /// The name of the board at `port`, if the file gives one.
    pub fn name(&self, port: &str) -> Option<&str> {
        self.ports.get(port).map(String::as_str)
    }
}

/// `BUS-PORT[.PORT…]`, all numbers.
fn valid_port(port: &str) -> bool {
    let Some((bus, ports)) = port.split_once('-') else {
        return false;
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    number(bus) && ports.split('.').all(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_port_and_refusals() {
        let file =
            FleetFile::parse("[ports]\n\"1-1.2\" = \"slot-2\"\n\"1-3\" = \"bench\"\n").unwrap();
        assert_eq!(file.name("1-1.2"), Some("slot-2"));
        assert_eq!(file.name("1-3"), Some("bench"));
        assert_eq!(file.name("1-1"), None);
        assert!(FleetFile::parse("").unwrap().name("1-1").is_none());

        let err = |text: &str| format!("{:#}", FleetFile::parse(text).unwrap_err());
        assert!(err("[ports]\n\"usb3\" = \"x\"").contains("not a USB port path"));
        assert!(err("[ports]\n\"1-1\" = \"x\"\n\"1-2\" = \"x\"").contains("unique"));
        assert!(err("[ports]\n\"1-1\" = \" \"").contains("empty"));
        assert!(err("[serials]\nabc = \"x\"").contains("no chip serial"));
        assert!(err("[port]\n\"1-1\" = \"x\"").contains("unknown field"));
        assert!(err("[ports]\n\"1-1\" = 3").contains("invalid type"));
    }
}
