#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): the CUDA path against the CPU path, and its epochs/s.
#   bash scripts/gpu-check.sh [--passengers 1000000] [--out gpu-check.json]
# On a machine that cannot reach PyPI, put the wheels of openpyxl, et_xmlfile and XlsxWriter in
# .whl/ (pip download ... -d .whl): they are installed into a private folder first.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/excelnet-wheels .whl/*.whl
  export PYTHONPATH="/tmp/excelnet-wheels:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
python3 -m bench.gpu_check "$@"
