#!/usr/bin/env bash
# Create .venv (if missing) and install streamvqa with its development extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch and torchvision must match; this pair is the one the project is tested with.
if ! .venv/bin/python -c "import torch, torchvision; assert torch.__version__.startswith('2.14.1') and torchvision.__version__.startswith('0.29.1')" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
fi
.venv/bin/python -m pip install --quiet -e ".[dev,demo]"
# The demo's browser tests drive the system chromium (Playwright never downloads a browser); ffmpeg makes
# test videos. Install both from Debian where we may; the tests skip with a reason where chromium is absent.
if ! command -v chromium >/dev/null || ! command -v ffmpeg >/dev/null; then
    as_root=""
    [ "$(id -u)" -eq 0 ] || as_root="$(command -v sudo || true)"
    if command -v apt-get >/dev/null && { [ "$(id -u)" -eq 0 ] || [ -n "$as_root" ]; }; then
        { $as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium ffmpeg; } \
            >/dev/null 2>&1 || echo "setup: could not apt-get install chromium ffmpeg; browser tests will skip" >&2
    else
        echo "setup: chromium or ffmpeg missing and apt-get unavailable; browser tests will skip" >&2
    fi
fi
