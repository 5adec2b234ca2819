#!/usr/bin/env bash
# Runs the cargo-fuzz targets of all four fuzz workspaces (images, loaders, rockusb,
# installer) one at a time, each for its time budget, and ends with a table: minutes run,
# executions (libFuzzer's final stat::number_of_executed_units), corpus entries after the
# run (and how many the run added: stat::new_units_added) and crashes (new crash-,
# timeout-, oom- and leak- artifacts). Exits 1 when any target crashed.
#
#   fuzz/run-all.sh                   every target, with the budgets below
#   fuzz/run-all.sh xz_index fdt_gate only the named targets
#   FUZZ_SECONDS=30 fuzz/run-all.sh   every target for 30 s (a smoke run)
#
# Budgets: 10 minutes for the parsers of files users download (loader containers, RKNS
# ID blocks, GPT images, bmap files, .xz indexes, DTBs), 3 minutes for the others;
# 78 minutes in all, plus the builds. FUZZ_SECONDS=n replaces every budget.
#
# One fuzzer at a time (-jobs=1 -workers=1) under `nice -n 10`: the machine is shared.
#
# Environment (all optional):
#   FUZZ_CORPUS     corpora, one folder per target  (default: fuzz-corpus beside the work tree)
#   FUZZ_ARTIFACTS  crash inputs, one folder per target (default: fuzz-artifacts beside it)
#   FUZZ_LOGS       libFuzzer output, one folder per target (default: fuzz-logs beside it)
#   FUZZ_SANITIZER  address (default) or none (no ASan: faster; the libraries are safe Rust)
#   ROCKUSB_TESTDATA  the shared test data that seeds the corpora (default: ../shared/testdata
#                   beside the work tree); the corpora live outside the repository because
#                   they hold copies of third-party files.
#   CARGO_TARGET_DIR  where the fuzz builds go (e.g. /work/target-fuzz: one for all four)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). The sanitizer and coverage flags
# are nightly-only: RUSTC_BOOTSTRAP=1, set here, lets the stable toolchain take them.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
outside="$(dirname "$root")"
corpus_root="${FUZZ_CORPUS:-$outside/fuzz-corpus}"
artifact_root="${FUZZ_ARTIFACTS:-$outside/fuzz-artifacts}"
log_root="${FUZZ_LOGS:-$outside/fuzz-logs}"
testdata="${ROCKUSB_TESTDATA:-$outside/shared/testdata}"
sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: run 'cargo install cargo-fuzz --locked' first" >&2
    exit 1
fi

# target  workspace  minutes  max input length
targets=(
    "container_parse  loaders    10 1048576"
    "rkns_parse       loaders    10 1048576"
    "gpt_report       images     10 1048576"
    "bmap_parse       images     10 262144"
    "xz_index         rockusb    10 262144"
    "fdt_gate         installer  10 1048576"
    "plan_chunks      images     3  1048576"
    "fs_free_space    images     3  1048576"
    "uki_sections     images     3  1048576"
    "host_replies     rockusb    3  65536"
    "area_receiver    rockusb    3  65536"
    "device_commands  rockusb    3  65536"
    "overlay_requests installer  3  65536"
)

