#!/usr/bin/env bash
# Builds the release archives: static `rockusb` binaries for Linux (glibc with crt-static,
# libusb and liblzma built from source and linked in: no shared library needed at run time),
# each packed as OUTDIR/rockusb-<version>-<target>.tar.gz with the README, the udev rules,
# the licences and a SHA256SUMS of its files; OUTDIR/SHA256SUMS covers the archives.
#
#   rockusb/release.sh OUTDIR [TARGET...]    (default: x86_64- and aarch64-unknown-linux-gnu)
#
# RELEASE_PROFILE=cross-check builds with that quicker Cargo profile instead of `release`
# (CI does, to run the binaries end to end within its time; releases use the default).
#
# A target needs a Rust standard library for it: the rustc on PATH (`rustup target add
# TARGET`) or, failing that, Debian's /usr/bin/rustc (rustc-web with libstd-rust-web-dev:arm64
# for aarch64). A foreign target needs its C cross compiler (gcc-aarch64-linux-gnu) for libusb,
# liblzma and zstd. Windows and macOS are not built here (see the user guide, "Other systems").
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
    local env=()
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
    # No debug info: a quarter of the size, and faster to build.
    env+=(CARGO_PROFILE_RELEASE_DEBUG=false)
    echo "building rockusb $version for $target (profile $profile)" >&2
    env "${env[@]}" cargo build --profile "$profile" --locked -q -p rockusb-cli \
        --no-default-features --features static --target "$target"
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

pack() {
    local target=$1
    local name=rockusb-$version-$target
    local stage=$work/$name bin=$target_dir/$target/$profile/rockusb
    check_static "$bin" "$target"
    mkdir -p "$stage/licenses"
    install -m 755 "$bin" "$stage/rockusb"
    install -m 644 README.md LICENSE-MIT LICENSE-APACHE udev/70-rockusb.rules "$stage/"
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
    (cd "$stage" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort \
        | xargs sha256sum >SHA256SUMS)
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        -C "$work" -cf - "$name" | gzip -n -9 >"$out/$name.tar.gz"
    echo "$out/$name.tar.gz" >&2
}

for target in "${targets[@]}"; do
    case $target in
        *-linux-gnu) ;;
        *) die "$target: only Linux gnu targets are built here" ;;
    esac
    build "$target"
    pack "$target"
done
(cd "$out" && sha256sum rockusb-"$version"-*.tar.gz >SHA256SUMS && ls -l rockusb-"$version"-*.tar.gz && cat SHA256SUMS)
