#!/usr/bin/env bash
# Installs s3s-fs (an S3-compatible server that serves a folder; crates.io) for the recordings storage tests, if it
# is not there yet. It goes to a cache outside the repository, built with its own target dir so it neither touches
# the workspace's build nor is rebuilt by `cargo clean`. A cold install takes about 3 minutes on 2 cores.
# Prints the binary's path; tests find it through ONCALL_S3S_FS (set by scripts/test.sh) or this default location.
set -euo pipefail

ROOT="${ONCALL_TOOLS_DIR:-$HOME/.cache/oncall-tools}"
VERSION="0.14.1" # the newest s3s-fs that builds with the project's rustc (1.95); 0.15+ need a newer one
BIN="$ROOT/bin/s3s-fs"

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
    echo "$BIN"
    exit 0
fi
mkdir -p "$ROOT"
echo "installing s3s-fs $VERSION into $ROOT (one-time, ~3 min)" >&2
cargo install --locked --quiet s3s-fs --version "$VERSION" --features binary \
    --root "$ROOT" --target-dir "$ROOT/target" >&2
# The build directory is only needed to build; drop it so the cache stays small.
rm -rf "$ROOT/target"
echo "$BIN"