# Copies real files into a target's corpus (never into the repository).
seed() {
    local target="$1" dir="$corpus_root/$1"
    mkdir -p "$dir"
    case "$target" in
    container_parse)
        cp -n "$testdata"/loaders/*.bin "$testdata"/loaders/negative/*.bin "$dir/" 2>/dev/null || true
        ;;
    rkns_parse)
        # The first 512 KiB holds every header and image of interest.
        for f in "$testdata"/idbloader/*; do
            [ -f "$f" ] && [ ! -e "$dir/$(basename "$f")" ] && head -c 524288 "$f" >"$dir/$(basename "$f")"
        done
        ;;
    gpt_report)
        cp -n "$testdata"/disk_images/*.img "$dir/" 2>/dev/null || true
        ;;
    bmap_parse)
        cp -n "$testdata"/bmap/*.bmap* "$dir/" 2>/dev/null || true
        ;;
    fdt_gate)
        cp -n "$testdata"/dtb/*.dtb "$dir/" 2>/dev/null || true
        # 20,000 CPUs in 1 MiB: keeps the gate's phandle lookups from turning quadratic
        # again unnoticed (the seed alone would then exceed the per-input timeout).
        [ -e "$dir/many-cpus.dtb" ] || python3 "$(dirname "$0")/many-cpus-dtb.py" 20000 "$dir/many-cpus.dtb" >/dev/null
        ;;
    xz_index)
        # Real .xz files: one and many blocks, each check type, concatenated streams
        # with stream padding between them.
        if command -v xz >/dev/null 2>&1 && [ ! -e "$dir/multi-block.xz" ]; then
            local data
            data="$(mktemp)"
            cat "$testdata"/bmap/*.bmap* 2>/dev/null | head -c 20000 >"$data" || true
            [ -s "$data" ] || seq 1 5000 >"$data"
            xz -0 -c <"$data" >"$dir/one-block.xz"
            xz -0 --block-size=2048 -c <"$data" >"$dir/multi-block.xz"
            for check in none crc32 crc64 sha256; do
                head -c 3000 "$data" | xz -0 --block-size=1024 --check="$check" -c >"$dir/check-$check.xz"
            done
            { xz -0 -c </dev/null; head -c 8 /dev/zero; head -c 500 "$data" | xz -0 -c; } >"$dir/two-streams.xz"
            rm -f "$data"
        fi
        ;;
    fs_free_space)
        # XFS cannot be made this small; tests/fs_readers.rs mutates real XFS images.
        if command -v mke2fs >/dev/null 2>&1; then
            for fs_type in ext2 ext4; do
                local img="$dir/seed-$fs_type.img"
                [ -e "$img" ] || { truncate -s 1M "$img" && mke2fs -q -F -t "$fs_type" "$img"; } || rm -f "$img"
            done
        fi
        if command -v mkfs.vfat >/dev/null 2>&1 && [ ! -e "$dir/seed-fat12.img" ]; then
            mkfs.vfat -C "$dir/seed-fat12.img" 1024 >/dev/null || rm -f "$dir/seed-fat12.img"
        fi
        ;;
    uki_sections)
        # A UKI-shaped PE (an arm64 stub plus .osrel and .cmdline, as ukify adds them),
        # made the way images/tests/generic builds its fixture. Without a seed the fuzzer
        # does not get past the "MZ" check.
        if command -v aarch64-linux-gnu-objcopy >/dev/null 2>&1 && [ ! -e "$dir/uki.efi" ]; then
            local work
            work="$(mktemp -d)"
            printf '.text\n.globl _start\n_start:\n    ret\n' >"$work/stub.s"
            printf 'NAME="Talos"\nID=talos\nVERSION_ID=v1.11.5\n' >"$work/osrel"
            printf 'talos.platform=metal console=ttyS2,1500000n8\n' >"$work/cmdline"
            if aarch64-linux-gnu-as "$work/stub.s" -o "$work/stub.o" &&
                aarch64-linux-gnu-ld "$work/stub.o" -o "$work/stub.elf" &&
                aarch64-linux-gnu-objcopy -O pei-aarch64-little "$work/stub.elf" "$dir/stub.efi" &&
                aarch64-linux-gnu-objcopy --add-section=.osrel="$work/osrel" \
                    --set-section-flags .osrel=data,readonly \
                    --add-section=.cmdline="$work/cmdline" \
                    --set-section-flags .cmdline=data,readonly \
                    "$dir/stub.efi" "$dir/uki.efi"; then
                :
            else
                rm -f "$dir/stub.efi" "$dir/uki.efi"
            fi
            rm -rf "$work"
        fi
        ;;
    overlay_requests)
        printf 'options:\n  dtb: rk3588s-nanopi-m6.dtb\n  cma: 128MB\n  spi_boot: "true"\n' >"$dir/options.yaml"
        printf 'installDisk: /dev/mmcblk0\nmountPrefix: /tmp/m\narch: arm64\nartifactsPath: /a\nextraOptions:\n  console: ttyS2\n' >"$dir/install.yaml"
        printf '{}\n' >"$dir/empty.yaml"
        ;;
    esac
}

selected=("$@")
summary=()
failed=0
for line in "${targets[@]}"; do
    read -r target workspace minutes max_len <<<"$line"
    if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " == *" $target "* ]]; then
        continue
    fi
    seconds="${FUZZ_SECONDS:-$((minutes * 60))}"
    fuzz_dir="$root/$workspace/fuzz"
    corpus="$corpus_root/$target"
    artifacts="$artifact_root/$target"
    logs="$log_root/$target"
    mkdir -p "$corpus" "$artifacts" "$logs"
    seed "$target"

    echo "=== $target ($workspace): building" >&2
    nice -n 10 cargo fuzz build -s "$sanitizer" --fuzz-dir "$fuzz_dir" "$target" >"$logs/build.log" 2>&1 || {
        echo "!!! $target did not build: see $logs/build.log" >&2
        exit 2
    }
    echo "=== $target: fuzzing for ${seconds}s (log: $logs/run.log)" >&2
    stamp="$logs/.started"
    touch "$stamp"
    start=$(date +%s)
    # -jobs=1 -workers=1: one child process, whose output libFuzzer writes to fuzz-0.log
    # in the current folder and copies to stderr at its end.
    (cd "$logs" && nice -n 10 cargo fuzz run -s "$sanitizer" --fuzz-dir "$fuzz_dir" "$target" "$corpus" -- \
        -jobs=1 -workers=1 -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
        -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$artifacts/" \
        >"$logs/run.log" 2>&1) || true
    elapsed=$(($(date +%s) - start))
    execs=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "$logs/run.log" | grep -o '[0-9]*$' | tail -1 || true)
    if [ -z "$execs" ]; then
        # A crash ends the run before the final statistics: take the last status line.
        execs=$(grep -ho '^#[0-9]*' "$logs/run.log" | tr -d '#' | tail -1 || true)
    fi
    entries=$(find "$corpus" -maxdepth 1 -type f | wc -l)
    added=$(grep -ho 'stat::new_units_added: *[0-9]*' "$logs/run.log" | grep -o '[0-9]*$' | tail -1 || true)
    crashes=$(find "$artifacts" -maxdepth 1 -type f -newer "$stamp" \
        \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
    [ "$crashes" -eq 0 ] || failed=1
    summary+=("$(printf '%-17s %8s %12s %8s %6s %8s' "$target" "$(awk "BEGIN{printf \"%.1f\", $elapsed/60}")" \
        "${execs:-?}" "$entries" "+${added:-?}" "$crashes")")
    if [ "$crashes" -gt 0 ]; then
        echo "!!! $target: $crashes new crash input(s) in $artifacts" >&2
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY' "$logs/run.log" | head -5 >&2 || true
    fi
done

printf '%-17s %8s %12s %8s %6s %8s\n' target minutes executions corpus new crashes
printf '%s\n' "${summary[@]}"
exit "$failed"
