#!/usr/bin/env bash
# Runs this crate's fuzz targets through fuzz/run-all.sh, which seeds the corpora outside
# the work tree, runs one fuzzer at a time under nice and prints minutes, executions,
# corpus entries and crashes per target.
#
#   installer/fuzz/run.sh [seconds-per-target]
#
# Without an argument each target runs for its budget in fuzz/run-all.sh (FUZZ_SECONDS=n
# also sets the time). Needs cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
if [ $# -gt 0 ]; then
    export FUZZ_SECONDS="$1"
fi
exec "$(dirname "$0")/../../fuzz/run-all.sh" \
    fdt_gate overlay_requests
