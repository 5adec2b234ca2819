#!/usr/bin/env bash
# Builds the Windows release zip, OUTDIR/rockusb-<version>-x86_64-pc-windows-gnu.zip
# (rockusb.exe, the README, WINDOWS.txt, the licences, SHA256SUMS; see rockusb/release.sh),
# then runs it end to end under wine against the virtual NanoPi M6 (rockusb/wine-check.sh).
#
#   rockusb/windows.sh [--no-check] OUTDIR
#
# The exe is built with the rustc on PATH when it has a standard library for the target
# (`rustup target add x86_64-pc-windows-gnu`), else with Debian's rustc-web, building the
# standard library from rust-web-src (-Zbuild-std). Either way it needs
# gcc-mingw-w64-x86-64 and zip; the check needs wine, gdisk, xz-utils and unzip.
# RELEASE_PROFILE=cross-check builds quickly at opt-level 0 (as CI does, .ci/run); the
# default `release` profile is for publishing.
set -euo pipefail
cd "$(dirname "$0")/.."

check=yes
if [ "${1:-}" = --no-check ]; then
    check=no
    shift
fi
[ $# -eq 1 ] || { echo "usage: rockusb/windows.sh [--no-check] OUTDIR" >&2; exit 2; }
out=$(realpath -m "$1")
target=x86_64-pc-windows-gnu
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)

start=$(date +%s)
rockusb/release.sh "$out" "$target"
echo "built in $(($(date +%s) - start)) s ($(ls -l "$out/rockusb-$version-$target.zip" | awk '{print $5}') bytes)"
if [ $check = yes ]; then
    rockusb/wine-check.sh "$out/rockusb-$version-$target.zip"
fi
