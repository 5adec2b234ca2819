//! Fixed facts about the NanoPi M6 overlay: its name, where its artifacts live inside the
//! overlay tree, and its serial console. Disk offsets come from `rockusb_images::NANOPI_M6`.

pub use rockusb_images::NANOPI_M6 as LAYOUT;

/// The overlay name: the installer's file name in `installers/` and the profile's name.
pub const OVERLAY_NAME: &str = "nanopi-m6";

/// The bootloader, relative to the artifacts directory (`artifactsPath`).
pub const BOOTLOADER_ARTIFACT: &str = "arm64/u-boot/nanopi-m6/u-boot-rockchip.bin";

/// The directory holding the DTBs, relative to the artifacts directory.
pub const DTB_ARTIFACT_DIR: &str = "arm64/dtb/rockchip";

/// Where the overlays put the DTB below the mount prefix: on install and upgrade
/// `/boot/EFI` is the mounted ESP, where U-Boot's EFI loader looks under `/dtb`.
pub const DTB_INSTALL_DIR: &str = "boot/EFI/dtb/rockchip";

/// Where Talos ≥ 1.14 stages the ESP in image mode (`<prefix>/EFI`); the DTB must be
/// copied there too or it ends up only in the XFS BOOT partition, which U-Boot cannot read.
pub const IMAGE_MODE_ESP_DIR: &str = "EFI";
pub const IMAGE_MODE_DTB_DIR: &str = "EFI/dtb/rockchip";

/// UART2 at 0xFEB50000 is the debug header; U-Boot and the DDR blob run it at 1.5 Mbaud.
pub const CONSOLE_TTY: &str = "ttyS2";
pub const DEFAULT_CONSOLE_BAUD: u32 = 1_500_000;
pub const EARLYCON: &str = "earlycon=uart8250,mmio32,0xfeb50000";

/// Kernel arguments every NanoPi M6 node gets, besides the console.
/// kexec is disabled because kexec reboot does not work on RK3588 boards; the dashboard
/// is disabled because the board has no local display worth driving at boot.
pub const BASE_KERNEL_ARGS: &[&str] = &[
    "sysctl.kernel.kexec_load_disabled=1",
    "talos.dashboard.disabled=1",
];
