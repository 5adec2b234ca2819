//! The DTB gate: refuse to install a device tree that is not the NanoPi M6's, or that
//! leaves out hardware the board needs to run Talos (storage, network, cooling, the
//! watchdog, CPU frequency scaling).
//!
//! Nodes are found by unit address plus `compatible`, not by label or node name: labels
//! exist only in DTBs built with `-@`, and vendor and upstream trees name some nodes
//! differently, but the RK3588S register addresses and the driver compatibles agree.

use crate::fdt::{Fdt, FdtError};
use std::fmt;
use thiserror::Error;

/// Board compatibles: upstream Linux (`friendlyarm,`, Joachim Eastwood's series) and the
/// FriendlyElec vendor kernel / Armbian trees (`friendlyelec,`).
pub const BOARD_COMPATIBLES: &[&str] = &["friendlyarm,nanopi-m6", "friendlyelec,nanopi-m6"];
/// SoC compatibles: upstream says `rockchip,rk3588s`; the Rockchip BSP kernel describes
/// the RK3588S boards as plain `rockchip,rk3588`.
pub const SOC_COMPATIBLES: &[&str] = &["rockchip,rk3588s", "rockchip,rk3588"];

/// A peripheral the board must have, found by unit address and driver compatible.
#[derive(Debug, Clone, Copy)]
pub struct Peripheral {
    /// What the user reads in an error.
    pub name: &'static str,
    /// Accepted unit addresses; any one enabled instance satisfies the requirement.
    pub unit_addresses: &'static [&'static str],
    /// Accepted compatibles; the node must list at least one.
    pub compatibles: &'static [&'static str],
}

/// The NanoPi M6's hardware, as the RK3588S places it.
pub const REQUIRED_PERIPHERALS: &[Peripheral] = &[
    Peripheral {
        name: "eMMC (sdhci, mmc@fe2e0000)",
        unit_addresses: &["fe2e0000"],
        compatibles: &["rockchip,rk3588-dwcmshc"],
    },
    Peripheral {
        name: "Ethernet (gmac1, ethernet@fe1c0000)",
        unit_addresses: &["fe1c0000"],
        compatibles: &["rockchip,rk3588-gmac"],
    },
    Peripheral {
        name: "USB 3.0 host (usb@fc000000)",
        unit_addresses: &["fc000000"],
        compatibles: &["snps,dwc3", "rockchip,rk3588-dwc3"],
    },
    Peripheral {
        name: "USB 2.0 host (EHCI, usb@fc800000 or usb@fc880000)",
        unit_addresses: &["fc800000", "fc880000"],
        compatibles: &["generic-ehci", "rockchip,rk3588-ehci"],
    },
    Peripheral {
        name: "PCIe for the M.2 NVMe slot (pcie2x1l2, pcie@fe190000)",
        unit_addresses: &["fe190000"],
        compatibles: &["rockchip,rk3588-pcie"],
    },
    Peripheral {
        name: "thermal sensor (tsadc, tsadc@fec00000)",
        unit_addresses: &["fec00000"],
        compatibles: &["rockchip,rk3588-tsadc"],
    },
    Peripheral {
        name: "watchdog (watchdog@feaf0000)",
        unit_addresses: &["feaf0000"],
        compatibles: &["snps,dw-wdt"],
    },
];

/// Name used for the CPU frequency-scaling requirement in reports.
pub const CPU_OPP_NAME: &str = "CPU operating points (operating-points-v2 on every CPU)";

/// One piece of hardware the DTB does not provide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub name: &'static str,
    pub reason: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.reason)
    }
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DtbGateError {
    #[error("not a valid device tree: {0}")]
    Invalid(#[from] FdtError),
    #[error(
        "this DTB is for another board (model {}, compatible {compatible:?}); a NanoPi M6 DTB lists one of {BOARD_COMPATIBLES:?} and one of {SOC_COMPATIBLES:?}: use rk3588s-nanopi-m6.dtb (vendor/Armbian) or rk3588s-nanopi-m6v1.dtb (upstream series)",
        .model.as_deref().unwrap_or("<none>")
    )]
    OtherBoard {
        model: Option<String>,
        compatible: Vec<String>,
    },
    #[error(
        "the NanoPi M6 DTB lacks hardware the board needs: {}; rebuild the DTB with these nodes enabled",
        .missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    MissingHardware { missing: Vec<Missing> },
}

/// What the gate learned about an accepted DTB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedDtb {
    pub model: Option<String>,
    pub compatible: Vec<String>,
    /// What works with this tree but not as a user would expect (the board still runs
    /// Talos): said at install and by `check-dtb`, never a refusal.
    pub warnings: Vec<String>,
}

/// The debug UART the kernel's serial console (`ttyS2`) and the board's 3-pin header use.
pub const CONSOLE_UART: Peripheral = Peripheral {
    name: "the debug UART (uart2, serial@feb50000, Linux ttyS2: the board's serial header)",
    unit_addresses: &["feb50000"],
    compatibles: &["rockchip,rk3588-uart", "snps,dw-apb-uart"],
};

