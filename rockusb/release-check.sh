#!/usr/bin/env bash
# Checks the archives rockusb/release.sh built in OUTDIR: their checksums, that each binary
# is static, and each binary end to end against the virtual NanoPi M6 with rockusb/demo.sh
# (list, boot, info, flash of a Talos-shaped .raw.xz with read-back verify, gpt). A binary
# for another architecture runs under qemu-user (qemu-aarch64-static for aarch64).
#
#   rockusb/release-check.sh OUTDIR
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -eq 1 ] || { echo "usage: rockusb/release-check.sh OUTDIR" >&2; exit 2; }
out=$(realpath "$1")
(cd "$out" && sha256sum -c --quiet SHA256SUMS)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
machine=$(uname -m)

for archive in "$out"/rockusb-*.tar.gz; do
    name=$(basename "$archive" .tar.gz)
    tar -xzf "$archive" -C "$work"
    dir=$work/$name
    (cd "$dir" && sha256sum -c --quiet SHA256SUMS)
    arch=${name#rockusb-*-}
    arch=${arch%%-*}
    runner=""
    if [ "$arch" != "$machine" ]; then
        runner=qemu-$arch-static
        command -v "$runner" >/dev/null \
            || { echo "release-check.sh: $name needs $runner (apt-get install qemu-user-static)" >&2; exit 1; }
    fi
    file -b "$dir/rockusb" | grep -q "statically linked" \
        || { echo "release-check.sh: $name: $(file -b "$dir/rockusb")" >&2; exit 1; }
    echo "== $name${runner:+ (under $runner)}: $($runner "$dir/rockusb" --version)"
    ROCKUSB_BIN="${runner:+$runner }$dir/rockusb" ROCKUSB_VIRTUAL_DIR="$work/boards-$arch" \
        rockusb/demo.sh
done
