#!/usr/bin/env bash
# Builds the statically linked nanopi-m6 installers for x86_64 and aarch64 and packs the
# NanoPi M6 Talos overlay (linux/amd64 + linux/arm64).
#
#   installer/build-overlay.sh --bootloader u-boot-rockchip.bin --dtb rk3588s-nanopi-m6.dtb \
#       [--dtb rk3588s-nanopi-m6v1.dtb] [--spi-bootloader u-boot-rockchip-spi.bin] \
#       [--format oci-archive|oci-dir|tree-tar] [--arch amd64|arm64] \
#       [--output nanopi-m6-overlay.oci.tar] [--tag TAG]
#
# --format: oci-archive (default, to push), oci-dir (for overlay.image.ociPath), tree-tar
# (one platform's tree for overlay.image.tarballPath; --arch, default this machine's).
# Needs (Debian): rustc-web, libstd-rust-web-dev:arm64 (after dpkg --add-architecture arm64)
# and gcc-aarch64-linux-gnu; see docs/talos-overlay.md. Environment: CARGO (default cargo),
# CARGO_TARGET_DIR (default <workspace>/target), DEBIAN_RUSTC (default /usr/bin/rustc),
# SOURCE_DATE_EPOCH (tar timestamps, default 0), OVERLAY_PROFILE (the Cargo profile, default
# release; the tests use the quicker cross-check).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
cargo=${CARGO:-cargo}
target_dir=${CARGO_TARGET_DIR:-$root/target}
debian_rustc=${DEBIAN_RUSTC:-/usr/bin/rustc}
output=nanopi-m6-overlay.oci.tar
tag=latest
bootloader=
dtbs=()
extra=()

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --bootloader) bootloader=${2:?--bootloader needs a file}; shift 2 ;;
        --dtb) dtbs+=(--dtb "${2:?--dtb needs a file}"); shift 2 ;;
        --spi-bootloader) extra+=(--spi-bootloader "${2:?--spi-bootloader needs a file}"); shift 2 ;;
        --format) extra+=(--format "${2:?--format needs oci-archive, oci-dir or tree-tar}"); shift 2 ;;
        --arch) extra+=(--arch "${2:?--arch needs amd64 or arm64}"); shift 2 ;;
        --output) output=${2:?--output needs a file}; shift 2 ;;
        --tag) tag=${2:?--tag needs a value}; shift 2 ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done
[ -n "$bootloader" ] || { echo "missing --bootloader u-boot-rockchip.bin" >&2; usage; }
[ ${#dtbs[@]} -gt 0 ] || { echo "missing --dtb rk3588s-nanopi-m6.dtb" >&2; usage; }
[ -x "$debian_rustc" ] || {
    echo "$debian_rustc not found: the aarch64 build needs Debian's rustc with the arm64 std" >&2
    echo "  dpkg --add-architecture arm64 && apt-get update && apt-get install -y rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu" >&2
    exit 1
}
command -v aarch64-linux-gnu-gcc >/dev/null || { echo "aarch64-linux-gnu-gcc not found: apt-get install -y gcc-aarch64-linux-gnu" >&2; exit 1; }

static="-C target-feature=+crt-static"
profile=${OVERLAY_PROFILE:-release}
# The installers ship in the overlay image: no debug info, symbols stripped.
profile_env=${profile^^}
profile_env=${profile_env//-/_}
export "CARGO_PROFILE_${profile_env}_DEBUG=false" "CARGO_PROFILE_${profile_env}_STRIP=symbols"

# Debian's rustc builds the x86_64 installer too when it has that standard library (it
# does on an x86_64 Debian): one compiler builds the build scripts and proc macros once
# for both targets.
x86_rustc=${RUSTC:-rustc}
[ -d "$("$debian_rustc" --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/lib" ] && x86_rustc=$debian_rustc

echo "building the static x86_64 installer and packer ($profile profile)" >&2
RUSTC="$x86_rustc" RUSTFLAGS="$static" "$cargo" build --profile "$profile" --manifest-path "$root/Cargo.toml" \
    --target x86_64-unknown-linux-gnu -p nanopi-m6-installer --target-dir "$target_dir"

echo "building the static aarch64 installer (Debian rustc, $profile profile)" >&2
RUSTC="$debian_rustc" CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
RUSTFLAGS="$static" "$cargo" build --profile "$profile" --manifest-path "$root/Cargo.toml" \
    --target aarch64-unknown-linux-gnu -p nanopi-m6-installer --bin nanopi-m6 --target-dir "$target_dir"

"$target_dir/x86_64-unknown-linux-gnu/$profile/nanopi-m6-overlay" pack \
    --installer-amd64 "$target_dir/x86_64-unknown-linux-gnu/$profile/nanopi-m6" \
    --installer-arm64 "$target_dir/aarch64-unknown-linux-gnu/$profile/nanopi-m6" \
    --bootloader "$bootloader" "${dtbs[@]}" \
    --profile "$here/profiles/nanopi-m6.yaml" \
    --output "$output" --tag "$tag" ${extra[@]+"${extra[@]}"}