/// Checks that `dtb` is a NanoPi M6 device tree with all of the board's hardware enabled.
pub fn check(dtb: &[u8]) -> Result<AcceptedDtb, DtbGateError> {
    let fdt = Fdt::parse(dtb)?;
    let root = fdt.root();
    let compatible = root.string_list("compatible");
    let model = root.string("model");
    let is_board = compatible
        .iter()
        .any(|c| BOARD_COMPATIBLES.contains(&c.as_str()));
    let is_soc = compatible
        .iter()
        .any(|c| SOC_COMPATIBLES.contains(&c.as_str()));
    if !(is_board && is_soc) {
        return Err(DtbGateError::OtherBoard { model, compatible });
    }

    let mut missing: Vec<Missing> = REQUIRED_PERIPHERALS
        .iter()
        .filter_map(|p| check_peripheral(&fdt, p).err())
        .collect();
    if let Err(problem) = check_cpu_operating_points(&fdt) {
        missing.push(problem);
    }
    if missing.is_empty() {
        let warnings = console_warning(&fdt).into_iter().collect();
        Ok(AcceptedDtb {
            model,
            compatible,
            warnings,
        })
    } else {
        Err(DtbGateError::MissingHardware { missing })
    }
}

fn check_peripheral(fdt: &Fdt, peripheral: &Peripheral) -> Result<(), Missing> {
    let matches: Vec<usize> = fdt
        .nodes()
        .iter()
        .enumerate()
        .filter(|(_, node)| {
            node.unit_address()
                .is_some_and(|addr| peripheral.unit_addresses.contains(&addr))
                && node.is_compatible_with_any(peripheral.compatibles)
        })
        .map(|(index, _)| index)
        .collect();
    if matches.iter().any(|&index| fdt.is_enabled(index)) {
        return Ok(());
    }
    let reason = match matches.first() {
        None => "no such node".to_owned(),
        Some(&index) => format!("{} is disabled", fdt.path_of(index)),
    };
    Err(Missing {
        name: peripheral.name,
        reason,
    })
}

/// Vendor trees (FriendlyElec's, Armbian's BSP builds) disable uart2 and give it to
/// Rockchip's FIQ debugger (`ttyFIQ0`), a driver only the BSP kernels have: with Talos's
/// kernel the serial header then goes quiet once early boot is over. The board runs, so
/// this is said, not refused.
fn console_warning(fdt: &Fdt) -> Option<String> {
    let problem = check_peripheral(fdt, &CONSOLE_UART).err()?;
    let fiq_debugger = fdt.nodes().iter().enumerate().any(|(index, node)| {
        node.is_compatible_with_any(&["rockchip,fiq-debugger"]) && fdt.is_enabled(index)
    });
    let why = if fiq_debugger {
        "; this tree hands it to Rockchip's FIQ debugger (ttyFIQ0), which only Rockchip's BSP kernels have"
    } else {
        ""
    };
    Some(format!(
        "{} is not enabled ({}){why}: Talos's kernel prints nothing on the serial console \
         (console={}) after early boot. For a serial console, use a DTB with \
         serial@feb50000 enabled (the upstream rk3588s-nanopi-m6 tree, or this one with \
         status = \"okay\" there). U-Boot still prints there, and so does early boot with the \
         earlycon option.",
        CONSOLE_UART.name,
        problem.reason,
        crate::board::CONSOLE_TTY,
    ))
}

/// Every CPU must point at an OPP table with at least one `opp-hz` entry; without it
/// cpufreq cannot scale and the big cores stay at their boot clock.
fn check_cpu_operating_points(fdt: &Fdt) -> Result<(), Missing> {
    let missing = |reason: String| Missing {
        name: CPU_OPP_NAME,
        reason,
    };
    let cpus = fdt
        .find_path("/cpus")
        .ok_or_else(|| missing("the tree has no /cpus node".to_owned()))?;
    let cpu_nodes: Vec<usize> = fdt
        .node(cpus)
        .map(|n| n.children.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|&i| fdt.node(i).and_then(|n| n.string("device_type")).as_deref() == Some("cpu"))
        .collect();
    if cpu_nodes.is_empty() {
        return Err(missing("/cpus has no cpu nodes".to_owned()));
    }
    let mut problems = Vec::new();
    for cpu in cpu_nodes {
        let Some(node) = fdt.node(cpu) else { continue };
        let name = &node.name;
        let Some(phandle) = node.u32_cell("operating-points-v2") else {
            problems.push(format!("{name} has no operating-points-v2"));
            continue;
        };
        let Some(table) = fdt.find_phandle(phandle).and_then(|i| fdt.node(i)) else {
            problems.push(format!("{name} points at a missing OPP table"));
            continue;
        };
        let has_opp = table
            .children
            .iter()
            .filter_map(|&i| fdt.node(i))
            .any(|opp| opp.property("opp-hz").is_some());
        if !has_opp {
            problems.push(format!(
                "{name}'s OPP table {} has no opp-hz entries",
                table.name
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(missing(problems.join(", ")))
    }
}
