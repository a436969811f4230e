#!/bin/sh
# CPU per concurrent call with SRTP (issue 21; docs/performance.md#srtp) and per browser leg (WebRTC: ICE-lite,
# DTLS-SRTP, G.711 through str0m; issue 19, docs/performance.md#browser-phone) against plain RTP: OnCall's media
# engine with one thread carrying N calls, its own peers on the other end (SIPp has neither). Args: call counts, --secs S.
set -eu
cd "$(dirname "$0")/.."
exec cargo run --release -q -p oncall-sip --example media_load -- "$@"
