#!/usr/bin/env bash
# Benchmark: `rockusb fleet` flashing N virtual boards at once through the libusb shim, every
# board on the USB 2.0 link model (40 MB/s of bulk payload, 0.5 ms per command): N = 1, 2,
# 4 and 8 boards on separate root ports, and 4 boards behind one virtual hub (sharing one
# such link). For each: the station's wall time, that time divided by one board's, the
# host CPU seconds (user + system) per board, and the station's peak resident memory.
#
# The image is the flash benchmark's 2 GiB Talos-shaped .raw.xz (~370 MiB to write): made by
# `ROCKUSB_BENCH_DIR=DIR cargo bench -p rockusb-cli --bench flash`, which keeps it in DIR.
#
# Usage: rockusb/cli/benches/fleet.sh [IMAGE.raw.xz]
# Environment: ROCKUSB_BENCH_DIR (where the image is looked for), LOADER (default: the shared
# rk3588 v1.16.113 loader), COUNTS (default "1 2 4 8"), HUB (boards behind the hub, default
# 4; 0 skips it), KEEP=1 keeps the work folder.
set -euo pipefail

workspace=$(cd "$(dirname "$0")/../../.." && pwd)
image=${1:-${ROCKUSB_BENCH_DIR:-}/talos-bench.raw.xz}
loader=${LOADER:-$workspace/../shared/testdata/loaders/armbian-rkbin__rk3588_spl_loader_v1.16.113.bin}
counts=${COUNTS:-1 2 4 8}
hub=${HUB:-4}

[ -f "$image" ] || {
    echo "no image at $image: pass one, or build it with ROCKUSB_BENCH_DIR=DIR cargo bench -p rockusb-cli --bench flash" >&2
    exit 1
}
[ -f "$loader" ] || { echo "loader $loader not found; set LOADER=" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is missing (apt-get install time)" >&2; exit 1; }

# Release builds: the virtual boards run inside the station's process.
target=${CARGO_TARGET_DIR:-$workspace/target}
(cd "$workspace" && cargo build --quiet --release -p rockusb-cli -p rockusb-libusb-shim)
rockusb=$target/release/rockusb
shim=$target/release/libusb_shim.so

work=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }

# Runs the station on the boards NAMES (comma-separated); prints "wall cpu rss_kib".
station() {
    local names=$1 count=$2 dir=$work/boards
    rm -rf "$dir"
    mkdir -p "$dir"
    env -u ROCKUSB_VIRTUAL -u ROCKUSB_VIRTUAL_DIR LD_PRELOAD="$shim" \
        ROCKUSB_SHIM_BOARDS="$names" ROCKUSB_SHIM_DIR="$dir" ROCKUSB_SHIM_LINK=usb2 \
        ROCKUSB_STATE_DIR="$dir" \
        /usr/bin/time -f "%e %U %S %M" -o "$work/time" \
        "$rockusb" --json fleet --loader "$loader" --count "$count" --no-check \
        --report "$work/report-$count.json" "$image" >"$work/events.ndjson" 2>"$work/stderr" || {
        echo "the station failed:" >&2
        cat "$work/stderr" >&2
        exit 1
    }
    read -r wall user sys rss <"$work/time"
    echo "$wall $(calc "$user + $sys") $rss"
}

names() { # names PREFIX COUNT [@HUB]
    local i list=""
    for i in $(seq 1 "$2"); do list="$list,$1$i${3:-}"; done
    echo "${list#,}"
}

echo "image: $image ($(du -h "$image" | cut -f1) stored); USB 2.0 link model per root port"
printf '%-22s %9s %9s %14s %12s\n' boards "time (s)" "÷ one" "CPU s / board" "peak RSS"
one=""
for n in $counts; do
    read -r wall cpu rss < <(station "$(names b "$n")" "$n")
    one=${one:-$wall}
    printf '%-22s %9.1f %9s %14s %9d MiB\n' "$n on separate ports" "$wall" "$(calc "$wall / $one")" \
        "$(calc "$cpu / $n")" "$((rss / 1024))"
done
if [ "$hub" -gt 0 ]; then
    read -r wall cpu rss < <(station "$(names h "$hub" @hub1)" "$hub")
    printf '%-22s %9.1f %9s %14s %9d MiB\n' "$hub behind one hub" "$wall" "$(calc "$wall / ${one:-$wall}")" \
        "$(calc "$cpu / $hub")" "$((rss / 1024))"
    python3 - "$work/report-$hub.json" <<'PY' || true
import json, sys
report = json.load(open(sys.argv[1]))
for hub in report["hubs"]:
    print(f"hub {hub['hub']}: {hub['bytes_per_second'] / 1e6:.1f} MB/s for {hub['boards']} boards"
          + (f"; {hub['warning']}" if hub["warning"] else ""))
print("decode:", report.get("decode"))
PY
fi
