#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s each) and prints libFuzzer's
# final statistics. Seeds come from the shared test data when it is present.
#
#   loaders/fuzz/run.sh [seconds-per-target]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain the sanitizer
# flags need RUSTC_BOOTSTRAP=1, which this script sets.
set -euo pipefail

seconds="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
testdata="${ROCKUSB_TESTDATA:-$here/../../../shared/testdata}"
# The corpus holds copies of third-party test files, so it lives outside the work tree.
corpus="${FUZZ_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/rockusb-loaders-fuzz}"
export RUSTC_BOOTSTRAP=1

cd "$here"
mkdir -p "$corpus/container_parse" "$corpus/rkns_parse"
if [ -d "$testdata/loaders" ]; then
    cp -n "$testdata"/loaders/*.bin "$testdata"/loaders/negative/*.bin "$corpus/container_parse/" 2>/dev/null || true
fi
if [ -d "$testdata/idbloader" ]; then
    for f in "$testdata"/idbloader/*; do
        # The first 512 KiB holds every header and image of interest.
        head -c 524288 "$f" > "$corpus/rkns_parse/$(basename "$f")"
    done
fi

for target in container_parse rkns_parse; do
    echo "=== $target: ${seconds}s"
    cargo fuzz run "$target" "$corpus/$target" -- \
        -max_total_time="$seconds" -max_len=1048576 -print_final_stats=1 2>&1 \
        | grep -E '^(#[0-9]+.*DONE|stat::|==[0-9]+==|SUMMARY|Done)|panicked|ERROR' || true
    if [ -d "artifacts/$target" ] && [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
        echo "!!! $target found crashes in artifacts/$target"
        exit 1
    fi
done
