#!/usr/bin/env bash
# Benchmark (not a test) for adapting a generic Talos image, on a 2 GiB generic-shaped
# image: a 2101 MiB FAT32 EFI partition holding two 150 MiB UKI-sized files of random bytes
# (UKIs are compressed, so random stands in well), a 1 MiB META, GPT at LBA 2; compressed
# with `xz -0 -T0` as Talos does. Prints:
#   1. `rockusb image adapt` .raw.xz -> .raw.xz against `xz -dc | xz -0 -T0` of the same file
#      (the least any tool that rewrites the image must do);
#   2. `rockusb flash --adapt` of the generic image against plain `rockusb flash` of the
#      adapted one, both onto a virtual NanoPi M6 on the USB 2.0 link model (40 MB/s of
#      payload, 0.5 ms per command), verified by reading back;
#   3. the cost of decoding the whole image before the first write: `rockusb flash --check`
#      against `--no-check` of the adapted .raw.xz (by default the check runs only where it
#      is estimated to cost at most a tenth of the flash, which this sparse image is not).
#
# Usage: rockusb/cli/benches/adapt.sh     (KEEP=1 keeps the work folder)
set -euo pipefail

workspace=$(cd "$(dirname "$0")/../../.." && pwd)
testdata=${ROCKUSB_TESTDATA:-$workspace/../shared/testdata}
for tool in sgdisk mkfs.vfat mmd mcopy xz python3; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (gdisk, dosfstools, mtools, xz-utils, python3)" >&2; exit 1; }
done
[ -d "$testdata" ] || { echo "the shared test data ($testdata) is missing: U-Boot and the DTB come from there" >&2; exit 1; }

(cd "$workspace" && cargo build --quiet --release -p rockusb-cli)
rockusb=$workspace/target/release/rockusb
work=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
export MTOOLS_SKIP_CHECK=1
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
ratio() { python3 -c "print(f'{($2 - $1) / ($4 - $3):.3f}')"; }

# U-Boot as binman lays it out (idbloader, 0xFF to 0x7F8000, u-boot.itb), and the M6 DTB.
python3 - "$testdata" "$work/u-boot-rockchip.bin" <<'PY'
import sys
data, out = sys.argv[1], sys.argv[2]
idb = open(f"{data}/idbloader/stvhay-uboot-rk3588__rock5b__idbloader.img", "rb").read()
itb = open(f"{data}/uboot/stvhay-uboot-rk3588__rock5b__u-boot.itb", "rb").read()
open(out, "wb").write(idb + b"\xff" * (0x7F8000 - len(idb)) + itb)
PY
cp "$testdata/dtb/nanopi-m6__friendlyelec-vendor__rk3588s-nanopi-m6.dtb" "$work/rk3588s-nanopi-m6.dtb"

echo "building the 2 GiB generic image"
esp=$work/esp.img
truncate -s 2101M "$esp"
mkfs.vfat -F 32 -n EFI "$esp" >/dev/null
mmd -i "$esp" ::/EFI ::/EFI/Linux ::/EFI/boot
for name in a b; do
    head -c 150M /dev/urandom >"$work/uki-$name.efi"
    mcopy -i "$esp" "$work/uki-$name.efi" "::/EFI/Linux/talos-$name.efi"
done
generic=$work/metal-arm64.raw
truncate -s 2104M "$generic"
sgdisk -n 1:2048:+2101M -t 1:EF00 -c 1:EFI -n 2:0:+1M -t 2:8300 -c 2:META "$generic" >/dev/null
dd if="$esp" of="$generic" bs=1M seek=1 conv=notrunc status=none
rm "$esp" "$work"/uki-*.efi
xz -0 -T0 -k "$generic"
ls -l "$generic.xz" | awk '{printf "generic .raw.xz: %.1f MiB\n", $5 / 1048576}'

board_files=(--uboot "$work/u-boot-rockchip.bin" --dtb "$work/rk3588s-nanopi-m6.dtb")

echo
echo "1. adapt .raw.xz -> .raw.xz"
t0=$(now)
"$rockusb" image adapt --board nanopi-m6 "${board_files[@]}" "$generic.xz" -o "$work/m6.raw.xz" 2>/dev/null
t1=$(now)
xz -dc "$generic.xz" | xz -0 -T0 >/dev/null
t2=$(now)
echo "rockusb image adapt:   $(secs "$t0" "$t1") s"
echo "xz -dc | xz -0 -T0:    $(secs "$t1" "$t2") s"
echo "ratio:                 $(ratio "$t0" "$t1" "$t1" "$t2")"

echo
echo "2. flash --adapt against flashing the adapted image (USB 2.0 link model, verified)"
export ROCKUSB_VIRTUAL_DIR=$work/boards
"$rockusb" loader standin -o "$work/standin.bin" >/dev/null
for board in plain adapt checked unchecked; do
    ROCKUSB_VIRTUAL=$board "$rockusb" virtual status >/dev/null
    python3 - "$ROCKUSB_VIRTUAL_DIR/$board/config.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["emmc_bytes"] = 4 << 30
config["link"] = {"bytes_per_second": 40e6, "command_overhead": 0.5e-3}
json.dump(config, open(path, "w"))
PY
done
t0=$(now)
"$rockusb" --virtual plain flash --loader "$work/standin.bin" "$work/m6.raw.xz" 2>/dev/null
t1=$(now)
"$rockusb" --virtual adapt flash --loader "$work/standin.bin" --adapt nanopi-m6 "${board_files[@]}" "$generic.xz" 2>/dev/null
t2=$(now)
echo "flash (adapted file):  $(secs "$t0" "$t1") s"
echo "flash --adapt:         $(secs "$t1" "$t2") s"
echo "ratio:                 $(ratio "$t1" "$t2" "$t0" "$t1")"
cmp <(head -c 2300M "$ROCKUSB_VIRTUAL_DIR/plain/emmc.img") <(head -c 2300M "$ROCKUSB_VIRTUAL_DIR/adapt/emmc.img") \
    && echo "both boards hold the same bytes"

echo
echo "3. the pre-write check (decode the whole .raw.xz before the first write)"
t0=$(now)
"$rockusb" --virtual checked flash --loader "$work/standin.bin" --check "$work/m6.raw.xz" 2>/dev/null
t1=$(now)
"$rockusb" --virtual unchecked flash --loader "$work/standin.bin" --no-check "$work/m6.raw.xz" 2>/dev/null
t2=$(now)
echo "flash (checked first): $(secs "$t0" "$t1") s"
echo "flash --no-check:      $(secs "$t1" "$t2") s"
echo "ratio:                 $(ratio "$t0" "$t1" "$t1" "$t2")"
