#!/usr/bin/env bash
# Debian's headless Chromium and its WebDriver (chromedriver), which the page's browser test
# (tests/test_page_browser.py) drives; nothing is downloaded from outside Debian's archive.
# Does nothing when both are there already. Needs root (or sudo) to install.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
chromium --version
