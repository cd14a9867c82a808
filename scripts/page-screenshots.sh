#!/usr/bin/env bash
# Retake docs/serve-page.png and docs/serve-page-conditional.png with trained models, from the
# page's browser test (tests/test_page_browser.py), which operates every control first.
# Usage: scripts/page-screenshots.sh UNCONDITIONAL CONDITIONAL (run directories or model folders)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then
    echo "usage: $0 UNCONDITIONAL_MODEL CONDITIONAL_MODEL" >&2
    exit 2
fi
scripts/install-chromium.sh
make --quiet .venv/.installed
TRANSGAN_PAGE_MODELS="$1,$2" TRANSGAN_PAGE_SCREENSHOTS=docs \
    .venv/bin/python -m pytest -q -p no:randomly tests/test_page_browser.py
