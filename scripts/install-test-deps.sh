#!/bin/sh
# Installs the real SIP peers and audio tools the end-to-end tests in tests/ drive (see tests/support/mod.rs):
# SIPp (sip-tester), baresip (baresip-core), sipsak, kamailio (a registrar), espeak-ng, SoX, the SIPVicious scanners (svmap, svwar)
# the sqlite3 shell (tests that change the database behind the server's back), Prometheus Alertmanager and swaks (alerts, issue 20),
# what the Debian package test uses (dpkg-deb, objcopy/objdump from binutils, setpriv from util-linux; issue 24),
# and the built-in transcription engine with its model and a second voice to measure it with (pocketsphinx,
# pocketsphinx-en-us, flite; issue 23).
# Idempotent: installs only what is missing, and runs `apt-get update` only when something has to be installed.
# Debian/Ubuntu; run as root (or with sudo).
set -eu

# binary:package pairs (a path instead of a binary for a data-only package)
NEEDED="pocketsphinx_continuous:pocketsphinx /usr/share/pocketsphinx/model/en-us/en-us.lm.bin:pocketsphinx-en-us flite:flite sipp:sip-tester baresip:baresip-core sipsak:sipsak kamailio:kamailio espeak-ng:espeak-ng sox:sox soxi:sox svmap:sipvicious svwar:sipvicious sqlite3:sqlite3 prometheus-alertmanager:prometheus-alertmanager swaks:swaks dpkg-deb:dpkg objcopy:binutils objdump:binutils setpriv:util-linux openssl:openssl /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so:kamailio-tls-modules"

missing=""
for pair in $NEEDED; do
    bin=${pair%%:*}
    pkg=${pair#*:}
    case "$bin" in
        /*) present() { [ -e "$1" ]; } ;;
        *) present() { command -v "$1" >/dev/null 2>&1; } ;;
    esac
    if ! present "$bin"; then
        case " $missing " in
            *" $pkg "*) ;;
            *) missing="$missing $pkg" ;;
        esac
    fi
done

if [ -z "$missing" ]; then
    echo "install-test-deps: sipp, baresip, sipsak, kamailio, espeak-ng, sox, sipvicious, sqlite3, alertmanager, swaks, pocketsphinx, flite, openssl, kamailio-tls-modules and the packaging tools are already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-test-deps: installing$missing"
$SUDO apt-get update
# shellcheck disable=SC2086 # the package list is meant to split into words
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
