#!/usr/bin/env bash
# Issue 3's GPU smoke run on a lent device machine (the workplace's `device`
# tool), in two steps, because that machine reaches no package index:
#
#   here:   bash benchmarks/device_sd_fullsize.sh fetch
#           (pure-Python wheels the device image lacks → .whl/, git-ignored)
#   device: run(command="bash benchmarks/device_sd_fullsize.sh run", carry=[".whl"])
#
# The device image already has torch (CUDA), transformers, accelerate,
# huggingface-hub, safetensors, numpy and Pillow; it lacks diffusers and the
# queue client that worker.jobs imports. The table and JSON land in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(diffusers==0.42.1 importlib_metadata lazy-importer redis==8.1.0 rq==3.0.0 croniter)

case "${1:-}" in
fetch)
    rm -rf .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl "${WHEELS[@]}"
    ls -l .whl
    ;;
run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    out="${OUT:-/tmp/out}"
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
    python3 benchmarks/sd_fullsize.py --device cuda --runs 5 --warmup 2 --out "$out" \
        --json "$out/sd_fullsize.json" 2>&1 | tee "$out/sd_fullsize.log"
    ;;
*)
    echo "usage: $0 fetch|run" >&2
    exit 2
    ;;
esac
