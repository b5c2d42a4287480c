#!/usr/bin/env bash
# Set up, then answer a question about a video.
#   bash scripts/quickstart.sh [VIDEO] [MODEL]
# Without VIDEO, a 20-second test video is made with ffmpeg. Without MODEL, a tiny random-weight
# checkpoint is written and used (it answers with noise; pass a hub id or folder for real answers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work="${STREAMVQA_WORK:-/tmp/streamvqa-quickstart}"
mkdir -p "$work"
video="${1:-$work/testsrc.mp4}"
model="${2:-$work/tiny-qwen2_5_vl}"
if [ $# -lt 1 ] && [ ! -f "$video" ]; then
    ffmpeg_bin="$(.venv/bin/python -c 'from pipeline.sources.ffmpeg_binary import ffmpeg_exe; print(ffmpeg_exe())')"
    "$ffmpeg_bin" -y -loglevel error -f lavfi -i "testsrc2=size=320x240:rate=25:duration=20" \
        -c:v libx264 -pix_fmt yuv420p "$video"
fi
if [ $# -lt 2 ] && [ ! -f "$model/config.json" ]; then
    .venv/bin/streamvqa make-tiny "$model"
fi
.venv/bin/streamvqa ask "$video" --model "$model" --question "What happens in the video?" --at 15 --json
