#!/usr/bin/env bash
# Builds OnCall's Debian package in one command:
#   scripts/build-deb.sh            -> target/debian/oncall_<version>_<arch>.deb and oncall-dbgsym_<version>_<arch>.deb
# The binary is built with `cargo build --release`, stripped, and its debug info moved to the -dbgsym package
# (installed, gdb finds it through the binary's debuglink under /usr/lib/debug). Install with
#   sudo apt install ./target/debian/oncall_<version>_<arch>.deb
# Options (the tests use them): --binary PATH (package this binary instead of building one), --out DIR,
# --no-dbgsym, --fast (gzip -1 instead of xz).
set -euo pipefail
cd "$(dirname "$0")/.."

binary="" out="${CARGO_TARGET_DIR:-target}/debian" dbgsym=1 compress=(-Zxz)
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --no-dbgsym) dbgsym=0; shift ;;
        --fast) compress=(-Zgzip -z1); shift ;;
        *) echo "build-deb.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
    esac
done
for tool in dpkg-deb objcopy objdump; do
    command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool is missing: apt-get install dpkg binutils" >&2; exit 1; }
done
if [ -z "$binary" ]; then
    cargo build --release --locked --bin oncall
    binary="${CARGO_TARGET_DIR:-target}/release/oncall"
fi
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/oncall"
mkdir -p "$out"

install -D -m 755 "$binary" "$root/usr/bin/oncall"
objcopy --only-keep-debug --compress-debug-sections "$root/usr/bin/oncall" "$stage/oncall.debug"
objcopy --strip-debug --strip-unneeded --add-gnu-debuglink="$stage/oncall.debug" "$root/usr/bin/oncall"
install -D -m 644 packaging/oncall.toml "$root/etc/oncall/oncall.toml"
install -D -m 644 packaging/oncall.service "$root/lib/systemd/system/oncall.service"
doc="$root/usr/share/doc/oncall"
install -D -m 644 README.md "$doc/README.md"
for f in docs/*.md; do install -m 644 "$f" "$doc/"; done
install -d "$doc/deploy"
install -m 644 docs/deploy/* "$doc/deploy/"

# Depends: the newest glibc symbol version the binary uses, and libgcc_s when it links it (unwinding).
glibc="$(objdump -T "$root/usr/bin/oncall" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)"
depends="libc6 (>= ${glibc:-2.17}), passwd"
if objdump -p "$root/usr/bin/oncall" | grep -q 'NEEDED.*libgcc_s'; then
    depends="$depends, libgcc-s1"
fi
installed_kb="$(du -sk "$root" | cut -f1)"
install -d "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: oncall
Version: $version
Architecture: $arch
Maintainer: OnCall developers <oncall@localhost>
Depends: $depends
Recommends: pocketsphinx, pocketsphinx-en-us
Section: comm
Priority: optional
Installed-Size: $installed_kb
Description: self-hosted on-call telephony server
 Answers calls on your numbers, SIP trunk or PBX, runs each organization's IVR,
 records the request and pages whoever is on call by phone, SIP phone or text,
 escalating until someone accepts; a web admin for schedules, recordings and
 metrics. SQLite and local recordings by default; PostgreSQL and S3 optional.
 With pocketsphinx and its English model installed, callers' messages are
 transcribed offline.
CONTROL
echo /etc/oncall/oncall.toml > "$root/DEBIAN/conffiles"
install -m 755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
deb="$out/oncall_${version}_${arch}.deb"
dpkg-deb "${compress[@]}" --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"

if [ "$dbgsym" = 1 ]; then
    dbg="$stage/oncall-dbgsym"
    install -D -m 644 "$stage/oncall.debug" "$dbg/usr/lib/debug/usr/bin/oncall.debug"
    install -d "$dbg/DEBIAN"
    cat > "$dbg/DEBIAN/control" <<CONTROL
Package: oncall-dbgsym
Version: $version
Architecture: $arch
Maintainer: OnCall developers <oncall@localhost>
Depends: oncall (= $version)
Section: debug
Priority: optional
Description: debug symbols for oncall
 Lets gdb and perf show OnCall's functions and source lines.
CONTROL
    dpkg-deb "${compress[@]}" --root-owner-group --build "$dbg" "$out/oncall-dbgsym_${version}_${arch}.deb" >/dev/null
    echo "$out/oncall-dbgsym_${version}_${arch}.deb"
fi
