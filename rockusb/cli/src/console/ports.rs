//! Finding USB serial adapters: every tty under `/sys/class/tty` whose device sits on a
//! USB device, read from sysfs directly (so the build needs no libudev).

use anyhow::{Result, bail};
use std::fmt;
use std::path::{Path, PathBuf};

/// The USB-to-UART chips people wire to a board's debug UART, by VID:PID.
const KNOWN_CHIPS: &[(u16, u16, &str)] = &[
    (0x10c4, 0xea60, "CP210x"),
    (0x1a86, 0x7523, "CH340"),
    (0x0403, 0x6001, "FTDI FT232R"),
    (0x0403, 0x6010, "FTDI FT2232"),
    (0x0403, 0x6014, "FTDI FT232H"),
    (0x0403, 0x6015, "FTDI FT231X"),
    (0x067b, 0x2303, "PL2303"),
];

/// A tty that belongs to a USB device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsbSerialPort {
    /// The device node, e.g. `/dev/ttyUSB0`.
    pub device: PathBuf,
    pub vid: u16,
    pub pid: u16,
    /// The USB-to-UART chip, when it is one of the known ones.
    pub chip: Option<&'static str>,
    /// The USB product string, when the device has one.
    pub product: Option<String>,
    /// The USB serial number, when the device has one (tells two equal adapters apart).
    pub serial: Option<String>,
}

impl fmt::Display for UsbSerialPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:04x}:{:04x}",
            self.device.display(),
            self.vid,
            self.pid
        )?;
        if let Some(chip) = self.chip {
            write!(f, " {chip}")?;
        }
        if let Some(product) = &self.product {
            write!(f, ", \"{product}\"")?;
        }
        if let Some(serial) = &self.serial {
            write!(f, ", serial {serial}")?;
        }
        write!(f, ")")
    }
}

/// Every USB tty listed under `sys/class/tty`, with device nodes under `dev`, sorted by
/// name (ttyUSB2 before ttyUSB10). Ttys that vanish while being read are left out.
pub fn usb_serial_ports(sys: &Path, dev: &Path) -> Vec<UsbSerialPort> {
    let Ok(entries) = std::fs::read_dir(sys.join("class/tty")) else {
        return Vec::new();
    };
    let mut ports: Vec<UsbSerialPort> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_string();
            let usb_device = usb_device_of(&entry.path().join("device"))?;
            let vid = read_hex(&usb_device.join("idVendor"))?;
            let pid = read_hex(&usb_device.join("idProduct"))?;
            Some(UsbSerialPort {
                device: dev.join(name),
                vid,
                pid,
                chip: KNOWN_CHIPS
                    .iter()
                    .find(|(v, p, _)| (*v, *p) == (vid, pid))
                    .map(|(_, _, chip)| *chip),
                product: read_text(&usb_device.join("product")),
                serial: read_text(&usb_device.join("serial")),
            })
        })
        .collect();
    ports.sort_by_key(|port| natural_key(&port.device));
    ports
}

/// The one known adapter among `ports`; otherwise an error that lists what was found and
/// what to check.
pub fn pick(ports: &[UsbSerialPort]) -> Result<&UsbSerialPort> {
    let adapters: Vec<&UsbSerialPort> = ports.iter().filter(|p| p.chip.is_some()).collect();
    match adapters.as_slice() {
        [one] => Ok(one),
        [] => {
            let mut message = format!(
                "no USB serial adapter found (looked for {}). Check that:\n  \
                 - the adapter is plugged in: `lsusb` lists it\n  \
                 - its driver took it: `ls /dev/ttyUSB*` shows a port, and `dmesg | tail` \
                 right after plugging it in says which\n  \
                 - or name the port: rockusb console /dev/ttyS0",
                known_chips()
            );
            if !ports.is_empty() {
                message.push_str("\nother USB serial ports are attached (name one to use it):");
                for port in ports {
                    message.push_str(&format!("\n  {port}"));
                }
            }
            bail!(message)
        }
        several => {
            let mut message = format!(
                "{} USB serial adapters are attached; name the one wired to the board:",
                several.len()
            );
            for port in several {
                message.push_str(&format!("\n  {port}"));
            }
            message.push_str(&format!(
                "\nfor example: rockusb console {}",
                several[0].device.display()
            ));
            bail!(message)
        }
    }
}

