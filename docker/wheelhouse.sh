#!/usr/bin/env bash
# Prepare the wheels the images install from, on the host (where pip reaches the package index):
#   docker/wheelhouse.sh        -> docker/wheelhouse      (CPU image; the host's Python 3.11, linux x86_64)
#   docker/wheelhouse.sh gpu    -> docker/wheelhouse-gpu  (GPU image; Python 3.12 of Ubuntu 24.04)
set -euo pipefail
cd "$(dirname "$0")/.."
pip=${PIP:-.venv/bin/pip}
[[ -x $pip ]] || pip="python3 -m pip"
if [[ ${1:-cpu} == gpu ]]; then
    out=docker/wheelhouse-gpu
    rm -rf "$out" && mkdir -p "$out"
    $pip wheel --no-deps --wheel-dir "$out" .
    $pip download --dest "$out" --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any \
        "$(ls "$out"/carmask-*.whl)[service,gpu]"
else
    out=docker/wheelhouse
    rm -rf "$out" && mkdir -p "$out"
    $pip wheel --wheel-dir "$out" ".[service,cpu]"
fi
echo "wheels in $out: $(ls "$out" | wc -l)"
