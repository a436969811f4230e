#!/usr/bin/env bash
# The whole test suite, as the README and CI run it on a fresh Debian machine with Rust:
#  1. installs what the tests drive if missing: Debian's SIPp, baresip, sipsak, espeak-ng, sox and PostgreSQL,
#     Chromium for the browser tests, and s3s-fs (an S3-compatible server) from crates.io;
#  2. runs every crate's unit tests and the end-to-end tests in tests/ against real SIP peers;
#  3. runs the domain store tests against SQLite and a throwaway PostgreSQL cluster on loopback.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh -p oncall-sip).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
# s3s-fs, the S3-compatible server the recordings storage tests start on loopback (built once into a cache).
ONCALL_S3S_FS="$(bash scripts/install-s3-server.sh)"
export ONCALL_S3S_FS
# Debian's chromium and chromium-driver for the admin site's browser tests.
bash scripts/install-browser.sh
# with-postgres.sh installs postgresql when missing, starts a cluster on 127.0.0.1, exports
# ONCALL_TEST_POSTGRES_URL for the store tests, and removes the cluster afterwards.
bash scripts/with-postgres.sh cargo test --workspace --all-targets "$@"
