#!/usr/bin/env bash
# Runs each rockusb fuzz target for a bounded time (default 60 s each) and prints
# libFuzzer's final statistics; fails if any target found a crash.
#
#   rockusb/fuzz/run.sh [seconds-per-target]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept the sanitizer flags.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
for target in host_replies area_receiver device_commands xz_index; do
    echo "=== $target: ${seconds}s"
    mkdir -p "corpus/$target"
    cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>&1 \
        | grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss)|panicked|ERROR|SUMMARY' || true
    if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
        echo "!!! $target found crashes in artifacts/$target"
        exit 1
    fi
done
