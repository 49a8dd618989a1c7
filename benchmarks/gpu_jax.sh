#!/usr/bin/env bash
# Mask R-CNN on the borrowed GPU machine (JAX and PyTorch, no TensorFlow, no network), in one call.
#
#   bash benchmarks/gpu_jax.sh --download   # here, once: the wheels that machine lacks, into .whl/
#   run(command="bash benchmarks/gpu_jax.sh", carry=[".whl"], timeout_s=540)    # there
#
# There it installs the carried wheels (keras and what keras needs beyond that machine's own
# packages) into /tmp/site on the machine's own JAX, then runs benchmarks/gpu_jax.py at 1024 px
# (ours on KERAS_BACKEND=jax, torchvision on the machine's PyTorch), each case in a fresh
# process, and writes gpu_jax.json into $OUT (or benchmarks/results/ when $OUT is unset).
# Extra arguments go to gpu_jax.py (e.g. --quick, --only CASE ...).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(keras==3.15.1 namex==0.1.0 optree==0.20.0)

if [ "${1:-}" = "--download" ]; then
  grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
  exit 0
fi

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # each case its own process; no 75% grab per start
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
out="${OUT:-benchmarks/results}"
timeout 480 python3 benchmarks/gpu_jax.py --timeout 150 --out "$out/gpu_jax.json" "$@"
