#!/usr/bin/env bash
# The main job, end to end: put a loader on a board in MaskROM, then write an image to its
# eMMC and read it back. With no board attached (or ROCKUSB_VIRTUAL set) it runs against
# the virtual NanoPi M6, using the labelled stand-in loader.
#
#   rockusb/demo.sh                 # virtual board unless a real one is attached
#   ROCKUSB_LOADER=rk3588_spl_loader_v1.16.113.bin rockusb/demo.sh   # a real board
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p rockusb
rockusb=$PWD/target/release/rockusb
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "rockusb $*"; "$rockusb" "$@"; }

if [ -z "${ROCKUSB_VIRTUAL:-}" ] && [ -n "${ROCKUSB_LOADER:-}" ] \
    && "$rockusb" --json list 2>/dev/null | grep -q '"port_path"'; then
    loader=$ROCKUSB_LOADER
    echo "using the attached board with $loader"
else
    export ROCKUSB_VIRTUAL=${ROCKUSB_VIRTUAL:-nanopi-m6}
    export ROCKUSB_VIRTUAL_DIR=${ROCKUSB_VIRTUAL_DIR:-$work/boards}
    echo "no board attached (or ROCKUSB_LOADER unset): using the virtual NanoPi M6 in $ROCKUSB_VIRTUAL_DIR"
    loader=$work/standin.bin
    run loader standin -o "$loader"
fi

run list
run boot "$loader"
run info

# A 16 MiB image: random data, written at sector 0 and read back.
head -c $((16 << 20)) /dev/urandom > "$work/image.raw"
run write 0 "$work/image.raw"
run read 0 $((16 << 11)) -o "$work/readback.raw"
say "cmp image.raw readback.raw"
cmp "$work/image.raw" "$work/readback.raw" && echo "identical: $(stat -c %s "$work/image.raw") bytes"
