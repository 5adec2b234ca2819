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

# A 256 MiB Talos-shaped image: GPT entries at LBA 2 + 20480 and EFI/BIOS/BOOT/META as the
# Talos imager lays them out, an ID block at sector 64, some data in EFI and BOOT, then
# compressed the way Talos does (xz -0 -T0).
image=$work/talos-demo.raw
say "build a Talos-shaped image (sgdisk, xz -0 -T0)"
truncate -s 256M "$image"
sgdisk --move-main-table=20482 \
    -n 1:22528:+64M -t 1:EF00 -c 1:EFI \
    -n 2:0:+1M -t 2:EF02 -c 2:BIOS -A 2:set:2 \
    -n 3:0:+160M -t 3:8300 -c 3:BOOT \
    -n 4:0:+1M -t 4:8300 -c 4:META "$image" >/dev/null
{ printf 'RKNS'; head -c 200000 /dev/urandom; } | dd of="$image" bs=512 seek=64 conv=notrunc status=none
head -c $((8 << 20)) /dev/urandom | dd of="$image" bs=1M seek=11 conv=notrunc status=none
head -c $((24 << 20)) /dev/urandom | dd of="$image" bs=1M seek=80 conv=notrunc status=none
xz -0 -T0 -k "$image"
ls -l "$image" "$image.xz"

run list
run boot "$loader"
run info
run flash "$image.xz"
run gpt
