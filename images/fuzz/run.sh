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
# Seed the corpora with the shared GPT images and bmap files when they are there (the
# corpus folder is ignored by git: test data never enters the repository).
testdata="${ROCKUSB_TESTDATA:-../../../shared/testdata}"
if [ -d "$testdata" ]; then
    mkdir -p corpus/gpt_report corpus/bmap_parse
    cp -n "$testdata"/disk_images/*.img corpus/gpt_report/ 2>/dev/null || true
    cp -n "$testdata"/bmap/*bmap* corpus/bmap_parse/ 2>/dev/null || true
fi
# Seed the file-system target with small ext2 and ext4 images (XFS cannot be made this
# small; tests/fs_readers.rs mutates real XFS images instead).
if command -v mke2fs >/dev/null 2>&1; then
    mkdir -p corpus/fs_free_space
    for fs_type in ext2 ext4; do
        seed="corpus/fs_free_space/seed-$fs_type.img"
        [ -e "$seed" ] || { truncate -s 1M "$seed" && mke2fs -q -F -t "$fs_type" "$seed"; } || rm -f "$seed"
    done
fi
for target in gpt_report bmap_parse plan_chunks fs_free_space uki_sections; do
    echo "== fuzzing $target for ${seconds}s"
    mkdir -p "corpus/$target"
    cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=1048576
done
