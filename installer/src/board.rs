//! Fixed facts about the NanoPi M6 overlay: its name, where its artifacts live inside the
//! overlay tree, and its serial console. Disk offsets come from `rockusb_images::NANOPI_M6`.

pub use rockusb_images::NANOPI_M6 as LAYOUT;

/// The overlay name: the installer's file name in `installers/` and the profile's name.
pub const OVERLAY_NAME: &str = "nanopi-m6";

/// The bootloader, relative to the artifacts directory (`artifactsPath`).
pub const BOOTLOADER_ARTIFACT: &str = "arm64/u-boot/nanopi-m6/u-boot-rockchip.bin";

/// The optional SPI-NOR image, relative to the artifacts directory: the path upstream's
/// RK3588 overlays ship it at (`siderolabs/sbc-rockchip:artifacts/orangepi-5/u-boot/pkg.yaml`
/// installs `u-boot-rockchip-spi.bin` beside `u-boot-rockchip.bin`). The installer never
/// writes it; it is put on the board's SPI-NOR from MaskROM (`rockusb flash --storage spinor`).
pub const SPI_BOOTLOADER_ARTIFACT: &str = "arm64/u-boot/nanopi-m6/u-boot-rockchip-spi.bin";

/// The SPI-NOR size the SPI image must fit: 16 MiB, the size the virtual NanoPi M6 models
/// (docs/protocol.md §8). Confirm the part on your board before flashing a larger image.
pub const SPI_NOR_LEN: u64 = 16 * 1024 * 1024;

/// Where mainline U-Boot's `u-boot-rockchip-spi.bin` carries its RKNS ID block: 0xFF fill up
/// to byte 0x8000, the ID block there and the FIT at `CONFIG_SYS_SPI_U_BOOT_OFFS` (0x60000 in
/// the M6 defconfig). Seen in the RK3566 `u-boot-rockchip-spi.bin` of the shared test data
/// (`ophub/u-boot:u-boot/rockchip/orangepi-3b/u-boot-rockchip-spi.bin`).
pub const SPI_IDBLOCK_OFFSET: u64 = 0x8000;

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

/// The default contiguous-memory (CMA) reservation. Talos's arm64 kernel reserves only
/// 16 MiB (`CONFIG_CMA_SIZE_MBYTES=16` in `siderolabs/pkgs:kernel/build/config-arm64`,
/// v1.10.0 to v1.14.0), which the RK3588's display, video and camera blocks outgrow; the
/// upstream RK3588 overlays add `cma=128MB` (`siderolabs/sbc-rockchip:installers/rock5a`,
/// `rock5b`, `turingrk1`, `friendlyelec-cm3588-nas`, `src/main.go`, v0.2.0).
pub const DEFAULT_CMA: &str = "128MB";

/// Kernel arguments every NanoPi M6 node gets, besides the console and CMA.
/// kexec is disabled because kexec reboot does not work on RK3588 boards; the dashboard
/// is disabled because the board has no local display worth driving at boot.
pub const BASE_KERNEL_ARGS: &[&str] = &[
    "sysctl.kernel.kexec_load_disabled=1",
    "talos.dashboard.disabled=1",
];