/// The known chips for messages: `CP210x 10c4:ea60, CH340 1a86:7523, …`.
fn known_chips() -> String {
    KNOWN_CHIPS
        .iter()
        .map(|(vid, pid, chip)| format!("{chip} {vid:04x}:{pid:04x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The USB device (the sysfs folder with `idVendor`) above a tty's device: the tty's
/// device is the USB interface (ttyACM) or a port below it (ttyUSB), so it is one to three
/// levels up. Ttys with no device (ptys, the virtual consoles) or not on USB give `None`.
fn usb_device_of(tty_device: &Path) -> Option<PathBuf> {
    let device = std::fs::canonicalize(tty_device).ok()?;
    device
        .ancestors()
        .take(4)
        .find(|dir| dir.join("idVendor").is_file())
        .map(Path::to_path_buf)
}

fn read_text(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn read_hex(path: &Path) -> Option<u16> {
    u16::from_str_radix(&read_text(path)?, 16).ok()
}

/// Sorts `ttyUSB10` after `ttyUSB2`: the name without its digits, then the number.
fn natural_key(device: &Path) -> (String, u64) {
    let name = device.to_string_lossy();
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (stem.to_string(), number.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fake sysfs with a USB device holding one tty, laid out as the kernel does:
    /// `class/tty/NAME` links to the tty's folder and its `device` to the tty's device.
    fn add_usb_tty(sys: &Path, usb: &str, vid: &str, pid: &str, tty: &str, via_port: bool) {
        let usb_dir = sys.join("devices/pci0000:00/usb1").join(usb);
        let interface = usb_dir.join(format!("{usb}:1.0"));
        // ttyUSB: interface/ttyUSB0 is the usb-serial port, the tty hangs below it.
        // ttyACM: the interface itself is the tty's device.
        let device = if via_port {
            interface.join(tty)
        } else {
            interface.clone()
        };
        let tty_dir = device.join("tty").join(tty);
        fs::create_dir_all(&tty_dir).unwrap();
        fs::write(usb_dir.join("idVendor"), format!("{vid}\n")).unwrap();
        fs::write(usb_dir.join("idProduct"), format!("{pid}\n")).unwrap();
        fs::write(usb_dir.join("product"), "USB Serial\n").unwrap();
        std::os::unix::fs::symlink(&device, tty_dir.join("device")).unwrap();
        fs::create_dir_all(sys.join("class/tty")).unwrap();
        std::os::unix::fs::symlink(&tty_dir, sys.join("class/tty").join(tty)).unwrap();
    }

    #[test]
    fn finds_usb_ttys_and_names_known_chips() {
        let sys = tempfile::tempdir().unwrap();
        add_usb_tty(sys.path(), "1-1", "10c4", "ea60", "ttyUSB10", true);
        add_usb_tty(sys.path(), "1-2", "1a86", "7523", "ttyUSB2", true);
        add_usb_tty(sys.path(), "1-3", "2e8a", "000a", "ttyACM0", false);
        // A tty with no device (like a pty or a virtual console) is not a USB port.
        fs::create_dir_all(sys.path().join("class/tty/tty0")).unwrap();

        let ports = usb_serial_ports(sys.path(), Path::new("/dev"));
        let names: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            names,
            [
                "/dev/ttyACM0 (2e8a:000a, \"USB Serial\")",
                "/dev/ttyUSB2 (1a86:7523 CH340, \"USB Serial\")",
                "/dev/ttyUSB10 (10c4:ea60 CP210x, \"USB Serial\")",
            ]
        );
    }

    fn port(device: &str, vid: u16, pid: u16, chip: Option<&'static str>) -> UsbSerialPort {
        UsbSerialPort {
            device: device.into(),
            vid,
            pid,
            chip,
            product: None,
            serial: None,
        }
    }

    #[test]
    fn picks_the_only_adapter_among_other_usb_ports() {
        let ports = [
            port("/dev/ttyACM0", 0x2e8a, 0x000a, None),
            port("/dev/ttyUSB0", 0x10c4, 0xea60, Some("CP210x")),
        ];
        assert_eq!(pick(&ports).unwrap().device, Path::new("/dev/ttyUSB0"));
    }

    #[test]
    fn several_adapters_are_listed_not_guessed() {
        let ports = [
            port("/dev/ttyUSB0", 0x10c4, 0xea60, Some("CP210x")),
            port("/dev/ttyUSB1", 0x0403, 0x6001, Some("FTDI FT232R")),
        ];
        let message = pick(&ports).unwrap_err().to_string();
        assert!(
            message.starts_with("2 USB serial adapters are attached"),
            "{message}"
        );
        assert!(
            message.contains("/dev/ttyUSB0 (10c4:ea60 CP210x)"),
            "{message}"
        );
        assert!(
            message.contains("/dev/ttyUSB1 (0403:6001 FTDI FT232R)"),
            "{message}"
        );
        assert!(
            message.contains("rockusb console /dev/ttyUSB0"),
            "{message}"
        );
    }

    #[test]
    fn no_adapter_says_what_to_check_and_shows_other_ports() {
        let message = pick(&[port("/dev/ttyACM0", 0x2e8a, 0x000a, None)])
            .unwrap_err()
            .to_string();
        for expected in [
            "no USB serial adapter found",
            "CH340 1a86:7523",
            "PL2303 067b:2303",
            "lsusb",
            "dmesg",
            "/dev/ttyACM0 (2e8a:000a)",
        ] {
            assert!(message.contains(expected), "{expected:?} not in {message}");
        }
    }

    #[test]
    fn no_sysfs_means_no_ports() {
        let sys = tempfile::tempdir().unwrap();
        assert!(usb_serial_ports(&sys.path().join("missing"), Path::new("/dev")).is_empty());
    }
}
