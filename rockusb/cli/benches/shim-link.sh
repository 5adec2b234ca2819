#!/usr/bin/env bash
# Benchmark: the same raw file (512 MiB by default) written to a virtual NanoPi M6 by
# Debian's `rkdeveloptool wl` and by `rockusb write`, both through the libusb shim
# (LD_PRELOAD) and both on the virtual board's USB 2.0 link model (40 MB/s of bulk
# payload, 0.5 ms per command: CBW + CSW + the device's commit). Prints both times and
# their ratio. The link model makes the figures a property of each client's protocol use
# (command size, round trips), not of this machine's disk.
#
# Usage: rockusb/cli/benches/shim-link.sh [SIZE_MIB]
# Environment: LOADER (default: the shared rk3588 v1.16.113 loader), LINK (usb2, off, or
# RATE,OVERHEAD as ROCKUSB_SHIM_LINK takes it; default usb2), KEEP=1 keeps the work folder.
set -euo pipefail

size_mib=${1:-512}
link=${LINK:-usb2}
workspace=$(cd "$(dirname "$0")/../../.." && pwd)
loader=${LOADER:-$workspace/../shared/testdata/loaders/armbian-rkbin__rk3588_spl_loader_v1.16.113.bin}

command -v rkdeveloptool >/dev/null || { echo "rkdeveloptool is missing (apt-get install rkdeveloptool)" >&2; exit 1; }
[ -f "$loader" ] || { echo "loader $loader not found; set LOADER=" >&2; exit 1; }

# Release builds: the virtual board runs inside the client process, so a debug build
# would charge the shim's own slowness to the client.
(cd "$workspace" && cargo build --quiet --release -p rockusb-cli -p rockusb-libusb-shim)
rockusb=$workspace/target/release/rockusb
shim=$workspace/target/release/libusb_shim.so

work=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
# rkdeveloptool logs beside its executable, so it runs from a copy in the work folder.
cp "$(command -v rkdeveloptool)" "$work/rkdeveloptool"

# One board per client, so each starts from the same fresh state.
shimmed() {
    local board=$1; shift
    env -u ROCKUSB_VIRTUAL -u ROCKUSB_VIRTUAL_DIR LD_PRELOAD="$shim" \
        ROCKUSB_SHIM_BOARDS="$board" ROCKUSB_SHIM_DIR="$work/boards" ROCKUSB_SHIM_LINK="$link" "$@"
}
now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }

echo "making a ${size_mib} MiB file of random data (nothing for either client to skip)"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/image.raw"

# Both boards' eMMC backing files get their first SIZE_MIB written before the timed runs:
# allocating blocks in a fresh sparse file costs this host's file system more for 1 MiB
# writes (rockusb) than for 64 KiB ones (rkdeveloptool), measured at ~0.4 s of system time
# per 128 MiB, and that is the host's cost, not the link's.
preallocate() {
    dd if=/dev/zero of="$work/boards/$1/emmc.img" bs=1M count="$size_mib" conv=notrunc status=none
}
# Each timed run starts with no dirty page cache, so neither pays for the other's
# writeback (the input file and both boards' backing files are SIZE_MIB each).
shimmed rkdt "$work/rkdeveloptool" db "$loader" >/dev/null
preallocate rkdt
sync
start=$(now)
shimmed rkdt "$work/rkdeveloptool" wl 0 "$work/image.raw" >/dev/null
rkdt_s=$(calc "$(now) - $start")

shimmed rk "$rockusb" boot "$loader" >/dev/null 2>&1
preallocate rk
sync
start=$(now)
shimmed rk "$rockusb" write 0 "$work/image.raw" >/dev/null 2>&1
rockusb_s=$(calc "$(now) - $start")

# Both must have written the file exactly (compared against the boards' backing files).
for board in rkdt rk; do
    cmp -n "$((size_mib * 1024 * 1024))" "$work/image.raw" "$work/boards/$board/emmc.img" ||
        { echo "board $board does not hold the file" >&2; exit 1; }
done

mb=$(calc "$size_mib * 1048576 / 1000000")
printf 'link model: %s; file: %d MiB\n' "$link" "$size_mib"
printf 'rkdeveloptool wl : %7.2f s  (%5.1f MB/s)\n' "$rkdt_s" "$(calc "$mb / $rkdt_s")"
printf 'rockusb write    : %7.2f s  (%5.1f MB/s)\n' "$rockusb_s" "$(calc "$mb / $rockusb_s")"
printf 'ratio rkdeveloptool / rockusb: %.2f\n' "$(calc "$rkdt_s / $rockusb_s")"
