#!/bin/sh
# Installs Debian's Chromium and ChromeDriver for the web admin's browser tests
# (web-admin/tests/browser.rs) when they are missing. Idempotent; runs `apt-get update` only when
# something has to be installed. Debian/Ubuntu; run as root (or with sudo).
set -eu

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "install-browser: chromium and chromedriver are already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-browser: installing chromium chromium-driver"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium chromium-driver
