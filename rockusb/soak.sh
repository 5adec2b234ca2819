#!/usr/bin/env bash
# Soak test (not part of the normal test run): many flashes of a small Talos-shaped image
# onto the virtual NanoPi M6 with random, seeded faults of every kind the virtual board
# can inject (lost and stalled commands, failed and lost writes, corrupted reads, a slow
# eMMC, the board dropping off the bus, resets into MaskROM).
#
# Before each run the board's eMMC is filled with random bytes (a used board) and the
# board powered on in MaskROM. Each run must end verified, or fail with a clear error
# (exit status 1, a message that says what to do); every failed run is then resumed with
# `flash --resume` (itself meeting faults, with another seed) until it ends verified.
# Finally the eMMC is compared with the image, independently of the tool: the first
# 11 MiB and every non-zero 4 KiB block. A difference after a run reported success is a
# silent corruption, and the count of those must be 0.
#
#   rockusb/soak.sh [RUNS] [PERMILLE]     # defaults: 200 runs, 4 faults per 1000 commands
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
permille=${2:-4}
kinds=timeout+stall+failed+corrupt+lost+slow+disconnect+maskrom
max_resumes=8

for tool in sgdisk xz python3; do
    command -v "$tool" >/dev/null || { echo "soak.sh needs $tool" >&2; exit 1; }
done
cargo build --release -q -p rockusb-cli
rockusb=$PWD/target/release/rockusb
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ROCKUSB_VIRTUAL=m6 ROCKUSB_VIRTUAL_DIR=$work/boards
unset ROCKUSB_STATE_DIR ROCKUSB_VIRTUAL_FAULTS
board=$ROCKUSB_VIRTUAL_DIR/m6

# A 48 MiB Talos-shaped image: the Talos GPT layout, an ID block at sector 64, data in
# EFI and BOOT, META; xz -0 -T0 as Talos compresses.
image=$work/talos.raw
truncate -s 48M "$image"
sgdisk --move-main-table=20482 \
    -n 1:22528:+8M -t 1:EF00 -c 1:EFI \
    -n 2:0:+1M -t 2:EF02 -c 2:BIOS \
    -n 3:0:+24M -t 3:8300 -c 3:BOOT \
    -n 4:0:+1M -t 4:8300 -c 4:META "$image" >/dev/null
{ printf 'RKNS'; head -c 300000 /dev/urandom; } | dd of="$image" bs=512 seek=64 conv=notrunc status=none
head -c $((6 << 20)) /dev/urandom | dd of="$image" bs=1M seek=12 conv=notrunc status=none
head -c $((9 << 20)) /dev/urandom | dd of="$image" bs=1M seek=22 conv=notrunc status=none
xz -0 -T0 -k -f "$image"
"$rockusb" loader standin -o "$work/standin.bin" >/dev/null

compare() { # storage image -> prints "ok" or what differs
    python3 - "$1" "$2" <<'EOF'
import sys
storage, image = open(sys.argv[1], 'rb'), open(sys.argv[2], 'rb').read()
lead = 11 << 20
if storage.read(lead) != image[:lead]:
    print("the first 11 MiB differ"); sys.exit()
for at in range(lead, len(image), 4096):
    block = image[at:at + 4096]
    if any(block):
        storage.seek(at)
        if storage.read(len(block)) != block:
            print(f"the block at byte {at} differs"); sys.exit()
print("ok")
EOF
}

clear_error() { # stderr file -> 0 when the error says what it is and what to do
    grep -q '^error: ' "$1" && grep -Eq -- '--resume|Nothing was written|run the same command' "$1"
}

declare -A faults
ok_first=0 failed_first=0 resumes=0 resumed_ok=0 unfinished=0 unclear=0 silent=0
retried=0 reattached=0
started=$(date +%s)
for run in $(seq 1 "$runs"); do
    rm -rf "$board"
    "$rockusb" list >/dev/null                       # powers the board on in MaskROM
    head -c $((48 << 20)) /dev/urandom | dd of="$board/emmc.img" bs=1M conv=notrunc status=none
    attempt=0 done=0
    while [ "$attempt" -le "$max_resumes" ]; do
        resume=()
        [ "$attempt" -gt 0 ] && resume=(--resume)
        seed=$((run * 1000 + attempt))
        if ROCKUSB_VIRTUAL_FAULTS="random:$seed:$permille:$kinds" \
            "$rockusb" --json flash "$image.xz" --loader "$work/standin.bin" \
            --command-sectors 256 "${resume[@]}" >"$work/out.json" 2>"$work/err.txt"; then
            result=$(tail -n 1 "$work/out.json")
            read -r r a < <(python3 -c 'import json,sys; r=json.loads(sys.argv[1])["result"]; print(r["retried_commands"], r["reattached"])' "$result")
            retried=$((retried + r)) reattached=$((reattached + a))
            [ "$attempt" -eq 0 ] && ok_first=$((ok_first + 1)) || resumed_ok=$((resumed_ok + 1))
            done=1
            break
        fi
        [ "$attempt" -eq 0 ] && failed_first=$((failed_first + 1))
        if ! clear_error "$work/err.txt"; then
            unclear=$((unclear + 1))
            echo "run $run attempt $attempt: an unclear error:" >&2
            cat "$work/err.txt" >&2
        fi
        attempt=$((attempt + 1))
        [ "$attempt" -le "$max_resumes" ] && resumes=$((resumes + 1))
    done
    if [ -f "$board/faults.log" ]; then
        while read -r kind _; do
            faults[$kind]=$((${faults[$kind]:-0} + 1))
        done <"$board/faults.log"
    fi
    if [ "$done" -eq 0 ]; then
        unfinished=$((unfinished + 1))
        echo "run $run: not finished after $max_resumes resumes" >&2
        continue
    fi
    verdict=$(compare "$board/emmc.img" "$image")
    if [ "$verdict" != ok ]; then
        silent=$((silent + 1))
        echo "run $run: reported verified, but $verdict" >&2
    fi
    [ $((run % 20)) -eq 0 ] && echo "… $run runs" >&2
done

total=0
for kind in "${!faults[@]}"; do total=$((total + faults[$kind])); done
echo
echo "soak: $runs runs of a 48 MiB Talos-shaped image, $permille faults per 1000 data commands, $(( $(date +%s) - started )) s"
echo "  verified on the first try:      $ok_first"
echo "  failed with a clear error:      $failed_first (unclear errors: $unclear)"
echo "  resumes run:                    $resumes, runs finished by resuming: $resumed_ok"
echo "  runs left unfinished:           $unfinished"
echo "  faults injected:                $total"
for kind in timeout stall failed corrupt lost slow disconnect maskrom; do
    printf '    %-12s %s\n' "$kind" "${faults[$kind]:-0}"
done
echo "  commands that went through when sent again: $retried"
echo "  times the board was found again on its port: $reattached"
echo "  silent corruptions:             $silent"
[ "$silent" -eq 0 ] && [ "$unclear" -eq 0 ] && [ "$unfinished" -eq 0 ]
