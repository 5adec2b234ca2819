#!/usr/bin/env bash
# Runs the Windows build end to end under wine against the virtual NanoPi M6: list, boot
# with the stand-in loader and with a real rk3588 loader from the shared test data, info, a
# flash of a Talos-shaped .raw.xz with read-back verify, gpt, backup, read, write and loader
# verify, every path given Windows-style (Z:\...\file). Then it checks on the Linux side
# that the virtual board's eMMC holds the image byte for byte, that the backup and the reads
# match it, and that each command said what it should.
#
#   rockusb/wine-check.sh rockusb-<version>-x86_64-pc-windows-gnu.zip    (or rockusb.exe)
#
# A zip is checked first (its SHA256SUMS, no DLL shipped in it). Debian 12's wine has no
# bcryptprimitives.dll (Windows 10's, which Rust's std imports); the stand-in this script
# builds for it with x86_64-w64-mingw32-gcc goes beside the exe in a scratch folder only.
# Needs wine (wine, wine64), gcc-mingw-w64-x86-64, gdisk, xz-utils and unzip for a zip.
# The real loader comes from ../shared/testdata (or ROCKUSB_TESTDATA); without it that step
# says SKIPPED, and under CI (CI set) fails, as the test suite does.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -eq 1 ] || { echo "usage: rockusb/wine-check.sh ZIP|EXE" >&2; exit 2; }
input=$(realpath "$1")
started=$(date +%s)

in_ci() { [ -n "${CI:-}" ] && [ "$CI" != false ] && [ "$CI" != 0 ]; }
fail() { printf '\nFAIL: wine check: %s\n' "$*" >&2; exit 1; }
for tool in sgdisk xz x86_64-w64-mingw32-gcc cmp; do
    command -v "$tool" >/dev/null || fail "needs $tool (apt-get install gdisk xz-utils gcc-mingw-w64-x86-64)"
done
wine=$(command -v wine || command -v wine64 || true)
[ -n "$wine" ] || fail "needs wine (apt-get install wine wine64)"
wineserver=$(command -v wineserver || echo /usr/lib/wine/wineserver)

