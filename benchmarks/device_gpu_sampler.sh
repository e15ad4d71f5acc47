#!/usr/bin/env bash
# Issue 22's GPU run (benchmarks/gpu_sampler.py) on a lent device machine (the
# workplace's `device` tool: one H200, 15 minutes of device time in all, at most
# 10 minutes a command, no package index). Two steps:
#
#   here:   bash benchmarks/device_gpu_sampler.sh fetch
#           (the pure-Python wheels the device image lacks → .whl/, git-ignored;
#            torchao → .whl-ao/, tried separately: a torchao that does not match the
#            device's torch is left out, and the int8/fp8 rows say so)
#   device: run(command="bash benchmarks/device_gpu_sampler.sh run", carry=[".whl", ".whl-ao"], timeout_s=590)
#
# `run` prints the versions, the driver and the GPU, then runs the harness under
# a time budget (BUDGET_S, default 450 s: the rows are ordered by importance and
# the JSON is rewritten after each one, so a cut-short run keeps what it
# measured). Everything lands in $OUT: gpu.txt, versions.txt, gpu_sampler.json,
# gpu_sampler.log (the markdown table at its end). A second command, if time is
# left: `bash benchmarks/device_gpu_sampler.sh run --models flux --no-first-job`.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(diffusers==0.42.1 importlib_metadata lazy-importer)
AO_WHEELS=(torchao==0.18.0)

case "${1:-}" in
fetch)
    rm -rf .whl .whl-ao
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl "${WHEELS[@]}"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl-ao "${AO_WHEELS[@]}" ||
        echo "torchao could not be fetched; the int8/fp8 rows will say it is not installed"
    ls -l .whl .whl-ao 2>/dev/null || true
    ;;
run)
    shift
    out="${OUT:-/tmp/out}"
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    if compgen -G ".whl-ao/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site-ao .whl-ao/*.whl
        if PYTHONPATH="/tmp/site-ao:$PYTHONPATH" python3 -c "import torchao.quantization" 2>"$out/torchao.err"; then
            export PYTHONPATH="/tmp/site-ao:$PYTHONPATH"
        else
            echo "torchao does not import with this torch (see torchao.err); int8/fp8 rows skipped"
        fi
    fi
    # (`run --tiny …` checks this script on a CPU machine: no nvidia-smi there.)
    { nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv ||
        echo "no nvidia-smi: no NVIDIA driver here"; } | tee "$out/gpu.txt"
    python3 - <<'EOF' | tee "$out/versions.txt"
import platform, torch, diffusers, transformers
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| cuDNN", torch.backends.cudnn.version(), "| diffusers", diffusers.__version__,
      "| transformers", transformers.__version__)
try:
    import torchao; print("torchao", torchao.__version__)
except ImportError:
    print("torchao not installed")
if torch.cuda.is_available():
    print("GPU", torch.cuda.get_device_name(0), "| bf16", torch.cuda.is_bf16_supported())
else:
    print("no CUDA GPU visible to torch")
EOF
    timeout 560 python3 benchmarks/gpu_sampler.py --budget-s "${BUDGET_S:-450}" --row-min-s 40 --runs 2 \
        --json "$out/gpu_sampler.json" "$@" 2>&1 | tee "$out/gpu_sampler.log"
    ;;
*)
    echo "usage: $0 fetch | run [gpu_sampler.py arguments]" >&2
    exit 2
    ;;
esac
