#!/bin/sh
# CPU per concurrent call with SRTP against plain RTP (issue 21; docs/performance.md#srtp): OnCall's media engine
# with one thread carrying N calls, its own peer on the other end (SIPp has no SRTP). Args: call counts, --secs S.
set -eu
cd "$(dirname "$0")/.."
exec cargo run --release -q -p oncall-sip --example srtp_load -- "$@"
