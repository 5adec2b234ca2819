#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each; FUZZ_SECONDS=n to change).
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Sanitizer builds need nightly features:
# RUSTC_BOOTSTRAP=1 unlocks them on a stable toolchain.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: run 'cargo install cargo-fuzz' first" >&2
    exit 1
fi
export RUSTC_BOOTSTRAP=1
# Seed the DTB target with the shared DTBs when they are there (the corpus folder is
# ignored by git: test data never enters the repository).
testdata="${ROCKUSB_TESTDATA:-../../../shared/testdata}"
if [ -d "$testdata" ]; then
    mkdir -p corpus/fdt_gate
    cp -n "$testdata"/dtb/*.dtb corpus/fdt_gate/ 2>/dev/null || true
fi
mkdir -p corpus/overlay_requests
printf 'options:\n  dtb: rk3588s-nanopi-m6.dtb\n  cma: 128MB\n' >corpus/overlay_requests/options.yaml
for target in fdt_gate overlay_requests; do
    echo "== fuzzing $target for ${seconds}s"
    mkdir -p "corpus/$target"
    cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=1048576
done
