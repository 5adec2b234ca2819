#!/usr/bin/env bash
# Builds the release archives: static `rockusb` binaries for Linux (glibc with crt-static,
# libusb and liblzma built from source and linked in: no shared library needed at run time),
# each packed as OUTDIR/rockusb-<version>-<target>.tar.gz with the README, the udev rules,
# the licences and a SHA256SUMS of its files; OUTDIR/SHA256SUMS covers the archives.
# x86_64-pc-windows-gnu (when named; rockusb/windows.sh does) is packed the same way as a
# .zip: rockusb.exe, needing only Windows' own DLLs, with WINDOWS.txt (the WinUSB driver)
# in place of the udev rules.
#
#   rockusb/release.sh OUTDIR [TARGET...]    (default: x86_64- and aarch64-unknown-linux-gnu)
#
# RELEASE_PROFILE=cross-check builds with that quicker Cargo profile instead of `release`
# (CI does, to run the binaries end to end within its time; releases use the default).
#
# A target needs a Rust standard library for it: the rustc on PATH (`rustup target add
# TARGET`) or, failing that, Debian's /usr/bin/rustc (rustc-web with libstd-rust-web-dev:arm64
# for aarch64; for Windows rust-web-src, from which cargo builds the standard library itself
# with -Zbuild-std). A foreign target needs its C cross compiler (gcc-aarch64-linux-gnu,
# gcc-mingw-w64-x86-64) for libusb, liblzma and zstd; Windows needs `zip` too. macOS is not
# built here (see the user guide, "Other systems").
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
    echo "usage: rockusb/release.sh OUTDIR [TARGET...]" >&2
    exit 2
fi
out=$(realpath -m "$1")
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)
profile=${RELEASE_PROFILE:-release}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
host=$(rustc -vV | sed -n 's/^host: //p')
registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
# Archives that differ only in file dates would have different checksums.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

die() { echo "release.sh: $*" >&2; exit 1; }

has_std() { [ -d "$("$1" --print sysroot)/lib/rustlib/$2/lib" ]; }
# The standard library's source, from which `-Zbuild-std` builds it for a target the
# compiler has no library for (Debian: rust-web-src for rustc-web).
has_std_src() { [ -f "$("$1" --print sysroot)/lib/rustlib/src/rust/library/std/Cargo.toml" ]; }

# One compiler for every target when one has them all, so the host's build scripts and
# proc macros are built once rather than once per compiler.
for candidate in "${RUSTC:-rustc}" /usr/bin/rustc; do
    command -v "$candidate" >/dev/null || continue
    all=yes
    for target in "${targets[@]}"; do has_std "$candidate" "$target" || all=no; done
    if [ $all = yes ]; then
        export RUSTC=$candidate
        break
    fi
done

