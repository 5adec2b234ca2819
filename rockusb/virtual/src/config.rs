//! What a virtual board is: its SoC identity, what it runs after a usbplug upload, and
//! the sizes of its storage. Written once when the board is created.

use super::link::LinkModel;
use serde::{Deserialize, Serialize};

/// What answers the bulk commands after a complete 0x472 upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Personality {
    /// Rockchip's rkbin usbplug for RK3588 (vendor U-Boot f_rockusb + f_mass_storage):
    /// the full opcode set with the replies measured on RK3588 boards. Its capability
    /// (`3f 07`) offers write parity, which is modelled as vendor U-Boot checks it (the
    /// usbplug's own code is closed); it has no USB 3 switch ("Switch USB3: disabled").
    Usbplug,
    /// A usbplug built from vendor U-Boot (`rk3588-usbplug.config`): write parity and the
    /// USB 3 switch (0xBB) in its capability, TEST_UNIT_READY 0xF7 answered with its 4 MiB
    /// buffer, little-endian residues, all as its source does (docs/protocol.md §9).
    UbootUsbplug,
    /// Mainline U-Boot's rockusb gadget: a smaller opcode set, "FAILunknown command" for
    /// opcodes outside its table, and big-endian residues (docs/protocol.md §5.2).
    MainlineUboot,
}

impl std::str::FromStr for Personality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "usbplug" => Ok(Personality::Usbplug),
            "uboot-usbplug" => Ok(Personality::UbootUsbplug),
            "mainline-uboot" | "mainline" => Ok(Personality::MainlineUboot),
            other => Err(format!(
                "unknown personality {other:?}: use usbplug, uboot-usbplug or mainline-uboot"
            )),
        }
    }
}

pub const GIB: u64 = 1 << 30;
pub const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardConfig {
    /// The board model this emulates, e.g. "nanopi-m6".
    pub model: String,
    pub personality: Personality,
    pub usb_vid: u16,
    /// The SoC's PID, the same in MaskROM and loader mode (docs/protocol.md §1.1).
    pub usb_pid: u16,
    /// The 16 bytes READ_CHIP_INFO returns.
    pub chip_info: [u8; 16],
    pub bus: u8,
    /// Port numbers from the root hub down; the port path is `bus-p1.p2…`.
    pub ports: Vec<u8>,
    pub emmc_bytes: u64,
    pub sd_bytes: u64,
    pub spinor_bytes: u64,
    /// Reproduce the vendor loaders' 32 MiB read wall (docs/protocol.md §6.1): reads that
    /// reach past sector 65536 return 0xCC with success.
    #[serde(default)]
    pub read_wall: bool,
    /// Pace transfers like a USB 2.0 link (benchmarks only); at SuperSpeed the board is
    /// paced by [`LinkModel::usb3`] instead.
    #[serde(default)]
    pub link: Option<LinkModel>,
    /// The virtual hub the board sits behind (its boards share one link), by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
    /// The host port (and cable) can carry SuperSpeed: after the USB 3 switch the board
    /// comes back at SuperSpeed, else at high speed, as vendor U-Boot falls back.
    #[serde(default = "yes")]
    pub port_superspeed: bool,
}

fn yes() -> bool {
    true
}

impl BoardConfig {
    /// A FriendlyElec NanoPi M6 (RK3588S): 32 GiB eMMC, no SD card inserted by default
    /// (an 8 GiB one can be configured), 16 MiB SPI-NOR.
    pub fn nanopi_m6(port: u8) -> Self {
        BoardConfig {
            model: "nanopi-m6".into(),
            personality: Personality::Usbplug,
            usb_vid: 0x2207,
            usb_pid: 0x350b,
            chip_info: rk3588_usbplug_chip_info(),
            bus: 1,
            ports: vec![port],
            emmc_bytes: 32 * GIB,
            sd_bytes: 8 * GIB,
            spinor_bytes: 16 * MIB,
            read_wall: false,
            link: None,
            hub: None,
            port_superspeed: true,
        }
    }

    pub fn port_path(&self) -> String {
        let ports: Vec<String> = self.ports.iter().map(u8::to_string).collect();
        format!("{}-{}", self.bus, ports.join("."))
    }
}

/// The chip info an RK3588 rkbin usbplug v1.11 returns: words 0x33353838 0x00040000
/// 0x8424000e 0x23062000, little-endian (docs/protocol.md §4.2).
pub fn rk3588_usbplug_chip_info() -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, word) in [0x3335_3838u32, 0x0004_0000, 0x8424_000e, 0x2306_2000]
        .iter()
        .enumerate()
    {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}