work=$(mktemp -d /tmp/rockusb-wine.XXXXXX)
export WINEPREFIX=$work/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
mkdir "$WINEPREFIX"
# wineserver keeps its socket in /tmp/wine-*/server-DEV-INODE (of the prefix): removed too.
server=$(stat -c '%d %i' "$WINEPREFIX" | { read -r dev ino; printf 'server-%x-%x' "$dev" "$ino"; })
cleanup() {
    "$wineserver" -k 2>/dev/null || true
    "$wineserver" -w 2>/dev/null || true
    local dir
    for dir in /tmp/wine-*/"$server"; do
        [ -d "$dir" ] || continue
        rm -rf "$dir"
        rmdir "${dir%/*}" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# A Linux path as wine's Windows programs name it: drive Z: is /.
winpath() {
    local p=${1//\//\\}
    printf 'Z:%s' "$p"
}

step=0
say() {
    step=$((step + 1))
    printf '\n\033[1m[%d] %s\033[0m\n' "$step" "$*"
}
# Checks that the last command's output (in $work/out) holds each of the given phrases.
expect() {
    local phrase
    for phrase in "$@"; do
        grep -qF -- "$phrase" "$work/out" || fail "step $step: the output lacks \"$phrase\""
    done
}
# Runs rockusb.exe under wine with the output shown (indented) and kept in $work/out;
# fails the check if it exits non-zero.
run() {
    printf '$ rockusb.exe %s\n' "$*"
    local status=0
    "$wine" "$exe" "$@" >"$work/out" 2>&1 || status=$?
    sed 's/^/    /' "$work/out"
    [ $status -eq 0 ] || fail "step $step: rockusb.exe $* exited with status $status"
}
# The same for a command that must fail: status 1 and the given message.
refused() {
    local message=$1
    shift
    printf '$ rockusb.exe %s   (must be refused)\n' "$*"
    local status=0
    "$wine" "$exe" "$@" >"$work/out" 2>&1 || status=$?
    sed 's/^/    /' "$work/out"
    [ $status -eq 1 ] || fail "step $step: rockusb.exe $* exited with status $status, not 1"
    expect "$message"
}

mkdir -p "$work/bin" "$work/files"
say "the build under test: $(basename "$input")"
case $input in
    *.zip)
        command -v unzip >/dev/null || fail "needs unzip for a zip (apt-get install unzip)"
        unzip -q "$input" -d "$work/unpacked"
        dir=$(echo "$work"/unpacked/*/)
        (cd "$dir" && sha256sum -c --quiet SHA256SUMS) || fail "the zip's SHA256SUMS do not match"
        for f in rockusb.exe README.md WINDOWS.txt LICENSE-MIT LICENSE-APACHE licenses/libusb-LGPL-2.1.txt; do
            [ -f "$dir/$f" ] || fail "the zip lacks $f"
        done
        ! find "$dir" -iname '*.dll' | grep -q . || fail "the zip holds a DLL: $(find "$dir" -iname '*.dll')"
        cp "$dir/rockusb.exe" "$work/bin/"
        (cd "$dir" && find . -type f | sort | sed 's/^/    /')
        ;;
    *.exe) cp "$input" "$work/bin/rockusb.exe" ;;
    *) fail "$input is neither a .zip nor an .exe" ;;
esac
exe=$work/bin/rockusb.exe

say "start wine (a fresh prefix in $WINEPREFIX)"
"$wine" wineboot --init >"$work/wineboot.log" 2>&1 || true
"$wineserver" -w
if [ -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
    echo "this wine has bcryptprimitives.dll"
else
    # ProcessPrng, the one function Rust's std takes from it, from RtlGenRandom.
    cat >"$work/bp.c" <<'EOF'
#include <windows.h>
#include <ntsecapi.h>
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) { return RtlGenRandom(data, (ULONG)len); }
EOF
    printf 'LIBRARY bcryptprimitives\nEXPORTS\nProcessPrng\n' >"$work/bp.def"
    x86_64-w64-mingw32-gcc -shared -o "$work/bin/bcryptprimitives.dll" "$work/bp.c" "$work/bp.def" -ladvapi32
    echo "this wine has no bcryptprimitives.dll: a stand-in built beside the exe (test only)"
fi
run --version
expect "rockusb "

# The virtual board's state in a Windows path; the board is named by the environment, as
# ROCKUSB_VIRTUAL in the README, except where --virtual is tried too.
boards=$work/boards
mkdir -p "$boards"
export ROCKUSB_VIRTUAL_DIR
ROCKUSB_VIRTUAL_DIR=$(winpath "$boards")
unset ROCKUSB_VIRTUAL ROCKUSB_STATE_DIR ROCKUSB_LOADER_PATH

say "list (--virtual nanopi-m6, ROCKUSB_VIRTUAL_DIR=$ROCKUSB_VIRTUAL_DIR)"
run --virtual nanopi-m6 list
expect "1-1  2207:350b  RK3588  maskrom" "(virtual nanopi-m6)"
export ROCKUSB_VIRTUAL=nanopi-m6

say "boot with the stand-in loader"
standin=$(winpath "$work/files/standin.bin")
run loader standin -o "$standin"
expect "wrote the RK3588 stand-in loader"
run boot "$standin"
expect "booted: 1-1  2207:350b  RK3588  loader"

say "boot with the real rk3588 loader (shared test data)"
testdata=${ROCKUSB_TESTDATA:-$PWD/../shared/testdata}
real_loader=$testdata/loaders/armbian-rkbin__rk3588_spl_loader_v1.16.113.bin
run virtual power-cycle
expect "mode maskrom"
if [ -f "$testdata/MANIFEST.md" ] && [ -f "$real_loader" ]; then
    cp "$real_loader" "$work/files/rk3588_spl_loader_v1.16.113.bin"
    loader=$(winpath "$work/files/rk3588_spl_loader_v1.16.113.bin")
    run boot "$loader"
    expect "sending rk3588_ddr_lp4_2112M (75776 bytes) to area 0x0471" \
        "sending rk3588_usbplug_v1 (92160 bytes) to area 0x0472" \
        "booted: 1-1  2207:350b  RK3588  loader"
else
    message="SKIPPED wine-check real-loader boot: $real_loader is missing (the shared test data sits beside the checkout as ../shared/testdata, or set ROCKUSB_TESTDATA)"
    in_ci && fail "$message; under CI every test dependency must be installed"
    printf '\n*** %s ***\n\n' "$message" >&2
    loader=$standin
    run boot "$loader"
    expect "booted: 1-1"
fi

say "info"
run info
expect "chip:       RK3588" "flash id:   EMMC" "67108864 sectors (32.00 GiB)" "storage:    emmc"

# A 40 MiB Talos-shaped image, built as demo.sh builds its 256 MiB one (EFI 8 MiB with 4 MiB
# of data, BOOT 16 MiB with 8 MiB of data from 21 MiB).
. rockusb/talos-shaped-image.sh
say "flash a Talos-shaped .raw.xz (40 MiB) with read-back verify"
image=$work/files/talos-nanopi-m6.raw
talos_shaped_image "$image" 40 8 16 4 21 8
run flash "$(winpath "$image.xz")"
expect "flashed $(winpath "$image.xz") (40.0 MiB) onto the emmc" "by reading back" \
    "partition 3 BOOT"
emmc=$boards/nanopi-m6/emmc.img
cmp -n "$(stat -c %s "$image")" "$image" "$emmc" \
    || fail "step $step: the virtual board's eMMC differs from the image"
echo "the virtual board's eMMC ($emmc) equals the image: $(stat -c %s "$image") bytes"

say "gpt of the board, and of the image file"
run gpt
expect "emmc of the board at 1-1:" "Primary header: LBA 1, entries at LBA 20482" \
    "  1  EFI " "  2  BIOS " "  3  BOOT " "  4  META "
run gpt --map "$(winpath "$image")"
expect "  3  BOOT " "  4  META "

say "backup the first 40 MiB"
backup=$work/files/backup.raw.xz
run backup --sectors 81920 -o "$(winpath "$backup")"
expect "backed up 40.0 MiB of the emmc into $(winpath "$backup")"
xz -dc "$backup" | cmp - "$image" || fail "step $step: the backup differs from the image"
echo "the backup decompresses to the image"

say "read and write sectors"
run read 64 400 -o "$(winpath "$work/files/idb.bin")"
cmp "$work/files/idb.bin" <(dd if="$image" bs=512 skip=64 count=400 status=none) \
    || fail "step $step: sectors 64..463 read back differ from the image"
head -c $((64 << 10)) /dev/urandom >"$work/files/data.bin"
run write 200000 "$(winpath "$work/files/data.bin")"
cmp "$work/files/data.bin" <(dd if="$emmc" bs=512 skip=200000 count=128 status=none) \
    || fail "step $step: the eMMC at sector 200000 differs from what was written"
echo "sectors read match the image; the sectors written are on the eMMC"

say "loader verify"
run loader verify "$loader"
expect "Pass  container:"
! grep -q "^Fail" "$work/out" || fail "step $step: loader verify reported a failure"

say "what Windows cannot do yet is refused, by name"
refused "\`rockusb disks\` is not supported on Windows yet" disks
refused "\`rockusb flash --to\` is not supported on Windows yet" \
    flash "$(winpath "$image.xz")" --to "$(winpath "$work/files/card.img")"
[ ! -e "$work/files/card.img" ] || fail "step $step: flash --to created its target"
refused "\`rockusb console\` is not supported on Windows yet" console

printf '\nPASS: wine check of %s: %d steps in %d s\n' "$(basename "$input")" "$step" \
    "$(($(date +%s) - started))"
