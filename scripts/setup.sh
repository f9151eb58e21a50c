#!/usr/bin/env bash
# Install excelnet and what its tests need into the current Python (activate a virtual
# environment first: see the README). Safe to run again.
#
#   bash scripts/setup.sh                # torch's CPU build (about 200 MB)
#   TORCH=cu128 bash scripts/setup.sh    # torch's CUDA 12.8 build, for an NVIDIA GPU (GBs)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH=${TORCH:-cpu}
# torch first, pinned, and from the build chosen: a bare `torch` requirement (what
# `pip install .` alone would resolve) downloads the newest CUDA build and ~15 NVIDIA packages.
# PyTorch's own index serves each build as 2.13.0+cpu, 2.13.0+cu128, …; a local wheel of the
# same version (pip's find-links) is used as well.
if ! "$PY" -c 'import torch' 2>/dev/null; then
  "$PY" -m pip install -q --retries 1 torch==2.13.0 --extra-index-url "https://download.pytorch.org/whl/$TORCH"
fi
"$PY" -m pip install -q -e '.[test]'
