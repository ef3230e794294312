#!/usr/bin/env bash
# make gpu-check: on a machine with a GPU and no network, run benchmarks/gpu_check.py (the CUDA
# tests, the demo on the GPU, the GPU bench rows; one JSON table) with the machine's own python3
# and torch, plus the packages it lacks from .gpu/site.tar.xz (scripts/gpu_bundle.sh makes it).
#   bash scripts/gpu_check.sh [OUT] [--cpu] [--budget SECONDS]      # OUT defaults to gpu-check
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check}
shift || true
PYTHON=${PYTHON:-python3}
SITE=.gpu/site
if [ -f .gpu/site.tar.xz ] && { [ ! -f "$SITE/.unpacked" ] || [ .gpu/site.tar.xz -nt "$SITE/.unpacked" ]; }; then
    rm -rf "$SITE" && mkdir -p "$SITE"
    xz -dc .gpu/site.tar.xz | tar -C "$SITE" -xf -
    touch "$SITE/.unpacked"
fi
# the package runs from src/ (not installed: its version reads 0+unknown, no console script)
export PYTHONPATH="$PWD/$SITE:$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export WANDB_MODE=disabled OMP_WAIT_POLICY=PASSIVE
exec "$PYTHON" -m benchmarks.gpu_check --out "$OUT" "$@"