# The source folder of a crate as Cargo.lock pins it, for its licence files.
crate_dir() {
    local v
    v=$(grep -A1 "^name = \"$1\"$" Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p' | head -n1)
    compgen -G "$registry/*/$1-$v" | head -n1 || true
}

build() {
    local target=$1 up=${1^^}
    up=${up//-/_}
    local env=() args=()
    case $target in
        *-windows-gnu)
            build_windows "$target" "$up"
            return
            ;;
    esac
    # A plain static executable (not static-pie), so `ldd` says "not a dynamic executable".
    env+=("CARGO_TARGET_${up}_RUSTFLAGS=-C target-feature=+crt-static -C relocation-model=static")
    if ! has_std "${RUSTC:-rustc}" "$target"; then
        if [ -x /usr/bin/rustc ] && has_std /usr/bin/rustc "$target"; then
            env+=(RUSTC=/usr/bin/rustc)
        else
            die "no Rust standard library for $target: \`rustup target add $target\`, or on Debian \`apt-get install rustc-web libstd-rust-web-dev:${target%%-*}\`"
        fi
    fi
    if [ "$target" != "$host" ]; then
        local arch=${target%%-*}
        local cc=${arch}-linux-gnu-gcc
        command -v "$cc" >/dev/null || die "$target needs the C cross compiler $cc (apt-get install gcc-${arch/_/-}-linux-gnu)"
        env+=("CARGO_TARGET_${up}_LINKER=$cc" "CC_${target//-/_}=$cc" "AR_${target//-/_}=${arch}-linux-gnu-ar")
    fi
    cargo_build "$target" "${env[@]}"
}

# `cargo build` of the CLI for a target, everything linked in; then `NAME=value`s for its
# environment. Extra cargo arguments come in the caller's array `args`.
cargo_build() {
    local target=$1
    shift
    echo "building rockusb $version for $target ($profile profile)" >&2
    # No debug info: a quarter of the size, and faster to build.
    env "$@" CARGO_PROFILE_RELEASE_DEBUG=false cargo build --profile "$profile" --locked -q \
        -p rockusb-cli --no-default-features --features static --target "$target" "${args[@]}"
}

# Windows through MinGW-w64: libgcc and winpthreads are linked in by Rust's windows-gnu
# target, and libusb (its WinUSB backend), liblzma and zstd are built from source, so the
# exe imports only Windows' own DLLs (checked when packing).
build_windows() {
    local target=$1 up=$2 arch=${1%%-*}
    local cc=${arch}-w64-mingw32-gcc
    command -v "$cc" >/dev/null \
        || die "$target needs the MinGW-w64 C compiler $cc (apt-get install gcc-mingw-w64-${arch/_/-})"
    env+=("CARGO_TARGET_${up}_LINKER=$cc" "CC_${target//-/_}=$cc" "AR_${target//-/_}=${arch}-w64-mingw32-ar")
    if ! has_std "${RUSTC:-rustc}" "$target"; then
        # Debian has no usable standard library for Windows (libstd-rust-dev-windows is
        # 1.63): cargo builds one from rustc-web's source, which a stable compiler allows
        # with RUSTC_BOOTSTRAP.
        if [ -x /usr/bin/rustc ] && has_std_src /usr/bin/rustc; then
            env+=(RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1)
            args+=(-Zbuild-std=std,panic_abort)
        else
            die "no Rust standard library for $target: \`rustup target add $target\`, or on Debian \`apt-get install rustc-web rust-web-src\` (built with -Zbuild-std)"
        fi
    fi
    cargo_build "$target" "${env[@]}"
}

check_static() {
    local bin=$1 target=$2
    if [ "$target" = "$host" ] && command -v ldd >/dev/null; then
        local ldd
        ldd=$(ldd "$bin" 2>&1 || true)
        [[ $ldd == *"not a dynamic executable"* ]] || die "$bin is dynamically linked: $ldd"
    fi
    if command -v file >/dev/null; then
        file -b "$bin" | grep -q "statically linked" || die "$bin is not static: $(file -b "$bin")"
    fi
}

# The DLLs a Windows exe imports, one a line, lower case.
windows_imports() {
    "${1%%-*}-w64-mingw32-objdump" -p "$2" | sed -n 's/^\s*DLL Name: //p' | tr 'A-Z' 'a-z' | sort -u
}

# Windows' own DLLs (bcryptprimitives since Windows 10, which Rust's std needs).
WINDOWS_DLLS='^(kernel32|ntdll|msvcrt|userenv|ws2_32|advapi32|bcryptprimitives|api-ms-win-.*)\.dll$'

check_windows() {
    local bin=$1 target=$2 foreign
    foreign=$(windows_imports "$target" "$bin" | grep -Ev "$WINDOWS_DLLS" || true)
    [ -z "$foreign" ] || die "$bin needs DLLs Windows does not have: $foreign"
}

# The licences of what is linked in, into STAGE/licenses.
licences() {
    local stage=$1
    mkdir -p "$stage/licenses"
    # Linked in from C: libusb (LGPL-2.1-or-later), liblzma (0BSD), zstd (BSD).
    local libusb liblzma zstd
    libusb=$(crate_dir libusb1-sys)
    liblzma=$(crate_dir liblzma-sys)
    zstd=$(crate_dir zstd-sys)
    [ -n "$libusb" ] && [ -n "$liblzma" ] && [ -n "$zstd" ] \
        || die "cannot find the libusb1-sys, liblzma-sys and zstd-sys sources under $registry"
    install -m 644 "$libusb/libusb/COPYING" "$stage/licenses/libusb-LGPL-2.1.txt"
    install -m 644 "$liblzma/xz/COPYING.0BSD" "$stage/licenses/liblzma-0BSD.txt"
    install -m 644 "$zstd/zstd/LICENSE" "$stage/licenses/zstd-BSD.txt"
    cat >"$stage/licenses/README" <<EOF
rockusb is MIT OR Apache-2.0 (../LICENSE-MIT, ../LICENSE-APACHE). This binary also contains
libusb $(basename "$libusb"), which is LGPL-2.1-or-later: its source is in that crate, and
rockusb's own source can be rebuilt against a modified libusb with rockusb/release.sh. It
contains liblzma (0BSD) and zstd (BSD), and Rust crates under MIT, Apache-2.0 or similar
licences, listed with their versions in the source's Cargo.lock.
EOF
}

# What the udev rules are on Linux: on Windows, the driver a board needs.
windows_notes() {
    cat <<'EOF'
rockusb on Windows
==================

rockusb.exe is the whole tool: it needs no installer and no DLL beyond Windows' own
(Windows 10 or later). Run it from PowerShell or a Command Prompt, e.g.

    rockusb.exe list
    rockusb.exe boot rk3588_spl_loader_v1.16.113.bin
    rockusb.exe flash talos-nanopi-m6.raw.xz

The board needs the WinUSB driver
---------------------------------
libusb, through which rockusb talks to a board, can use a device on Windows only when the
WinUSB driver is bound to it. Put the board in MaskROM and connect it, then run Zadig
(https://zadig.akeo.ie): Options > List All Devices, pick the device with USB ID 2207 350B
(RK3588/RK3588S; another SoC shows its own ID, e.g. 2207 350E for the RK3576), choose
WinUSB and press Install Driver (or Replace Driver). Without it, rockusb says that the board
was found but Windows has no WinUSB driver bound to it.

Rockchip's own driver (DriverAssistant, for RKDevTool) is not libusb-compatible: rockusb
cannot use a board bound to it. Replace it with WinUSB as above (RKDevTool then no longer
sees that board until its driver is reinstalled).

Not on Windows yet
------------------
`rockusb console` (use PuTTY or Tera Term at 1500000 8N1), `rockusb disks` and
`rockusb flash --to` (writing an SD card in a reader) work on Linux only and say so here.
The udev rules in README.md are for Linux too.

This build is tested under wine against rockusb's virtual NanoPi M6 (list, boot, info,
flash with verify, gpt, backup, read, write, loader verify), not on a real Windows machine
with a real board.

SHA256SUMS lists the checksums of the files here (in PowerShell:
Get-FileHash -Algorithm SHA256 rockusb.exe).
EOF
}

pack() {
    local target=$1
    local name=rockusb-$version-$target
    local stage=$work/$name bin=$target_dir/$target/$profile/rockusb
    mkdir -p "$stage"
    case $target in
        *-windows-gnu)
            check_windows "$bin.exe" "$target"
            install -m 755 "$bin.exe" "$stage/rockusb.exe"
            install -m 644 README.md LICENSE-MIT LICENSE-APACHE "$stage/"
            windows_notes >"$stage/WINDOWS.txt"
            ;;
        *)
            check_static "$bin" "$target"
            install -m 755 "$bin" "$stage/rockusb"
            install -m 644 README.md LICENSE-MIT LICENSE-APACHE udev/70-rockusb.rules "$stage/"
            ;;
    esac
    licences "$stage"
    (cd "$stage" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort \
        | xargs sha256sum >SHA256SUMS)
    case $target in
        *-windows-gnu)
            # Deterministic as the tarballs are: one date, fixed modes, sorted names, and no
            # extra fields (-X: no uid/gid or Unix timestamps).
            find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
            rm -f "$out/$name.zip"
            (cd "$work" && find "$name" -type f | LC_ALL=C sort \
                | TZ=UTC zip -q -X -9 -@ "$out/$name.zip")
            echo "$out/$name.zip" >&2
            ;;
        *)
            tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
                -C "$work" -cf - "$name" | gzip -n -9 >"$out/$name.tar.gz"
            echo "$out/$name.tar.gz" >&2
            ;;
    esac
}

for target in "${targets[@]}"; do
    case $target in
        *-linux-gnu) ;;
        x86_64-pc-windows-gnu)
            command -v zip >/dev/null || die "$target is packed with zip (apt-get install zip)"
            ;;
        *) die "$target: only Linux gnu targets and x86_64-pc-windows-gnu are built here" ;;
    esac
    build "$target"
    pack "$target"
done
cd "$out"
mapfile -t archives < <(LC_ALL=C ls rockusb-"$version"-*.tar.gz rockusb-"$version"-*.zip 2>/dev/null)
sha256sum "${archives[@]}" >SHA256SUMS
ls -l "${archives[@]}"
cat SHA256SUMS
