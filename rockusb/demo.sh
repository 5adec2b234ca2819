#!/usr/bin/env bash
# The main job, end to end: start a loader on a board in MaskROM, then flash a Talos-shaped
# .raw.xz onto its eMMC (streamed, zero runs skipped where safe, verified by reading back)
# and print the partition table the board now holds.
#
# With no board attached it runs against the virtual NanoPi M6 and its labelled stand-in
# loader. For a real board in MaskROM, name a real loader:
#   ROCKUSB_LOADER=rk3588_spl_loader_v1.16.113.bin rockusb/demo.sh
# ROCKUSB_BIN runs a given binary (with a prefix such as qemu-aarch64-static) instead of
# building one, as CI does with the static release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in sgdisk xz; do
    if ! command -v "$tool" >/dev/null; then
        echo "demo.sh builds its test image with sgdisk and xz: sudo apt-get install gdisk xz-utils" >&2
        exit 1
    fi
done

if [ -n "${ROCKUSB_BIN:-}" ]; then
    read -r -a rockusb <<<"$ROCKUSB_BIN"
else
    cargo build --release -q -p rockusb-cli
    rockusb=("${CARGO_TARGET_DIR:-$PWD/target}/release/rockusb")
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "rockusb $*"; "${rockusb[@]}" "$@"; }

if [ -z "${ROCKUSB_VIRTUAL:-}" ] && [ -n "${ROCKUSB_LOADER:-}" ] \
    && "${rockusb[@]}" --json list 2>/dev/null | grep -q '"port_path"'; then
    loader=$ROCKUSB_LOADER
    echo "using the attached board with $loader"
else
    export ROCKUSB_VIRTUAL=${ROCKUSB_VIRTUAL:-nanopi-m6}
    export ROCKUSB_VIRTUAL_DIR=${ROCKUSB_VIRTUAL_DIR:-$work/boards}
    echo "no board attached (or ROCKUSB_LOADER unset): using the virtual NanoPi M6 in $ROCKUSB_VIRTUAL_DIR"
    loader=$work/standin.bin
    run loader standin -o "$loader"
fi

# A 256 MiB Talos-shaped image (EFI 64 MiB with 8 MiB of data, BOOT 160 MiB with 24 MiB of
# data from 80 MiB), compressed the way Talos does.
. rockusb/talos-shaped-image.sh
image=$work/talos-demo.raw
say "build a Talos-shaped image (sgdisk, xz -0 -T0)"
talos_shaped_image "$image" 256 64 160 8 80 24
ls -l "$image" "$image.xz"

run list
run boot "$loader"
run info
run flash "$image.xz"
run gpt
